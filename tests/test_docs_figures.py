"""The figures the docs quote are the ones `make docs-figures` last recorded (nothing is rerun here)."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("docs_figures", ROOT / "scripts" / "docs_figures.py")
figures = sys.modules["docs_figures"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(figures)


def test_docs_show_the_recorded_figures():
    assert figures.stale() == [], "Fix: python scripts/docs_figures.py --write"


def test_every_region_is_known_and_used():
    used = {m[2] for path in figures.DOCS for m in figures.REGION.finditer(path.read_text(encoding="utf-8"))}
    assert used == set(figures.REGIONS)


def test_a_figure_edited_by_hand_is_caught():
    text = (ROOT / "docs" / "quick-start.md").read_text(encoding="utf-8")
    accuracy = re.search(r"<!-- figures:demo-accuracy -->([\d.]+)<!-- /figures -->", text)
    assert accuracy is not None
    edited = text.replace(accuracy[0], "<!-- figures:demo-accuracy -->0.99<!-- /figures -->")
    assert figures.rendered(edited) == text != edited


def test_unknown_region_is_an_error():
    with pytest.raises(KeyError, match="unknown figures region 'nope'"):
        figures.rendered("<!-- figures:nope -->1<!-- /figures -->")


def test_recordings_say_how_they_were_made_and_parse():
    for name in figures.RUNNERS:
        header = figures.Recording.read(name).header
        assert {"command", "date", "machine", "load", "versions"} <= set(header)
    recipe_file = ROOT / "examples" / "recipes" / "tiny-addition.yaml"
    recipe = yaml.safe_load(recipe_file.read_text(encoding="utf-8"))
    steps, every = recipe["max_steps"], recipe["logging_steps"]
    demo = figures.demo_figures(figures.Recording.read("demo"))
    assert demo["steps"] == str(steps) and 0 <= float(demo["accuracy"]) <= 1  # recorded from today's recipe
    assert demo["first_log"].startswith(f"step {every}/{steps} ")
    assert "tokens_per_second=" in demo["first_log"]
    rows = figures.dispatch_rows(figures.Recording.read("dispatch"))
    assert len(rows) == 17 and rows["plain method"][1] == 1.0
    packing = figures.packing_figures(figures.Recording.read("packing"))
    assert packing["ratio"] > 0 and packing["loss_difference"] < 1e-5 and packing["num_proc_speedup"] > 0
    null = figures.null_overhead_rows(figures.Recording.read("overhead-null"))
    assert set(null) == {"hand", "arctic_like", "hf", "lightning"} and set(null["hand"]) == {"us"}
    assert all(null[k]["cpu_min"] <= null[k]["cpu"] <= null[k]["cpu_max"] for k in ("arctic_like", "hf"))
    gpu = figures.gpu_rows(figures.Recording.read("gpu"))
    assert gpu and all(float(r["ratio"]) > 0 and r["engine"] in ("torch", "deepspeed") for r in gpu)
    runs = figures.overhead_runs(figures.Recording.read("overhead"))
    assert len(runs) == figures.OVERHEAD_RUNS and all(set(r) == {"hand", "arctic_like", "hf"} for r in runs)


def test_deepspeed_recordings_parse():
    offload = figures.offload_figures(figures.Recording.read("offload"))
    assert set(offload["zero"]) == {"ZeRO-2", "ZeRO-2 + offload_optimizer"} and len(offload["adam"]) == 4
    assert set(offload["build"]) == {"cpu_adam", "deepspeed_shm_comm"}
    memory = figures.zero_memory_rows(figures.Recording.read("zero-memory"))
    assert set(memory) == {"1", "4"} and all(len(rows) == 21 for rows in memory.values())
