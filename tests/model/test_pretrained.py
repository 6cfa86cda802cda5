"""Fine-tuning a saved model from a recipe: paths, the default tokenizer, mismatches, checks before writing.

The saved model is the walk-through's pretrained-style stand-in (examples/fine-tuning/make_pretrained.py,
untrained here): a tiny Llama and a BPE tokenizer whose special-token ids differ from the `char` tokenizer's.
"""

from pathlib import Path

import pytest
import yaml
from huggingface_hub import constants
from transformers import AutoTokenizer

from arctic_like import build_trainer, load_recipe
from arctic_like.cli import main
from arctic_like.config import RecipeError
from arctic_like.config.trainer import import_code_file
from arctic_like.model import huggingface as hf_model

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
pretrained = import_code_file(EXAMPLES / "fine-tuning" / "make_pretrained.py")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """``models/tiny`` (model + tokenizer), ``models/other-tokenizer`` and ``recipes/data.jsonl``."""
    root = tmp_path_factory.mktemp("project")
    tokenizer = pretrained.build_tokenizer()
    pretrained.build_model(tokenizer).save_pretrained(root / "models" / "tiny")
    tokenizer.save_pretrained(root / "models" / "tiny")
    other = pretrained.build_tokenizer()
    other.add_tokens([f"<extra_{i}>" for i in range(10)])
    other.save_pretrained(root / "models" / "other-tokenizer")
    (root / "recipes").mkdir()
    rows = [f'{{"prompt": "What is {a}+{a}?", "response": "{2 * a}"}}' for a in range(8)]
    (root / "recipes" / "data.jsonl").write_text("\n".join(rows) + "\n")
    return root


def write_recipe(root: Path, name: str, **parts) -> Path:
    recipe = {
        "type": "sft",
        "model": {"name_or_path": "../models/tiny"},
        "data": {"sources": ["data.jsonl"], "max_length": 32},
        "micro_batch_size": 4,
        "max_steps": 2,
        "device": "cpu",
        "progress": False,
        **parts,
    }
    path = root / "recipes" / name
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_paths_are_relative_to_the_recipe_and_the_tokenizer_defaults_to_the_models(
    root, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # anywhere but the recipe's folder
    recipe = write_recipe(root, "default.yaml", output_dir=str(tmp_path / "run"))
    config = load_recipe(recipe)
    model_dir = str(root / "models" / "tiny")
    assert config.model.name_or_path == model_dir
    assert (config.tokenizer.type, config.tokenizer.name_or_path) == ("huggingface", model_dir)

    trainer = build_trainer(config)
    own = AutoTokenizer.from_pretrained(model_dir)
    text = "What is 3+3?"
    assert trainer.tokenizer(text)["input_ids"] == own(text)["input_ids"]
    assert (trainer.tokenizer.bos_token_id, trainer.tokenizer.eos_token_id) == (0, 1)
    assert trainer.model.config.vocab_size == len(own)
    trainer.train()
    assert trainer.state.global_step == 2


def test_an_explicit_tokenizer_path_is_relative_to_the_recipe_too(root):
    recipe = write_recipe(root, "explicit.yaml", tokenizer={"name_or_path": "../models/tiny"})
    assert load_recipe(recipe).tokenizer.name_or_path == str(root / "models" / "tiny")


def test_a_tokenizer_that_does_not_match_the_model_is_an_error_naming_both(root, tmp_path):
    recipe = write_recipe(
        root,
        "other.yaml",
        tokenizer={"name_or_path": "../models/other-tokenizer"},
        output_dir=str(tmp_path / "run"),
    )
    with pytest.raises(
        ValueError,
        match=r"tokenizer '.*/models/other-tokenizer' does not match model '.*/models/tiny': the tokenizer "
        r"has 410 tokens but the model has embeddings for 400\. Fix: use the model's own tokenizer .*or set "
        r"model\.resize_token_embeddings: true",
    ):
        build_trainer(load_recipe(recipe))
    resized = build_trainer(
        load_recipe(recipe, ["model.resize_token_embeddings=true", f"output_dir={tmp_path / 'run2'}"])
    )
    assert resized.model.get_input_embeddings().num_embeddings == 410


def test_the_char_tokenizer_on_a_pretrained_model_is_an_error(root, tmp_path, capsys):
    output = tmp_path / "run"
    recipe = write_recipe(root, "char.yaml", tokenizer="char", output_dir=str(output))
    code, err = run_cli(recipe, capsys)
    assert code == 2 and not output.exists()
    assert err.startswith("arctic-like: error: tokenizer the 'char' tokenizer trained in-process does not")
    with pytest.raises(
        RecipeError,
        match=r"tokenizer the 'char' tokenizer trained in-process does not match model '.*/models/tiny': "
        r"the tokenizer's pad_token_id is 0 but the model's config says 2; the tokenizer's bos_token_id is 2 "
        r"but the model's config says 0",
    ):
        build_trainer(load_recipe(recipe))


def test_a_missing_directory_is_named_relative_to_the_recipe(root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipe = write_recipe(root, "missing.yaml", model={"name_or_path": "../models/missing"})
    with pytest.raises(
        RecipeError,
        match=r"model\.name_or_path: directory '.*/recipes/\.\./models/missing' does not exist\. Fix: "
        r"correct model\.name_or_path \(it is read relative to the recipe's folder '.*/recipes'\)",
    ):
        load_recipe(recipe)


def test_a_missing_hub_style_name_offline_says_so(root, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    recipe = write_recipe(root, "hub.yaml", model={"name_or_path": "models/tiny-missing"})
    with pytest.raises(
        RecipeError,
        match=r"directory '.*/recipes/models/tiny-missing' does not exist, and 'models/tiny-missing' is not "
        r"in the local Hugging Face cache \(HF_HUB_OFFLINE is set\)",
    ):
        load_recipe(recipe)


def run_cli(recipe: Path, capsys) -> tuple[int, str]:
    code = main(["train", str(recipe)])
    return code, capsys.readouterr().err


def test_a_model_config_typo_is_refused_before_any_file_is_written(root, tmp_path, capsys):
    output = tmp_path / "run"
    config = {"model_type": "llama", "hidden_sise": 16, "num_hidden_layers": 1}
    recipe = write_recipe(root, "typo.yaml", model={"config": config}, output_dir=str(output))
    code, err = run_cli(recipe, capsys)
    assert code == 2 and not output.exists()
    assert (
        "model.config: unknown key 'hidden_sise' for model_type 'llama' (LlamaConfig). Did you mean " in err
    )
    assert "'hidden_size'" in err and "Traceback" not in err
    with pytest.raises(RecipeError, match=r"unknown key 'hidden_sise' .*Did you mean 'hidden_size'"):
        load_recipe(recipe)


def test_a_model_too_big_for_memory_is_refused_before_any_file_is_written(
    root, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(hf_model, "available_memory", lambda: (1 << 30, "available RAM"))
    output = tmp_path / "run"
    config = {
        "model_type": "llama",
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_hidden_layers": 4,
        "vocab_size": 32000,
    }
    recipe = write_recipe(root, "big.yaml", model={"config": config}, output_dir=str(output))
    code, err = run_cli(recipe, capsys)
    assert code == 2 and not output.exists() and "0.13B-parameter" in err
    with pytest.raises(
        RecipeError,
        match=r"model\.config describes a 0\.13B-parameter llama model; training it needs about 2\.0 GiB "
        r"\(float32 weights, gradients and Adam's two moments: 4 copies\), more than the 1\.0 GiB of "
        r"available RAM\. Fix: .*set model\.check_memory: false",
    ):
        load_recipe(recipe)
    assert load_recipe(recipe, ["model.check_memory=false"]).model.check_memory is False
