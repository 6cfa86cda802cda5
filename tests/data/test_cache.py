"""The processed-data cache is keyed by everything the data depends on; post-load callbacks always apply."""

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from arctic_like.config import DataConfig, build_trainer
from arctic_like.data import CausalDataFactory
from tests.data.helpers import chat_tokenizer, fake_trainer, write_jsonl
from tests.tiny import TINY_MODEL

ADDITION = {"type": "addition", "num_samples": 150, "eval_samples": 8}


def factory(tmp_path, tokenizer=None, code=(), **config):
    trainer = fake_trainer(tmp_path, tokenizer=tokenizer, code=code)
    data = CausalDataFactory(trainer, DataConfig(**{"sources": [ADDITION], "max_length": 32, **config}))
    trainer.data_factory = data
    return data


def keep_prompts_starting_with(digit):
    return lambda self, ds: ds.filter(lambda row: row["prompt"].startswith(digit))


def test_changing_a_filter_callback_changes_the_key_and_the_data(tmp_path):
    def run(callback):
        data = factory(tmp_path, packing=False)
        data.callbacks.append(("post-load", callback))
        key = data.cache_key()
        train, _ = data()
        prompts = {
            data.tokenizer.decode(ids, skip_special_tokens=True)[0] for ids in train.dataset["input_ids"]
        }
        return key, prompts

    key_1, first_digits = run(keep_prompts_starting_with("1"))
    assert first_digits == {"1"}
    assert run(keep_prompts_starting_with("1"))[0] == key_1  # the same callback hits the cache
    key_2, first_digits = run(keep_prompts_starting_with("2"))  # same code, another closure value
    assert key_2 != key_1 and first_digits == {"2"}
    key_3, _ = run(lambda self, ds: ds.filter(lambda row: row["prompt"].endswith("0=")))  # other code
    assert key_3 not in (key_1, key_2)
    assert len(list((tmp_path / "out" / "data-cache").iterdir())) == 3


def test_callbacks_on_sources_and_other_events_count_as_they_should(tmp_path):
    base = factory(tmp_path).cache_key()
    on_source = factory(tmp_path)
    on_source.sources()[0].callbacks.append(("post-normalize", lambda self, ds: ds.select(range(3))))
    assert on_source.cache_key() != base
    on_loader = factory(tmp_path)
    on_loader.callbacks.append(("post-create-dataloader", lambda self, loader: loader))
    assert on_loader.cache_key() == base  # batching happens after the cache


def test_a_callback_that_cannot_be_fingerprinted_bypasses_the_cache(tmp_path, caplog):
    lock = threading.Lock()

    def locked_filter(self, dataset):
        with lock:
            return dataset

    data = factory(tmp_path)
    data.callbacks.append(("post-load", locked_filter))
    with caplog.at_level(logging.WARNING, logger="arctic_like.data"):
        assert data.cache_key() is None
        train, _ = data()
    assert "processed-data cache not used: the 'post-load' callback" in caplog.text
    assert (
        "cannot be pickled" in caplog.text
        and "Fix: make data callbacks module-level functions" in caplog.text
    )
    assert len(train.dataset) > 0 and not (tmp_path / "out" / "data-cache").exists()


def test_a_source_without_fingerprint_bypasses_the_cache(tmp_path, caplog):
    from arctic_like import registry
    from arctic_like.data import AdditionSource

    class Unkeyed(AdditionSource):
        name = "unkeyed-addition"

        def fingerprint(self):
            return None

    try:
        with caplog.at_level(logging.WARNING, logger="arctic_like.data"):
            assert factory(tmp_path, sources=[{**ADDITION, "type": "unkeyed-addition"}]).cache_key() is None
        assert "processed-data cache not used: the 'unkeyed-addition' task has no fingerprint" in caplog.text
    finally:
        registry.unregister(Unkeyed)


def test_file_content_change_with_the_same_size_and_mtime_is_seen(tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", [{"text": f"aaaa {i}"} for i in range(8)])
    stat = path.stat()
    first = factory(tmp_path, sources=[str(path)], packing=False)
    key = first.cache_key()
    first()
    write_jsonl(path, [{"text": f"bbbb {i}"} for i in range(8)])
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    second = factory(tmp_path, sources=[str(path)], packing=False)
    assert second.cache_key() != key
    train, _ = second()
    texts = {second.tokenizer.decode(ids, skip_special_tokens=True)[:4] for ids in train.dataset["input_ids"]}
    assert texts == {"bbbb"}


def test_key_covers_the_tokenizer_its_chat_template_and_the_code_files(tmp_path):
    code = tmp_path / "recipe_code.py"
    code.write_text("X = 1\n")
    key = factory(tmp_path, tokenizer=chat_tokenizer(), code=[code]).cache_key()
    assert factory(tmp_path, tokenizer=chat_tokenizer(), code=[code]).cache_key() == key
    other_template = chat_tokenizer(template="{{ messages[0].content }}")
    assert factory(tmp_path, tokenizer=other_template, code=[code]).cache_key() != key
    assert factory(tmp_path, tokenizer=chat_tokenizer(add_bos=True), code=[code]).cache_key() != key
    code.write_text("X = 2\n")
    assert factory(tmp_path, tokenizer=chat_tokenizer(), code=[code]).cache_key() != key
    grown = chat_tokenizer()
    grown.add_tokens(["<extra>"])
    assert factory(tmp_path, tokenizer=grown, code=[code]).cache_key() != key


def test_key_ignores_settings_used_after_the_cache(tmp_path):
    key = factory(tmp_path).cache_key()
    assert (
        factory(tmp_path, num_proc=2, num_workers=1, eval_batch_size=3, eval_fraction=0.1).cache_key() == key
    )
    assert factory(tmp_path, max_length=33).cache_key() != key
    assert factory(tmp_path, mask_prompt=True).cache_key() != key


def trainer_recipe(tmp_path, tokenizer):
    """A recipe whose data factory keeps only the reverse problems without an 'h' (a post-load filter)."""
    (tmp_path / "no_h.py").write_text(
        "from arctic_like.data import CausalDataFactory\n\n\n"
        "class NoH(CausalDataFactory):\n"
        '    name = "no-h"\n\n'
        "    def post_load_callback(self, dataset):\n"
        "        return dataset.filter(lambda row: 'h' not in row['prompt'])\n"
    )
    return {
        "code": [str(tmp_path / "no_h.py")],
        "tokenizer": tokenizer,
        "data": {
            "type": "no-h",
            "sources": [{"type": "reverse", "num_samples": 60, "eval_samples": 0, "alphabet": "abcdefgh"}],
            "packing": False,
            "max_length": 16,
        },
        "model": {"config": dict(TINY_MODEL)},
        "micro_batch_size": 2,
        "output_dir": str(tmp_path / "out"),
        "device": "cpu",
        "progress": False,
    }


@pytest.mark.parametrize("tokenizer_kind", ["char", "huggingface"])
def test_post_load_filter_counts_whatever_the_tokenizer(tmp_path, tokenizer_kind):
    from arctic_like.data import make_task
    from arctic_like.data.synthetic import ReverseSourceConfig

    if tokenizer_kind == "char":
        tokenizer = {"type": "char"}  # trained on the loaded data, after the filter
    else:
        saved = tmp_path / "saved-tokenizer"
        chat_tokenizer().save_pretrained(saved)
        tokenizer = {"type": "huggingface", "name_or_path": str(saved)}
    trainer = build_trainer(trainer_recipe(tmp_path, tokenizer))
    source = ReverseSourceConfig(type="reverse", num_samples=60, eval_samples=0, alphabet="abcdefgh")
    kept = [p for p, _ in make_task(source, 42).train_problems() if "h" not in p]
    assert 0 < len(kept) < 60
    assert len(trainer.train_dataloader.dataset) == len(kept)
    decoded = {
        trainer.tokenizer.decode(ids, skip_special_tokens=True)
        for ids in trainer.train_dataloader.dataset["input_ids"]
    }
    assert {text.split(">")[0] + ">" for text in decoded} == set(kept)
    if tokenizer_kind == "char":
        assert "h" not in trainer.tokenizer.get_vocab()  # the tokenizer saw only the filtered rows


def test_a_filter_attached_after_the_tokenizer_read_the_data_still_applies(tmp_path):
    data = factory(tmp_path, packing=False)
    assert len(list(data.raw_texts())) == 158  # what a trained tokenizer reads: every row, loaded once
    data.callbacks.append(("post-load", keep_prompts_starting_with("1")))
    train, _ = data()
    prompts = [data.tokenizer.decode(ids, skip_special_tokens=True) for ids in train.dataset["input_ids"]]
    assert prompts and all(p.startswith("1") for p in prompts)


KEY_SCRIPT = """
import sys
from pathlib import Path
sys.path[:0] = [{folder!r}, {root!r}]
import keyed_code
from arctic_like.config import DataConfig
from tests.data.helpers import chat_tokenizer, fake_trainer

folder = Path({folder!r})
trainer = fake_trainer(folder, tokenizer=chat_tokenizer(), code=[folder / "keyed_code.py"])
sources = [{{"type": "keyed-source"}}, "addition", {{"path": str(folder / "keyed_code.py"), "type": "jsonl"}}]
factory = keyed_code.KeyedFactory(trainer, DataConfig(sources=sources))
factory.callbacks.append(("post-load", keyed_code.keep_words))
print(factory.cache_key())
"""

KEYED_CODE = """
import datasets

from arctic_like.config import DataSourceConfig
from arctic_like.data import CausalDataFactory, DataSource

WORDS = {"alpha", "beta", "gamma"}


def keep_words(self, dataset):
    return dataset.filter(lambda row: row["text"] in WORDS)


class KeyedConfig(DataSourceConfig):
    repeat: int = 3


class KeyedSource(DataSource):
    name = "keyed-source"
    config = KeyedConfig

    def load(self, config, split):
        return datasets.Dataset.from_dict({"text": sorted(WORDS) * config.repeat})


class KeyedFactory(CausalDataFactory):
    name = "keyed-factory"

    def post_process_callback(self, dataset):
        return dataset
"""


@pytest.mark.slow
def test_the_key_is_the_same_in_another_process(tmp_path, monkeypatch):
    """Code fingerprints do not depend on the process (its hash seed orders sets and dicts differently)."""
    (tmp_path / "keyed_code.py").write_text(KEYED_CODE)
    script = KEY_SCRIPT.format(folder=str(tmp_path), root=str(Path(__file__).resolve().parents[2]))
    env = {**os.environ, "PYTHONHASHSEED": "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"}
    there = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    )
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script prepends its folders
    namespace: dict = {}
    exec(script.replace("print(factory.cache_key())", "key = factory.cache_key()"), namespace)
    assert len(namespace["key"]) == 32 and there.stdout.split()[-1] == namespace["key"]


def test_process_data_and_the_plan_say_when_the_cache_is_not_used(tmp_path, monkeypatch, capsys):
    from arctic_like.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "locked.py").write_text(
        "import threading\n\nfrom arctic_like.data import CausalDataFactory\n\nLOCK = threading.Lock()\n\n\n"
        "class Locked(CausalDataFactory):\n"
        '    name = "locked"\n\n'
        "    def post_load_callback(self, dataset):\n"
        "        with LOCK:\n"
        "            return dataset\n"
    )
    (tmp_path / "recipe.yaml").write_text(
        "code: locked.py\ntokenizer: char\n"
        "data: {type: locked, packing: false, sources: [{type: addition, num_samples: 16}]}\n"
        "model: {config: {model_type: llama, hidden_size: 16, num_attention_heads: 2}}\n"
    )
    assert main(["process-data", "recipe.yaml"]) == 0
    assert "cache: not used (a data callback or source has no fingerprint" in capsys.readouterr().out
    assert main(["train", "recipe.yaml", "--dry-run"]) == 0
    assert "cache not used (a data callback or source has no fingerprint)" in capsys.readouterr().out


class MinLength:
    """A callable-object callback: its state is part of its fingerprint."""

    def __init__(self, length):
        self.length = length

    def __call__(self, owner, dataset):
        return dataset.filter(lambda row: len(row["text"]) >= self.length)


def drop_below(owner, dataset, length=2):
    return dataset.filter(lambda row: len(row["text"]) >= length)


def test_fingerprints_of_callables_follow_their_code_and_state():
    import functools
    import operator

    from arctic_like.data.fingerprint import callable_fingerprint

    assert callable_fingerprint(MinLength(2)) == callable_fingerprint(MinLength(2))
    assert callable_fingerprint(MinLength(2)) != callable_fingerprint(MinLength(3))
    assert callable_fingerprint(functools.partial(drop_below, length=2)) != callable_fingerprint(
        functools.partial(drop_below, length=3)
    )
    assert callable_fingerprint(operator.itemgetter("a")) != callable_fingerprint(operator.itemgetter("b"))
    assert callable_fingerprint(MinLength(2).__call__) != callable_fingerprint(MinLength(3).__call__)
