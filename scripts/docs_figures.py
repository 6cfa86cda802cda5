"""Every figure the docs quote, regenerated from the commands that measure it.

    python scripts/docs_figures.py                     # check the docs against docs/figures/ (a test does)
    python scripts/docs_figures.py --run all           # rerun demo and benchmarks, record, rewrite docs
    python scripts/docs_figures.py --run demo dispatch # rerun some (see RUNNERS)
    python scripts/docs_figures.py --write             # rewrite the docs from the recordings

``make docs-figures`` is ``--run all`` (about 25 minutes on an idle 2-core machine: run it there). Each
recording in ``docs/figures/`` is a command's output as printed, under a header naming the command, the
date, the machine, its load and the package versions. The docs hold figures only between
``<!-- figures:NAME -->`` and ``<!-- /figures -->`` markers; each region is rendered from the recordings by
the function of that NAME below, so a figure in the docs changes only by rerunning its command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
REGION = re.compile(r"(<!-- figures:([\w-]+) -->\n?)(.*?)(<!-- /figures -->)", re.DOTALL)
OVERHEAD_RUNS = 3


# ---------------------------------------------------------------------------------------------- recordings


@dataclass
class Recording:
    """A command's printed output (``body``) and the header saying how it was produced."""

    header: dict[str, str]
    body: str

    @classmethod
    def read(cls, name: str) -> Recording:
        text = (FIGURES / f"{name}.txt").read_text(encoding="utf-8")
        head, _, body = text.partition("\n\n")
        header = dict(line[2:].split(": ", 1) for line in head.splitlines())
        return cls(header, body)

    def write(self, name: str) -> None:
        FIGURES.mkdir(parents=True, exist_ok=True)
        head = "\n".join(f"# {k}: {v}" for k, v in self.header.items())
        (FIGURES / f"{name}.txt").write_text(f"{head}\n\n{self.body}", encoding="utf-8")

    @property
    def provenance(self) -> str:
        """One sentence: what was run, when, where and under which load."""
        h = self.header
        return (
            f"`{h['command']}`, {h['date']}, {h['machine']}, load average {h['load']} at the start; "
            f"{h['versions']}"
        )


def _machine() -> str:
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])
        memory = f", {round(kib / 2**20)} GiB"
    except (OSError, TypeError):
        memory = ""
    return f"{os.cpu_count()} CPUs ({platform.machine()}){memory}, no GPU used"


def _versions() -> str:
    import torch
    import transformers

    python = platform.python_version()
    return f"Python {python}, torch {torch.__version__}, transformers {transformers.__version__}"


def _run(command: list[str], cwd: Path = ROOT) -> tuple[str, float]:
    """Run ``command`` with its output on a pipe (so the console prints plain lines); output and seconds."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout + result.stderr, seconds


def _header(command: str, **extra: str) -> dict[str, str]:
    return {
        "command": command,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "machine": _machine(),
        "load": f"{os.getloadavg()[0]:.2f}",
        "versions": _versions(),
        **extra,
    }


def run_demo() -> None:
    """``make demo`` from a fresh output folder (so the data is prepared as on a fresh clone): training, then
    generation from its export through plain transformers."""
    cli = str(Path(sys.executable).with_name("arctic-like"))
    header = _header("make demo")
    with tempfile.TemporaryDirectory() as tmp:
        recipe = "examples/recipes/tiny-addition.yaml"
        output, seconds = _run([cli, "train", recipe, "--set", f"output_dir={tmp}/run"])
        generated, _ = _run([sys.executable, "examples/generate.py", f"{tmp}/run/huggingface"])
    header["wall_seconds"] = f"{seconds:.1f}"
    Recording(header, (output + generated).replace(f"{tmp}/run", "runs/tiny-addition")).write("demo")


def run_fine_tune() -> None:
    """``make fine-tune``: the walk-through of docs/fine-tuning.md, in a copy of examples/fine-tuning/."""
    cli = str(Path(sys.executable).with_name("arctic-like"))
    header = _header("make fine-tune")
    example = ROOT / "examples" / "fine-tuning"
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("recipe.yaml", "chat.jsonl"):
            shutil.copy(example / name, f"{tmp}/{name}")
        made, _ = _run([sys.executable, str(example / "make_pretrained.py"), f"{tmp}/pretrained"])
        trained, seconds = _run([cli, "train", f"{tmp}/recipe.yaml", "--set", f"output_dir={tmp}/run"])
        checked, _ = _run([sys.executable, str(example / "check.py"), f"{tmp}/run/huggingface"])
        output = (made + trained + checked).replace(f"{tmp}/run", "runs/fine-tuning")
    header["wall_seconds"] = f"{seconds:.1f}"
    Recording(header, output.replace(f"{tmp}/", "examples/fine-tuning/")).write("fine-tune")


def recorded(name: str, *args: str, deepspeed: bool = False) -> Callable[[], None]:
    """The runner of a figure that is the output of one ``python ARGS`` (a script, or ``-m module``)."""

    def run() -> None:
        extra = {"versions": _with_deepspeed()} if deepspeed else {}
        header = _header(f"python {' '.join(args)}", **extra)
        output, _ = _run([sys.executable, *args])
        Recording(header, output).write(name)

    return run


def run_overhead() -> None:
    header = _header(f"python benchmarks/trainer_overhead.py --repeats 5 (run {OVERHEAD_RUNS} times)")
    runs = []
    for i in range(1, OVERHEAD_RUNS + 1):
        output, _ = _run([sys.executable, "benchmarks/trainer_overhead.py", "--repeats", "5"])
        runs.append(f"## run {i}\n{output}")
    Recording(header, "".join(runs)).write("overhead")


def _with_deepspeed() -> str:
    import deepspeed

    return f"{_versions()}, DeepSpeed {deepspeed.__version__}"


def run_zero_memory() -> None:
    header = _header("python benchmarks/zero_memory.py [--nodes 4]", versions=_with_deepspeed())
    sections = []
    for nodes in ("1", "4"):
        output, _ = _run([sys.executable, "benchmarks/zero_memory.py", "--nodes", nodes])
        sections.append(f"## --nodes {nodes}\n{output}")
    Recording(header, "".join(sections)).write("zero-memory")


RUNNERS: dict[str, Callable[[], None]] = {
    "demo": run_demo,
    "fine-tune": run_fine_tune,
    "dispatch": recorded("dispatch", "benchmarks/dispatch.py"),
    "overhead": run_overhead,
    "overhead-null": recorded("overhead-null", "benchmarks/trainer_overhead.py", "--case", "null"),
    "packing": recorded("packing", "benchmarks/packing.py"),
    "dpo": recorded("dpo", "benchmarks/dpo.py", "--repeats", "2"),
    "trl-agreement": recorded("trl-agreement", "-m", "tests.reference.agreement"),
    "gpu": recorded("gpu", "benchmarks/gpu.py"),
    "offload": recorded("offload", "benchmarks/offload.py", deepspeed=True),
    "zero-memory": run_zero_memory,
}


# ---------------------------------------------------------------------------------------------- parsing


def demo_figures(rec: Recording) -> dict[str, str]:
    """The demo's summary line and figures, as printed."""
    summary = next(line for line in rec.body.splitlines() if "training done:" in line)
    match = re.search(
        r"training done: (?P<steps>\d+) steps in (?P<seconds>[\d.]+)s \((?P<rate>[\d.]+) steps/s\), "
        r"train_loss=(?P<train_loss>[\d.]+); evaluation at step \d+: eval_loss=(?P<eval_loss>[\d.]+), "
        r"eval_accuracy=(?P<accuracy>[\d.]+)",
        summary,
    )
    if match is None:
        raise ValueError(f"unexpected summary line in docs/figures/demo.txt: {summary!r}")
    lines = rec.body.splitlines()
    return {
        **match.groupdict(),
        "summary": summary,
        "first_log": next(line for line in lines if line.startswith("step ") and "loss=" in line),
        "first_eval": next(line for line in lines if line.startswith("step ") and "eval_loss=" in line),
        "wall": rec.header["wall_seconds"],
    }


def dispatch_rows(rec: Recording) -> dict[str, tuple[float, float]]:
    """``case -> (ns/call, ratio to its baseline)`` from the dispatch table."""
    rows = {}
    for line in rec.body.splitlines():
        match = re.match(r"^(.{34}) +([\d.]+) +([\d.]+)x ", line)
        if match:
            rows[match[1].strip()] = (float(match[2]), float(match[3]))
    return rows


def overhead_runs(rec: Recording) -> list[dict[str, tuple[float, float]]]:
    """``loop -> (wall-clock steps/s, CPU-time steps/s)``, per run."""
    runs = []
    for chunk in rec.body.split("## run ")[1:]:
        rates = re.findall(r"^  (hand|arctic_like|hf) +([\d.]+) +([\d.]+)$", chunk, re.MULTILINE)
        runs.append({name: (float(wall), float(cpu)) for name, wall, cpu in rates})
    return runs


def packing_figures(rec: Recording) -> dict[str, float]:
    """Packed / padded tokens/s, the loss-per-token difference and the num_proc 2 / 1 speed-up."""
    speed = re.search(r"packed / padded tokens/s: ([\d.]+)x .*differs by ([\d.e+-]+)", rec.body)
    prep = re.search(r"num_proc 2 / 1 speed-up: ([\d.]+)x", rec.body)
    if speed is None or prep is None:
        raise ValueError("unexpected output in docs/figures/packing.txt")
    return {"ratio": float(speed[1]), "loss_difference": float(speed[2]), "num_proc_speedup": float(prep[1])}


def dpo_figures(rec: Recording) -> dict[str, dict[str, float]]:
    """``variant -> {steps_per_second, build_seconds, peak_mib}`` and the LoRA table's rows."""
    variants = {}
    for name, speed, cpu, built, peak in re.findall(
        r"^((?:arctic_like|trl) (?:copy|precomputed)) +([\d.]+) +([\d.]+) +([\d.]+) +([\d.]+)$",
        rec.body,
        re.M,
    ):
        variants[name] = {
            "steps_per_second": float(speed),
            "cpu_steps_per_second": float(cpu),
            "build_seconds": float(built),
            "peak_mib": float(peak),
        }
    lora = {}
    for name, trainable, total, optimizer in re.findall(
        r"^(full fine-tuning|LoRA r=8, all linear layers) +([\d,]+) +([\d,]+) +([\d.]+)$", rec.body, re.M
    ):
        lora[name] = {
            "trainable": int(trainable.replace(",", "")),
            "total": int(total.replace(",", "")),
            "optimizer_mib": float(optimizer),
        }
    setting = re.search(r"^(\d+) steps \((\d+) warm-up\), batch (\d+), (.+), best of (\d+)$", rec.body, re.M)
    if len(variants) != 4 or len(lora) != 2 or setting is None:
        raise ValueError("unexpected output in docs/figures/dpo.txt")
    return {"variants": variants, "lora": lora, "setting": setting.groups()}


def agreement_figures(rec: Recording) -> dict[str, dict[str, float]]:
    """``setting -> {metric: largest relative difference}`` from the TRL comparison's table."""
    lines = rec.body.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("setting"))
    metrics = lines[header].split()[1:]
    table = {}
    for line in lines[header + 1 :]:
        match = re.match(r"^(dpo [\w-]+|sft) +(.*)$", line)
        if match:
            values = [float(v) for v in match[2].split()]
            table[match[1]] = dict(zip(metrics, values, strict=False))
    if not table:
        raise ValueError("unexpected output in docs/figures/trl-agreement.txt")
    return table


def null_overhead_rows(rec: Recording) -> dict[str, dict[str, float]]:
    """``loop -> {"us": µs/step, and for the frameworks the µs over the hand loop: "wall", "wall_min",
    "wall_max", "cpu", "cpu_min", "cpu_max"}`` from the null-model table."""
    number = r"([+-]?[\d.]+)"
    span = rf"{number} \[{number}, {number}\]"
    rows: dict[str, dict[str, float]] = {}
    for line in rec.body.splitlines():
        match = re.match(rf"^  (hand|arctic_like|hf|lightning) +{number}(?: +{span} +{span})?$", line)
        if match:
            keys = ("us", "wall", "wall_min", "wall_max", "cpu", "cpu_min", "cpu_max")
            rows[match[1]] = {k: float(v) for k, v in zip(keys, match.groups()[1:], strict=True) if v}
    return rows


def gpu_rows(rec: Recording) -> list[dict[str, str]]:
    """One dict per case of the gpu.py table (config, engine, tokens/s of both loops, ratio, syncs)."""
    pattern = (
        r"^(?P<config>\w+) +(?P<params>[\d.]+M) (?P<engine>\w+) +(?P<batch>\d+x\d+) +(?P<bare>\d+) "
        r"+(?P<arctic>\d+) +(?P<ratio>[\d.]+) +(?P<bare_syncs>[\d.+]+(?: \([\d.]+\))?) "
        r"+(?P<arctic_syncs>[\d.+]+(?: \([\d.]+\))?)$"
    )
    return [m.groupdict() for m in re.finditer(pattern, rec.body, re.MULTILINE)]


def offload_figures(rec: Recording) -> dict[str, dict[str, tuple[float, ...]]]:
    """The three tables of benchmarks/offload.py: ``zero`` case -> (steps/s, ratio, peak MiB, added MiB),
    ``adam`` optimizer -> (ms/step, speed-up), ``build`` op -> (seconds,)."""
    body = rec.body
    zero = re.findall(
        r"^(ZeRO-2(?: \+ offload_optimizer)?) +\w+ +([\d.]+) +([\d.]+)x +([\d.]+) +([-\d.]+)$", body, re.M
    )
    adam = re.findall(r"^(torch AdamW.*?|DeepSpeedCPUAdam) +([\d.]+) +([\d.]+)x$", body, re.M)
    build = re.findall(r"^(cpu_adam|deepspeed_shm_comm) +([\d.]+)$", body, re.M)
    return {
        "zero": {case: tuple(map(float, values)) for case, *values in zero},
        "adam": {case: tuple(map(float, values)) for case, *values in adam},
        "build": {op: (float(seconds),) for op, seconds in build},
    }


def zero_memory_rows(rec: Recording) -> dict[str, dict[tuple[str, str], tuple[float, float | None]]]:
    """Per ``--nodes N`` section: (model, setting) -> (GiB per GPU, GiB of CPU per node or None)."""
    sections = {}
    for chunk in rec.body.split("## --nodes ")[1:]:
        nodes = chunk.split("\n", 1)[0].strip()
        rows = re.findall(r"^(\S+) +[\d,]+  (stage .+?) +([\d.]+) +([\d.]+|-)  ", chunk, re.M)
        sections[nodes] = {
            (model, setting): (float(gpu), None if cpu == "-" else float(cpu))
            for model, setting, gpu, cpu in rows
        }
    return sections


# ---------------------------------------------------------------------------------------------- regions


def _span(values: list[float]) -> str:
    low, high = min(values), max(values)
    return f"{low:.2f}x" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}x to {high:.2f}x"


def region_demo_summary() -> str:
    demo = demo_figures(Recording.read("demo"))
    return f"```text\n{demo['summary']}\n```"


def region_demo_lines() -> str:
    demo = demo_figures(Recording.read("demo"))
    return f"```text\n{demo['first_log']}\n{demo['first_eval']}\n```"


def region_demo_generations() -> str:
    lines = Recording.read("demo").body.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("generating with transformers from"))
    return "```text\n" + "\n".join(lines[start:]) + "\n```"


def region_fine_tune() -> str:
    rec = Recording.read("fine-tune")
    lines = rec.body.splitlines()
    summary = next(line for line in lines if "training done:" in line)
    start = next(i for i, line in enumerate(lines) if line.startswith("asking "))
    return "\n".join(
        [
            "```text",
            "$ .venv/bin/arctic-like train examples/fine-tuning/recipe.yaml",
            summary,
            "$ .venv/bin/python examples/fine-tuning/check.py runs/fine-tuning/huggingface",
            *lines[start : start + 4],
            "  ...",
            lines[-1],
            "```",
            "",
            f"Recorded with {rec.provenance}.",
        ]
    )


def region_demo_accuracy() -> str:
    demo = demo_figures(Recording.read("demo"))
    return f"{float(demo['accuracy']):.2f}"


def region_demo_wall() -> str:
    return f"{float(demo_figures(Recording.read('demo'))['wall']):.0f}"


def region_demo_performance() -> str:
    rec = Recording.read("demo")
    demo = demo_figures(rec)
    return (
        f"{int(demo['steps']):,} optimizer steps of `examples/recipes/tiny-addition.yaml` in "
        f"{float(demo['seconds']):.1f} s of training ({float(demo['rate']):.1f} steps/s; "
        f"{float(demo['wall']):.1f} s wall including start-up and data preparation), reaching "
        f"{float(demo['accuracy']):.2f} exact-match accuracy on 100 held-out problems (eval loss "
        f"{float(demo['eval_loss']):.2f}).\nMeasured with {rec.provenance}."
    )


def region_dispatch() -> str:
    rec = Recording.read("dispatch")
    rows = dispatch_rows(rec)

    def ratios(*cases: str) -> list[float]:
        return [rows[c][1] for c in cases]

    zero = ratios("mixin, 0 callbacks", "mixin, 0 on event, 2 on another")
    declared = ratios("mixin, 1 declared", "mixin, 5 declared", "mixin, 20 declared")
    runtime = ratios("mixin, 1 at runtime", "mixin, 5 at runtime", "mixin, 20 at runtime")
    create = ratios("new instance, mixin, no callbacks", "new instance, mixin, 1 callback")
    met = {True: "met", False: "not met"}
    return "\n".join(
        [
            f"Measured with {rec.provenance}.",
            "",
            "```text",
            rec.body.rstrip("\n"),
            "```",
            "",
            "| target | result |",
            "|---|---|",
            "| 0 callbacks on the event: within 15% of a plain method, also with callbacks on other events | "
            f"{met[max(zero) <= 1.15]}: {_span(zero)} |",
            f"| k ≥ 1 callbacks declared on the class: at most 1.5x the floor | {met[max(declared) <= 1.5]}: "
            f"{_span(declared)} |",
            f"| k ≥ 1 callbacks added at runtime to one instance: at most 1.5x the floor | "
            f"{met[max(runtime) <= 1.5]}: {_span(runtime)} |",
            f"| creating an instance: at most 3x a plain class | {met[max(create) <= 3]}: {_span(create)} |",
            "| a `super()` call through a wrapped method (no target) | "
            f"{_span(ratios('super() call, mixin (1 cb)'))} a plain `super()` call |",
        ]
    )


def region_overhead() -> str:
    rec = Recording.read("overhead")
    runs = overhead_runs(rec)

    def ratios(other: str, clock: int) -> list[float]:
        return [r["arctic_like"][clock] / r[other][clock] for r in runs]

    hand, hf, hand_cpu, hf_cpu = ratios("hand", 0), ratios("hf", 0), ratios("hand", 1), ratios("hf", 1)
    median = statistics.median
    lines = [
        f"Measured with {rec.provenance}. Steps/s by the wall clock, best of 5 interleaved runs each; the "
        "ratios by the wall clock and by process CPU time (the steadier measure on a shared machine):",
        "",
        "| run | hand loop | arctic_like | HF `Trainer` | arctic_like / hand (wall, CPU) "
        "| arctic_like / HF (wall, CPU) |",
        "|---|---|---|---|---|---|",
    ]
    for i, run in enumerate(runs):
        lines.append(
            f"| {i + 1} | {run['hand'][0]:.2f} | {run['arctic_like'][0]:.2f} | {run['hf'][0]:.2f} | "
            f"{hand[i]:.3f}, {hand_cpu[i]:.3f} | {hf[i]:.3f}, {hf_cpu[i]:.3f} |"
        )
    lines += [
        f"| median | | | | **{median(hand):.3f}**, {median(hand_cpu):.3f} "
        f"| **{median(hf):.3f}**, {median(hf_cpu):.3f} |",
        "",
        f"Against the targets (wall clock): faster than HF's `Trainer` in {sum(v > 1 for v in hf)} run(s) of "
        f"{len(runs)} (median {median(hf):.3f}x); at least 0.97x the hand-written loop in "
        f"{sum(v >= 0.97 for v in hand)} run(s) of {len(runs)} (median {median(hand):.3f}x). The spread "
        f"between runs ({min(hand):.2f}x to {max(hand):.2f}x of the hand loop) shows how large a difference "
        "this machine could resolve then.",
    ]
    return "\n".join(lines)


def region_packing() -> str:
    rec = Recording.read("packing")
    figures = packing_figures(rec)
    training, _, preparation = rec.body.rstrip("\n").partition("\n\n")
    met = "met" if figures["ratio"] >= 1.5 else "not met"
    return "\n".join(
        [
            f"Measured with {rec.provenance}.",
            "",
            "```text",
            training,
            "```",
            "",
            f"Against the target (packed >= 1.5x padded tokens/s at an equal loss per token): {met}, "
            f"{figures['ratio']:.2f}x, the loss per token differing by {figures['loss_difference']:.0e}. "
            "Data preparation of 100,000 short chat rows, `load` + `process`:",
            "",
            "```text",
            preparation,
            "```",
        ]
    )


def region_dpo() -> str:
    rec = Recording.read("dpo")
    figures = dpo_figures(rec)
    variants, lora = figures["variants"], figures["lora"]
    steps, warmup, batch, where, repeats = figures["setting"]
    labels = {
        "arctic_like copy": "arctic_like, reference as a copy",
        "trl copy": "TRL `DPOTrainer`, reference as a copy",
        "arctic_like precomputed": "arctic_like, precomputed reference log-probs",
        "trl precomputed": "TRL, precomputed reference log-probs",
    }
    lines = [
        f"Measured with {rec.provenance}. {steps} steps of which the last {int(steps) - int(warmup)} are "
        f"timed, batches of {batch} pairs, {where}, best of {repeats} interleaved runs:",
        "",
        "| variant | steps/s (wall) | steps/s (CPU time) | build s | peak MiB |",
        "|---|---|---|---|---|",
    ]
    for name, label in labels.items():
        v = variants[name]
        wall, cpu, built, peak = (
            v[k] for k in ("steps_per_second", "cpu_steps_per_second", "build_seconds", "peak_mib")
        )
        lines.append(f"| {label} | {wall:.2f} | {cpu:.2f} | {built:.2f} | {peak:.0f} |")

    def ratio(reference: str, key: str) -> float:
        return variants[f"arctic_like {reference}"][key] / variants[f"trl {reference}"][key]

    speed = {r: ratio(r, "steps_per_second") for r in ("copy", "precomputed")}
    cpu_speed = {r: ratio(r, "cpu_steps_per_second") for r in ("copy", "precomputed")}
    memory = {
        r: variants[f"arctic_like {r}"]["peak_mib"] / variants[f"trl {r}"]["peak_mib"]
        for r in ("copy", "precomputed")
    }
    over_default = (
        variants["arctic_like precomputed"]["steps_per_second"] / variants["trl copy"]["steps_per_second"]
    )
    cpu_over_default = (
        variants["arctic_like precomputed"]["cpu_steps_per_second"]
        / variants["trl copy"]["cpu_steps_per_second"]
    )
    met = {True: "met", False: "not met"}
    full, adapter = lora["full fine-tuning"], lora["LoRA r=8, all linear layers"]
    lines += [
        "",
        f"Against the targets (wall clock; CPU time in brackets): {met[speed['copy'] >= 1.0]} with the "
        f"reference as a copy, **{speed['copy']:.2f}x** TRL's speed ({cpu_speed['copy']:.2f}x; target ≥ "
        f"1.0x); {met[speed['precomputed'] >= 1.5]} with precomputed log-probs, "
        f"**{speed['precomputed']:.2f}x** ({cpu_speed['precomputed']:.2f}x; target ≥ 1.5x); peak memory "
        f"{memory['copy']:.2f}x and {memory['precomputed']:.2f}x TRL's. TRL precomputes too when asked "
        "(`precompute_ref_log_probs=True`), so like for like both gain the same reference forward; against "
        "TRL as it runs by default (a reference copy) arctic_like with precomputed log-probs is "
        f"**{over_default:.2f}x** ({cpu_over_default:.2f}x).",
        "",
        "| | trainable parameters | total parameters | optimizer state |",
        "|---|---|---|---|",
        f"| full fine-tuning | {full['trainable']:,} | {full['total']:,} | {full['optimizer_mib']:.2f} MiB |",
        f"| LoRA r=8, all linear layers | {adapter['trainable']:,} "
        f"({100 * adapter['trainable'] / adapter['total']:.1f}%) | {adapter['total']:,} | "
        f"{adapter['optimizer_mib']:.2f} MiB "
        f"({full['optimizer_mib'] / adapter['optimizer_mib']:.0f}x smaller) |",
    ]
    return "\n".join(lines)


def region_overhead_null() -> str:
    rec = Recording.read("overhead-null")
    rows = null_overhead_rows(rec)
    names = {"arctic_like": "arctic_like", "hf": "HF `Trainer`", "lightning": "Lightning `Trainer`"}
    lines = [
        f"Measured with {rec.provenance}.",
        "",
        "| loop | µs per step | over the hand loop, wall clock: median [lowest, highest] | "
        "over the hand loop, process CPU time |",
        "|---|---|---|---|",
        f"| hand-written | {rows['hand']['us']:.1f} | | |",
    ]
    for key, name in names.items():
        r = rows[key]
        lines.append(
            f"| {name} | {r['us']:.1f} | {r['wall']:+.1f} [{r['wall_min']:+.1f}, {r['wall_max']:+.1f}] | "
            f"{r['cpu']:+.1f} [{r['cpu_min']:+.1f}, {r['cpu_max']:+.1f}] |"
        )
    arctic = rows["arctic_like"]
    met = {True: "met", False: "not met"}
    lines += [
        "",
        f"Against the target (arctic_like at most 50 µs per step over the hand loop): "
        f"{met[arctic['wall'] <= 50]} by the wall clock ({arctic['wall']:+.1f} µs), "
        f"{met[arctic['cpu'] <= 50]} by process CPU time ({arctic['cpu']:+.1f} µs).",
    ]
    return "\n".join(lines)


def region_trl_agreement() -> str:
    rec = Recording.read("trl-agreement")
    table = agreement_figures(rec)
    largest = max(v for row in table.values() for v in row.values())
    start = rec.body.index("largest relative difference")
    end = rec.body.index("\n", rec.body.index("largest of all:"))  # TRL's progress bars follow
    return (
        f"**at most {largest:.1e}** for every metric in every setting (measured with {rec.provenance}):\n\n"
        "```text\n" + rec.body[start:end] + "\n```"
    )


def region_gpu() -> str:
    rec = Recording.read("gpu")
    met = {True: "met", False: "not met"}
    cases = ", ".join(
        f"{r['config']}/{r['engine']} {float(r['ratio']):.3f}x ({met[float(r['ratio']) >= 0.97]})"
        for r in gpu_rows(rec)
    )
    on_cpu = "on cpu" in rec.body.splitlines()[0]
    return "\n".join(
        [
            f"Measured with {rec.provenance}.",
            "",
            "```text",
            rec.body.rstrip("\n"),
            "```",
            "",
            f"Against the target (arctic_like at least 0.97x the bare loop's tokens/s): {cases}"
            + (" — on CPU, where this target does not apply." if on_cpu else "."),
        ]
    )


def region_offload() -> str:
    rec = Recording.read("offload")
    figs = offload_figures(rec)
    plain, offload = figs["zero"]["ZeRO-2"], figs["zero"]["ZeRO-2 + offload_optimizer"]
    adam = {case: speedup for case, (_, speedup) in figs["adam"].items()}
    build = {op: seconds for op, (seconds,) in figs["build"].items()}
    return "\n".join(
        [
            f"Measured with {rec.provenance}.",
            "",
            "```text",
            rec.body.rstrip("\n"),
            "```",
            "",
            f"- **Offload on the tiny model**: {offload[1]:.2f}x the steps/s of plain ZeRO-2; peak "
            f"memory {offload[2]:.0f} MiB against {plain[2]:.0f} MiB. On a CPU the offloaded optimizer "
            "state lives in the same RAM as before, and the tiny model's states (0.13 M parameters, about "
            "2 MB) vanish in what a process with torch, transformers and DeepSpeed occupies; what offload "
            "buys is GPU memory (see "
            "[scaling.md](scaling.md#memory-what-each-zero-stage-and-offload-costs)).",
            f"- **DeepSpeedCPUAdam** steps at {adam['DeepSpeedCPUAdam']:.2f}x the speed of the "
            "`torch.optim.AdamW` arctic_like builds (torch's default on CPU, a loop over the tensors); "
            f"torch's `fused=True` AdamW at {adam['torch AdamW fused']:.2f}x, `foreach=True` at "
            f"{adam['torch AdamW foreach']:.2f}x. DeepSpeed's documentation says 5x to 7x for its CPU Adam "
            "over torch's.",
            f"- **First build**, into an empty extensions directory: `cpu_adam` {build['cpu_adam']:.0f} s, "
            f"the shared-memory collectives {build['deepspeed_shm_comm']:.0f} s; later runs load the cached "
            "builds in seconds.",
        ]
    )


def region_op_builds() -> str:
    build = offload_figures(Recording.read("offload"))["build"]
    return f"{build['deepspeed_shm_comm'][0]:.0f} s and {build['cpu_adam'][0]:.0f} s"


def region_zero_memory() -> str:
    rec = Recording.read("zero-memory")
    one = rec.body.split("## --nodes ")[1]
    table = "\n".join(line for line in one.splitlines()[1:] if re.match(r"^(model|Llama)", line))
    four = zero_memory_rows(rec)["4"][("Llama-3.1-70B", "stage 3")][0]
    return "\n".join(
        [
            f"Measured with {rec.provenance}.",
            "",
            "```text",
            table,
            "```",
            "",
            f"On 4 such nodes (`--nodes 4`, 32 GPUs) plain ZeRO-3 needs {four:.1f} GiB per GPU for the "
            "70B model.",
        ]
    )


REGIONS: dict[str, Callable[[], str]] = {
    "dpo": region_dpo,
    "trl-agreement": region_trl_agreement,
    "demo-summary": region_demo_summary,
    "demo-lines": region_demo_lines,
    "demo-accuracy": region_demo_accuracy,
    "demo-generations": region_demo_generations,
    "demo-wall": region_demo_wall,
    "demo-performance": region_demo_performance,
    "fine-tune": region_fine_tune,
    "dispatch": region_dispatch,
    "overhead": region_overhead,
    "overhead-null": region_overhead_null,
    "packing": region_packing,
    "gpu": region_gpu,
    "offload": region_offload,
    "op-builds": region_op_builds,
    "zero-memory": region_zero_memory,
}


def rendered(text: str) -> str:
    """``text`` with every figures region rendered from the recordings."""

    def fill(match: re.Match[str]) -> str:
        name = match[2]
        if name not in REGIONS:
            raise KeyError(f"unknown figures region {name!r}; known: {sorted(REGIONS)}")
        body = REGIONS[name]()
        inline = "\n" not in body
        return f"{match[1]}{body}{'' if inline else chr(10)}{match[4]}"

    return REGION.sub(fill, text)


def stale(paths: list[Path] = DOCS) -> list[str]:
    """The docs whose figures differ from what the recordings give (empty when all match)."""
    texts = {p: p.read_text(encoding="utf-8") for p in paths}
    return [str(p.relative_to(ROOT)) for p, text in texts.items() if rendered(text) != text]


def write(paths: list[Path] = DOCS) -> None:
    for path in paths:
        text = path.read_text(encoding="utf-8")
        new = rendered(text)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"rewrote figures in {path.relative_to(ROOT)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs="+", choices=[*RUNNERS, "all"], help="rerun these and record them")
    parser.add_argument("--write", action="store_true", help="rewrite the docs from the recordings")
    args = parser.parse_args()
    if args.run:
        for name in RUNNERS if "all" in args.run else args.run:
            print(f"running {name} ...", flush=True)
            RUNNERS[name]()
    if args.run or args.write:
        write()
        return 0
    bad = stale()
    if bad:
        print(f"figures differ from docs/figures/ in: {', '.join(bad)}.")
        print("Fix: python scripts/docs_figures.py --write (or --run ... to measure again)")
        return 1
    print("docs figures match docs/figures/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
