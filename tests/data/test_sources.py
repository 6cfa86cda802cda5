import json

import pandas as pd
import pytest
from pydantic import ValidationError

from arctic_like.config import DataConfig
from arctic_like.config.parts import (
    AdditionSourceConfig,
    CallableSourceConfig,
    FileSourceConfig,
    ReverseSourceConfig,
)
from arctic_like.data import AdditionTask, ReverseTask, load_source, make_task


def test_addition_problems_are_deterministic_distinct_and_held_out():
    config = AdditionSourceConfig(type="addition", num_samples=300, eval_samples=50, digits=2)
    task = make_task(config, seed=1)
    assert isinstance(task, AdditionTask)
    again = make_task(config, seed=1)
    assert task.problems() == again.problems()
    assert make_task(config, seed=2).problems() != task.problems()
    train, held_out = task.train_problems(), task.eval_problems()
    assert len(train) == 300 and len(held_out) == 50
    assert not {p for p, _ in train} & {p for p, _ in held_out}
    for prompt, answer in train + held_out:
        a, b = prompt.removesuffix("=").split("+")
        assert int(a) + int(b) == int(answer) and int(a) < 100 and int(b) < 100


def test_source_seed_overrides_trainer_seed():
    config = AdditionSourceConfig(type="addition", num_samples=20, eval_samples=5, seed=9)
    assert make_task(config, 1).problems() == make_task(config, 2).problems()


def test_reverse_task():
    config = ReverseSourceConfig(type="reverse", num_samples=100, eval_samples=10, min_length=2, max_length=4)
    task = make_task(config, 0)
    assert isinstance(task, ReverseTask)
    for prompt, answer in task.problems():
        word = prompt.removesuffix(">")
        assert answer == word[::-1] and 2 <= len(word) <= 4 and set(word) <= set("abcdefgh")
    with pytest.raises(ValidationError, match=r"min_length \(5\) is larger than max_length \(3\)"):
        ReverseSourceConfig(type="reverse", min_length=5, max_length=3)


def test_task_capacity_error():
    config = AdditionSourceConfig(type="addition", num_samples=100, eval_samples=10, digits=1)
    with pytest.raises(
        ValueError, match=r"the 'addition' task asks for 110 distinct problems .* allow only 100"
    ):
        make_task(config, 0).problems()


def test_synthetic_source_rows():
    source = AdditionSourceConfig(type="addition", num_samples=10, eval_samples=3)
    train, held_out = load_source(source, 0, "train"), load_source(source, 0, "eval")
    assert len(train) == 10 and len(held_out) == 3
    assert train[0]["text"] == train[0]["prompt"] + train[0]["response"]


@pytest.mark.parametrize("kind", ["jsonl", "json", "parquet", "csv"])
def test_file_sources(tmp_path, kind):
    records = [{"body": f"line {i}", "q": f"q{i}", "a": f"a{i}"} for i in range(6)]
    path = tmp_path / f"data.{kind}"
    frame = pd.DataFrame(records)
    if kind == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    elif kind == "json":
        path.write_text(json.dumps(records))
    elif kind == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    source = FileSourceConfig(
        type=kind, path=path, text_field="body", prompt_field="q", response_field="a", limit=4
    )
    dataset = load_source(source, 0, "train")
    assert dataset.column_names == ["text", "prompt", "response"]
    assert dataset[:] == {
        "text": [f"line {i}" for i in range(4)],
        "prompt": [f"q{i}" for i in range(4)],
        "response": [f"a{i}" for i in range(4)],
    }


def test_file_source_prompt_response_only(tmp_path):
    path = tmp_path / "sft.jsonl"
    path.write_text('{"prompt": "p", "response": "r"}\n')
    dataset = load_source(FileSourceConfig(type="jsonl", path=path), 0, "train")
    assert dataset[0] == {"text": "", "prompt": "p", "response": "r"}


def test_file_source_without_usable_columns(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"content": "x"}\n')
    with pytest.raises(
        ValueError, match=r"has columns \['content'\] but neither a text column 'text'.*Fix: set text_field"
    ):
        load_source(FileSourceConfig(type="jsonl", path=path), 0, "train")


def test_missing_file_source(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data source '.*nope\.jsonl' does not exist"):
        load_source(FileSourceConfig(type="jsonl", path=tmp_path / "nope.jsonl"), 0, "train")


def test_callable_sources():
    source = CallableSourceConfig(
        type="callable", function="tests.data.helpers:make_rows", kwargs={"n": 3}, limit=2
    )
    assert load_source(source, 0, "train")["text"] == ["item 0", "item 1"]
    strings = CallableSourceConfig(type="callable", function="tests.data.helpers:make_strings")
    assert load_source(strings, 0, "train")["text"] == ["s0", "s1", "s2", "s3", "s4"]


def test_callable_source_errors():
    with pytest.raises(ValueError, match=r"cannot import data source function 'tests.data.helpers:nope'"):
        load_source(CallableSourceConfig(type="callable", function="tests.data.helpers:nope"), 0, "train")
    with pytest.raises(
        ValueError, match=r"'tests.data.helpers:make_bad' produced a int; expected dicts or strings"
    ):
        load_source(CallableSourceConfig(type="callable", function="tests.data.helpers:make_bad"), 0, "train")
    with pytest.raises(ValidationError, match="'not a function' is not an import path"):
        CallableSourceConfig(type="callable", function="not a function")


def test_source_shorthand_in_data_config(tmp_path):
    config = DataConfig(
        sources=["addition", str(tmp_path / "a.parquet"), {"path": "b.csv"}], eval_sources="reverse"
    )
    assert [s.type for s in config.sources] == ["addition", "parquet", "csv"]
    assert config.eval_sources[0].type == "reverse"
    with pytest.raises(ValidationError, match=r"cannot tell the format of 'data.txt' from its extension"):
        DataConfig(sources=["data.txt"])
    with pytest.raises(ValidationError, match=r"sources\.0"):
        DataConfig(sources=[{"type": "mnist"}])
