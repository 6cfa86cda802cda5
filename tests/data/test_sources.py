"""Data sources: files, save_to_disk folders, the local datasets cache, functions, tasks and user classes;
column and role mapping; limits and mixing."""

import json
import textwrap

import datasets
import pandas as pd
import pytest
from pydantic import ValidationError

from arctic_like import registry
from arctic_like.config import DataConfig, RecipeError, load_recipe
from arctic_like.data import (
    AdditionSourceConfig,
    AdditionTask,
    CausalDataFactory,
    DataSource,
    ReverseSourceConfig,
    ReverseTask,
    make_task,
)
from tests.data.helpers import fake_trainer, write_jsonl
from tests.tiny import TINY_MODEL

EMPTY = {"text": "", "prompt": "", "response": "", "messages": []}


def factory_for(tmp_path, *sources, **config):
    return CausalDataFactory(fake_trainer(tmp_path), DataConfig(sources=list(sources), **config))


def rows(tmp_path, source, split="train"):
    """The rows ``source`` gives, as the factory loads them."""
    return factory_for(tmp_path, source).sources()[0](split).to_list()


# ---- synthetic tasks ---------------------------------------------------------------------------------------


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


def test_task_capacity_error(tmp_path):
    with pytest.raises(
        ValueError, match=r"the 'addition' task asks for 110 distinct problems .* allow only 100"
    ):
        rows(tmp_path, {"type": "addition", "num_samples": 100, "eval_samples": 10, "digits": 1})


def test_synthetic_source_rows_are_prompt_response_pairs(tmp_path):
    source = {"type": "addition", "num_samples": 10, "eval_samples": 3, "seed": 4}
    train, held_out = rows(tmp_path, source), rows(tmp_path, source, "eval")
    problems = make_task(AdditionSourceConfig(**source), 0).problems()
    assert [(r["prompt"], r["response"]) for r in held_out + train] == problems
    assert train[0] == {**EMPTY, "prompt": problems[3][0], "response": problems[3][1]}


# ---- files -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["jsonl", "json", "parquet", "csv"])
def test_file_sources_with_column_mapping_and_limit(tmp_path, kind):
    records = [{"body": f"line {i}", "q": f"q{i}", "a": f"a{i}"} for i in range(6)]
    path = tmp_path / f"data.{kind}"
    frame = pd.DataFrame(records)
    if kind == "jsonl":
        write_jsonl(path, records)
    elif kind == "json":
        path.write_text(json.dumps(records))
    elif kind == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    mapping = {"body": "text", "q": "prompt", "a": "response"}
    loaded = rows(tmp_path, {"path": str(path), "column_mapping": mapping, "limit": 4})
    assert loaded == [
        {**EMPTY, "text": f"line {i}", "prompt": f"q{i}", "response": f"a{i}"} for i in range(4)
    ]


def test_file_glob(tmp_path):
    for part in range(3):
        write_jsonl(tmp_path / f"part-{part}.jsonl", [{"text": f"p{part}-{i}"} for i in range(2)])
    loaded = rows(tmp_path, {"type": "jsonl", "path": str(tmp_path / "part-*.jsonl")})
    assert sorted(r["text"] for r in loaded) == [f"p{p}-{i}" for p in range(3) for i in range(2)]


def test_file_source_without_usable_columns(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"content": "x"}])
    with pytest.raises(
        ValueError,
        match=r"has columns \['content'\] but none of the row columns \(text, prompt, response, messages\)\. "
        r"Fix: map them with column_mapping",
    ):
        rows(tmp_path, str(path))


def test_column_mapping_errors(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"body": "x"}])
    with pytest.raises(
        ValueError, match=r"column_mapping names \['bdy'\] but the source has columns \['body'\]"
    ):
        rows(tmp_path, {"path": str(path), "column_mapping": {"bdy": "text"}})
    with pytest.raises(ValueError, match=r"column_mapping maps to \['txt'\], which are not row columns"):
        rows(tmp_path, {"path": str(path), "column_mapping": {"body": "txt"}})


def test_column_mapping_replaces_a_column_of_the_same_name(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"text": "old", "body": "new"}])
    assert rows(tmp_path, {"path": str(path), "column_mapping": {"body": "text"}})[0]["text"] == "new"


def test_missing_file_source(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data source '.*nope\.jsonl' does not exist"):
        rows(tmp_path, str(tmp_path / "nope.jsonl"))


def test_chat_messages_from_a_file(tmp_path):
    messages = [{"role": "user", "content": "hi", "name": "ann"}, {"role": "assistant", "content": None}]
    path = write_jsonl(tmp_path / "chat.jsonl", [{"messages": messages}])
    assert rows(tmp_path, str(path))[0]["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": ""},
    ]
    parts = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    write_jsonl(path, [{"messages": parts}])
    assert rows(tmp_path, str(path))[0]["messages"] == [{"role": "user", "content": "ab"}]


def test_malformed_messages_are_errors(tmp_path):
    path = write_jsonl(tmp_path / "chat.jsonl", [{"messages": [{"content": "no role"}]}])
    with pytest.raises(ValueError, match=r"every turn in `messages` needs a `role` and a `content`"):
        rows(tmp_path, str(path))
    write_jsonl(path, [{"messages": "hello"}])
    with pytest.raises(
        ValueError, match=r"`messages` must be a list of \{role, content\} turns, got 'hello'"
    ):
        rows(tmp_path, str(path))
    write_jsonl(path, [{"messages": [{"role": "user", "content": [{"type": "image"}]}]}])
    with pytest.raises(ValueError, match=r"a message's content must be a string \(or a list of text parts\)"):
        rows(tmp_path, str(path))


def test_role_mapping_from_columns_and_from_turn_lists(tmp_path):
    flat = write_jsonl(tmp_path / "qa.jsonl", [{"sys": "be nice", "question": "2+2?", "answer": "4"}])
    mapping = {"system": "sys", "user": "question", "assistant": "answer"}
    assert rows(tmp_path, {"path": str(flat), "role_mapping": mapping})[0]["messages"] == [
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
    ]
    turns = [
        {"from": "human", "value": "hi"},
        {"from": "gpt", "value": "hello"},
        {"from": "tool", "value": "ignored"},
        {"from": "human", "value": "bye"},
        {"from": "gpt", "value": "ciao"},
    ]
    sharegpt = write_jsonl(tmp_path / "sharegpt.jsonl", [{"conversations": turns}])
    mapping = {"user": "conversations.from.human", "assistant": "conversations.from.gpt"}
    assert [
        m["content"] for m in rows(tmp_path, {"path": str(sharegpt), "role_mapping": mapping})[0]["messages"]
    ] == [
        "hi",
        "hello",
        "bye",
        "ciao",
    ]
    with pytest.raises(
        ValueError, match=r"role_mapping reads columns \['convs'\] but the source has columns"
    ):
        rows(tmp_path, {"path": str(sharegpt), "role_mapping": {"user": "convs.from.human"}})
    with pytest.raises(ValidationError, match=r"role_mapping\.user: 'a\.b' is neither a column nor a path"):
        DataConfig(sources=[{"path": str(sharegpt), "role_mapping": {"user": "a.b"}}])


# ---- save_to_disk folders and the datasets cache -----------------------------------------------------------


def test_disk_source_reads_a_saved_dataset_and_its_splits(tmp_path):
    single = tmp_path / "single"
    datasets.Dataset.from_dict({"text": ["a", "b"]}).save_to_disk(str(single))
    assert [r["text"] for r in rows(tmp_path, str(single))] == ["a", "b"]
    several = tmp_path / "several"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": ["t1", "t2"]}),
            "validation": datasets.Dataset.from_dict({"text": ["v1"]}),
            "extra": datasets.Dataset.from_dict({"text": ["x"]}),
        }
    ).save_to_disk(str(several))
    assert [r["text"] for r in rows(tmp_path, {"type": "disk", "path": str(several)})] == ["t1", "t2"]
    assert [r["text"] for r in rows(tmp_path, {"type": "disk", "path": str(several)}, "eval")] == ["v1"]
    assert [r["text"] for r in rows(tmp_path, {"type": "disk", "path": str(several), "split": "extra"})] == [
        "x"
    ]
    with pytest.raises(
        ValueError, match=r"has no split 'test'; splits: train, validation, extra\. Fix: set split"
    ):
        rows(tmp_path, {"type": "disk", "path": str(several), "split": "test"})
    no_train = tmp_path / "no-train"
    datasets.DatasetDict(
        {"a": datasets.Dataset.from_dict({"text": ["1"]}), "b": datasets.Dataset.from_dict({"text": ["2"]})}
    ).save_to_disk(str(no_train))
    with pytest.raises(ValueError, match=r"has splits a, b and none is train\. Fix: set split"):
        rows(tmp_path, {"type": "disk", "path": str(no_train)})
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"is not a folder written by save_to_disk"):
        rows(tmp_path, {"type": "disk", "path": str(tmp_path / "empty")})


def cache_hub_dataset(cache, repo_id, splits):
    """Put ``splits`` into the datasets cache ``cache`` laid out as ``load_dataset(repo_id)`` leaves a Hub
    download (``<namespace>___<name>/<config>/<version>/<revision>/<name>-<split>.arrow``), by running the
    packaged json builder with the Hub dataset's name, then moving its folder under the namespace."""
    from datasets.packaged_modules.json.json import Json

    namespace, name = repo_id.split("/")
    cache.mkdir(parents=True)
    files = {
        split: str(write_jsonl(cache.parent / f"{name}-{split}.jsonl", records))
        for split, records in splits.items()
    }
    Json(
        cache_dir=str(cache), dataset_name=name, config_id="default", hash="0123abcd", data_files=files
    ).download_and_prepare()
    (cache / name).rename(cache / f"{namespace}___{name}")


def test_huggingface_source_reads_the_local_cache_offline(tmp_path, monkeypatch):
    cache = tmp_path / "hf-home" / "datasets"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)  # what HF_HOME / HF_DATASETS_CACHE set
    offline = datasets.config.HF_HUB_OFFLINE
    cache_hub_dataset(
        cache,
        "arctic-like/tiny-chat",
        {
            "train": [{"question": f"q{i}", "answer": f"a{i}"} for i in range(5)],
            "test": [{"question": "tq", "answer": "ta"}],
        },
    )
    mapping = {"question": "prompt", "answer": "response"}
    source = {"type": "huggingface", "name_or_path": "arctic-like/tiny-chat", "column_mapping": mapping}
    assert [r["prompt"] for r in rows(tmp_path, source)] == [f"q{i}" for i in range(5)]
    assert [r["response"] for r in rows(tmp_path, source, "eval")] == ["ta"]
    sliced = {**source, "name_or_path": "arctic-like/tiny-chat:train[:2]"}
    assert [r["prompt"] for r in rows(tmp_path, sliced)] == ["q0", "q1"]
    assert datasets.config.HF_HUB_OFFLINE is offline  # offline only while reading
    with pytest.raises(
        FileNotFoundError,
        match=r"data source 'arctic-like/missing' is not in the local datasets cache .* runs never "
        r"download .*Fix: on a machine with network run "
        r"`python -c \"import datasets; datasets.load_dataset\('arctic-like/missing'\)\"`",
    ):
        rows(tmp_path, {"type": "huggingface", "name_or_path": "arctic-like/missing"})


def test_huggingface_source_also_reads_a_saved_folder(tmp_path):
    folder = tmp_path / "saved"
    datasets.Dataset.from_dict({"text": ["x", "y"]}).save_to_disk(str(folder))
    assert [r["text"] for r in rows(tmp_path, {"name_or_path": str(folder)})] == ["x", "y"]


# ---- functions and user classes ----------------------------------------------------------------------------


def test_callable_sources(tmp_path):
    source = {"type": "callable", "function": "tests.data.helpers:make_rows", "kwargs": {"n": 3}, "limit": 2}
    assert [r["text"] for r in rows(tmp_path, source)] == ["item 0", "item 1"]
    strings = {"type": "callable", "function": "tests.data.helpers:make_strings"}
    assert [r["text"] for r in rows(tmp_path, strings)] == ["s0", "s1", "s2", "s3", "s4"]


def test_callable_source_errors(tmp_path):
    with pytest.raises(ValueError, match=r"cannot import data source function 'tests.data.helpers:nope'"):
        rows(tmp_path, {"type": "callable", "function": "tests.data.helpers:nope"})
    with pytest.raises(
        ValueError, match=r"'tests.data.helpers:make_bad' produced a int; expected dicts or strings"
    ):
        rows(tmp_path, {"type": "callable", "function": "tests.data.helpers:make_bad"})
    with pytest.raises(ValidationError, match="'not a function' is not an import path"):
        DataConfig(sources=[{"type": "callable", "function": "not a function"}])


USER_SOURCE = '''
import datasets

from arctic_like.config import DataSourceConfig
from arctic_like.data import DataSource


class CountingConfig(DataSourceConfig):
    n: int = 3


class Counting(DataSource):
    """Rows "0".."n-1"; a post-load callback (ArcticTraining's method spelling) drops the odd ones."""

    name = "counting"
    config = CountingConfig

    def load(self, config, split):
        return datasets.Dataset.from_dict({"number": [str(i) for i in range(config.n)]})

    def post_load_callback(self, dataset):
        return dataset.filter(lambda row: int(row["number"]) % 2 == 0)
'''


def test_user_source_class_from_a_code_file(tmp_path):
    (tmp_path / "my_source.py").write_text(textwrap.dedent(USER_SOURCE))
    recipe = {
        "code": [str(tmp_path / "my_source.py")],
        "model": {"config": dict(TINY_MODEL)},
        "data": {"sources": [{"type": "counting", "n": 7, "column_mapping": {"number": "text"}}]},
    }
    config = load_recipe(recipe)
    assert config.data.sources[0].n == 7
    factory = CausalDataFactory(fake_trainer(tmp_path), config.data)
    assert factory.load()["train"]["text"] == ["0", "2", "4", "6"]
    source = factory.sources()[0]
    source.callbacks.append(("post-normalize", lambda self, ds: ds.filter(lambda r: r["text"] != "4")))
    assert source("train")["text"] == ["0", "2", "6"]
    with pytest.raises(RecipeError, match=r"data\.sources\[0\]\.n: Input should be a valid integer"):
        load_recipe({**recipe, "data": {"sources": [{"type": "counting", "n": "many"}]}})


def test_unknown_source_type_names_the_available_ones():
    with pytest.raises(
        ValidationError, match=r"no DataSource named 'jsnl'; available: .*jsonl.* Did you mean 'jsonl'\?"
    ):
        DataConfig(sources=[{"type": "jsnl", "path": "x"}])


def test_a_source_must_implement_load_and_return_a_dataset(tmp_path):
    class Lazy(DataSource):
        name = "lazy-source"

    class Listing(DataSource):
        name = "listing-source"

        def load(self, config, split):
            return [{"text": "x"}]

    try:
        with pytest.raises(NotImplementedError, match=r"Lazy must implement load\(config, split\)"):
            rows(tmp_path, {"type": "lazy-source"})
        with pytest.raises(TypeError, match=r"Listing\.load returned a list; expected a datasets\.Dataset"):
            rows(tmp_path, {"type": "listing-source"})
    finally:
        registry.unregister(Lazy)
        registry.unregister(Listing)


def test_source_shorthand_in_data_config(tmp_path):
    folder = tmp_path / "saved"
    datasets.Dataset.from_dict({"text": ["x"]}).save_to_disk(str(folder))
    config = DataConfig(
        sources=[
            "addition",
            str(tmp_path / "a.parquet"),
            {"path": "b.csv"},
            str(folder),
            {"name_or_path": "o/n"},
        ],
        eval_sources="reverse",
    )
    assert [s.type for s in config.sources] == ["addition", "parquet", "csv", "disk", "huggingface"]
    assert config.eval_sources[0].type == "reverse"
    with pytest.raises(ValidationError, match=r"cannot tell the format of 'data.txt' from its extension"):
        DataConfig(sources=["data.txt"])
    with pytest.raises(ValidationError, match=r"sources\.0\.type"):
        DataConfig(sources=[{"type": "mnist"}])
    with pytest.raises(ValidationError, match=r"a data source must be a mapping with a `type`.*got 42"):
        DataConfig(sources=[42])
    with pytest.raises(ValidationError, match=r"name_or_path is empty; write a dataset name like org/name"):
        DataConfig(sources=[{"type": "huggingface", "name_or_path": " "}])


# ---- limits and mixing -------------------------------------------------------------------------------------


def test_mixing_sources_with_limits_fractions_and_shuffle(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"text": f"a{i}"} for i in range(10)])
    b = write_jsonl(tmp_path / "b.jsonl", [{"prompt": f"b{i}?", "response": f"b{i}"} for i in range(10)])
    c = write_jsonl(
        tmp_path / "c.jsonl", [{"messages": [{"role": "user", "content": f"c{i}"}]} for i in range(10)]
    )
    factory = factory_for(
        tmp_path,
        {"path": str(a), "limit": 3},
        {"path": str(b), "fraction": "40%"},
        {"path": str(c), "limit": 2, "shuffle": True, "seed": 1},
        {"type": "addition", "num_samples": 5, "eval_samples": 2},
    )
    loaded = factory.load()
    train = loaded["train"].to_list()
    assert [r["text"] for r in train[:3]] == ["a0", "a1", "a2"]
    assert [r["prompt"] for r in train[3:7]] == ["b0?", "b1?", "b2?", "b3?"]
    picked = [r["messages"][0]["content"] for r in train[7:9]]
    assert (
        len(set(picked)) == 2
        and picked != ["c0", "c1"]
        and picked == sorted(picked, key=lambda s: int(s[1:]))
    )
    assert len(train) == 3 + 4 + 2 + 5 and len(loaded["eval"]) == 2
    again = factory_for(tmp_path, {"path": str(c), "limit": 2, "shuffle": True, "seed": 1}).load()["train"]
    assert [r["messages"][0]["content"] for r in again] == picked
    with pytest.raises(ValidationError, match=r"fraction\s+Input should be greater than 0"):
        DataConfig(sources=[{"path": str(a), "fraction": 0}])
