import textwrap

import pytest

from arctic_like.config import RecipeError, TrainerConfig, build_trainer, load_recipe
from arctic_like.optimizer import SGDConfig
from tests.config.fakes import FakeCausal, FakeSFT

RECIPE = """\
type: causal
model:
  type: huggingface
  config:
    model_type: llama
    hidden_size: 32
data:
  sources:
    - type: addition
      digits: 2
  max_length: 64
optimizer:
  lr: 1e-3
max_steps: 2k
"""


def write(tmp_path, text, name="recipe.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_load_recipe_from_file(tmp_path):
    config = load_recipe(write(tmp_path, RECIPE))
    assert isinstance(config, TrainerConfig)
    assert config.max_steps == 2000
    assert config.optimizer.lr == pytest.approx(1e-3)
    assert config.data.sources[0].type == "addition"


def test_load_recipe_from_dict_does_not_mutate_it():
    raw = {"model": {"config": {"model_type": "gpt2"}}, "optimizer": {"lr": 0.1}}
    config = load_recipe(raw, ["optimizer.lr=0.5"])
    assert config.optimizer.lr == 0.5 and raw["optimizer"]["lr"] == 0.1


def test_empty_recipe_needs_a_model(tmp_path):
    with pytest.raises(RecipeError, match=r"model: give exactly one of name_or_path"):
        load_recipe(write(tmp_path, ""))


def test_recipe_must_be_a_mapping(tmp_path):
    with pytest.raises(RecipeError, match="the recipe must be a mapping of keys to values, got list"):
        load_recipe(write(tmp_path, "- a\n- b\n"))


def test_missing_recipe_file(tmp_path):
    with pytest.raises(RecipeError, match=r"recipe file '.*nope.yaml' does not exist\. Fix: check the path"):
        load_recipe(tmp_path / "nope.yaml")


def test_yaml_syntax_error_gives_file_and_line(tmp_path):
    path = write(tmp_path, "model:\n  type: huggingface\n  config: {model_type: llama\nseed: 1\n")
    with pytest.raises(RecipeError, match=r"recipe\.yaml:4: YAML syntax error") as info:
        load_recipe(path)
    assert info.value.line == 4 and info.value.file == str(path)


def test_duplicate_keys_give_both_lines(tmp_path):
    path = write(tmp_path, RECIPE + "seed: 1\noptimizer:\n  lr: 0.1\n")
    with pytest.raises(
        RecipeError, match=r"recipe\.yaml:16: duplicate key 'optimizer' \(first on line 12\)"
    ) as info:
        load_recipe(path)
    assert info.value.path == "optimizer"


def test_nested_duplicate_key(tmp_path):
    path = write(tmp_path, "model:\n  type: huggingface\n  type: huggingface\n")
    with pytest.raises(RecipeError, match=r":3: duplicate key 'type' \(first on line 2\)"):
        load_recipe(path)


def test_validation_error_gives_field_path_line_and_fix(tmp_path):
    path = write(tmp_path, RECIPE.replace("      digits: 2", "      digitz: 2"))
    with pytest.raises(
        RecipeError,
        match=r"recipe\.yaml:10: data\.sources\[0\]\.digitz: Extra inputs are not "
        r"permitted\. Fix: did you mean 'digits'\?",
    ) as info:
        load_recipe(path)
    assert info.value.path == "data.sources[0].digitz" and info.value.line == 10


def test_missing_field_hint(tmp_path):
    path = write(tmp_path, RECIPE.replace("    - type: addition\n      digits: 2", "    - type: jsonl"))
    with pytest.raises(RecipeError, match=r"data\.sources\[0\]\.path: Field required\. Fix: add `path:`"):
        load_recipe(path)


def test_literal_error_hint_and_error_count(tmp_path):
    path = write(tmp_path, RECIPE + "device: tpu\nprecision: fp8\n")
    with pytest.raises(
        RecipeError, match=r"(?s)\(2 errors\).*device: Input should be .*Fix: use one of the allowed values"
    ):
        load_recipe(path)


def test_unknown_top_level_key_suggests(tmp_path):
    path = write(tmp_path, RECIPE + "max_step: 3\n")
    with pytest.raises(
        RecipeError, match=r"max_step: Extra inputs are not permitted\. Fix: did you mean 'max_steps'\?"
    ):
        load_recipe(path)


def test_unknown_trainer_type_in_recipe(tmp_path):
    path = write(tmp_path, RECIPE.replace("type: causal", "type: casual"))
    with pytest.raises(
        RecipeError, match=r"recipe\.yaml:1: type: no FakeTrainer named 'casual'.*Did you mean 'causal'"
    ):
        load_recipe(path)


def test_unknown_factory_type_in_recipe(tmp_path):
    path = write(tmp_path, RECIPE.replace("  type: huggingface", "  type: hugginface"))
    with pytest.raises(RecipeError, match=r"recipe\.yaml:3: model\.type: no ModelFactory named 'hugginface'"):
        load_recipe(path)


def test_trainer_config_class_validates_trainer_fields(tmp_path):
    config = load_recipe(
        write(tmp_path, RECIPE.replace("type: causal", "type: sft") + "prompt_template: 'Q: {prompt}'\n")
    )
    assert config.prompt_template == "Q: {prompt}"
    assert config.data.type == "sft"
    with pytest.raises(RecipeError, match="prompt_template: Extra inputs are not permitted"):
        load_recipe(write(tmp_path, RECIPE + "prompt_template: x\n"))


# ---- overrides ---------------------------------------------------------------------------------------------


def test_overrides_parse_yaml_scalars(tmp_path):
    config = load_recipe(
        write(tmp_path, RECIPE),
        [
            "optimizer.lr=0.01",
            "seed=7",
            "progress=false",
            "max_steps=3k",
            "data.sources[0].digits=3",
            "model.config.num_hidden_layers=2",
            "eval_steps=",
        ],
    )
    assert config.optimizer.lr == 0.01 and config.seed == 7 and config.progress is False
    assert config.max_steps == 3000 and config.data.sources[0].digits == 3
    assert config.model.config["num_hidden_layers"] == 2 and config.eval_steps is None


def test_override_creates_missing_sections_and_switches_type(tmp_path):
    config = load_recipe(
        write(tmp_path, RECIPE),
        ["optimizer.type=sgd", "optimizer.momentum=0.9", "scheduler.warmup_ratio=10%"],
    )
    assert isinstance(config.optimizer, SGDConfig) and config.optimizer.momentum == 0.9
    assert config.scheduler.warmup_ratio == pytest.approx(0.1)


def test_override_dotted_index_and_append(tmp_path):
    config = load_recipe(write(tmp_path, RECIPE), ["data.sources.0.digits=1", "data.sources[1]=reverse"])
    assert config.data.sources[0].digits == 1 and config.data.sources[1].type == "reverse"


def test_unknown_override_key_lists_valid_keys(tmp_path):
    with pytest.raises(
        RecipeError,
        match=r"--set optimizer\.learnrate=1: unknown key 'learnrate' in "
        r"'optimizer'; valid keys: type, lr, weight_decay, betas, eps, implementation\.",
    ):
        load_recipe(write(tmp_path, RECIPE), ["optimizer.learnrate=1"])


def test_unknown_top_level_override_suggests(tmp_path):
    with pytest.raises(
        RecipeError,
        match=r"unknown key 'sed' at the top level; valid keys: code, type, .*Did you mean 'seed'\?",
    ):
        load_recipe(write(tmp_path, RECIPE), ["sed=1"])


def test_override_below_a_scalar(tmp_path):
    with pytest.raises(
        RecipeError, match=r"--set seed\.x=1: 'x' does not exist in 'seed' \(it holds a single value"
    ):
        load_recipe(write(tmp_path, RECIPE), ["seed.x=1"])


def test_override_in_source_uses_the_source_type(tmp_path):
    with pytest.raises(
        RecipeError,
        match=r"unknown key 'path' in 'data\.sources\[0\]'; "
        r"valid keys: type, column_mapping, role_mapping, limit, fraction, shuffle, seed, content_key, "
        r"num_samples, eval_samples, digits",
    ):
        load_recipe(write(tmp_path, RECIPE), ["data.sources[0].path=x.jsonl"])


def test_malformed_overrides(tmp_path):
    with pytest.raises(RecipeError, match=r"--set seed: expected key\.path=value"):
        load_recipe(write(tmp_path, RECIPE), ["seed"])
    with pytest.raises(RecipeError, match=r"--set a\.\.b=1: malformed key path 'a\.\.b'"):
        load_recipe(write(tmp_path, RECIPE), ["a..b=1"])
    with pytest.raises(RecipeError, match=r"index 5 is out of range"):
        load_recipe(write(tmp_path, RECIPE), ["data.sources[5].digits=1"])


def test_override_fields_of_shorthand_entries(tmp_path):
    recipe = (
        RECIPE.replace("    - type: addition\n      digits: 2", "    - addition\n    - extra.jsonl")
        + "checkpoint: torch\n"
    )
    config = load_recipe(
        write(tmp_path, recipe),
        [
            "data.sources[0].digits=3",
            "data.sources[1].column_mapping.body=text",
            "checkpoint[0].save_total_limit=2",
        ],
    )
    assert config.data.sources[0].digits == 3 and config.data.sources[1].column_mapping == {"body": "text"}
    assert config.checkpoint[0].save_total_limit == 2
    config = load_recipe(
        {"model": {"config": {"model_type": "gpt2"}}, "optimizer": "sgd"}, ["optimizer.momentum=0.5"]
    )
    assert config.optimizer.type == "sgd" and config.optimizer.momentum == 0.5
    with pytest.raises(RecipeError, match=r"data\.sources\[0\]: cannot tell the format of 'x\.txt'"):
        load_recipe({"model": {"config": {"model_type": "gpt2"}}, "data": {"sources": "x.txt"}})


def test_override_free_form_dicts(tmp_path):
    config = load_recipe(write(tmp_path, RECIPE), ["engine=deepspeed", "deepspeed.zero_optimization.stage=2"])
    assert config.deepspeed == {"zero_optimization": {"stage": 2}}


# ---- code: -------------------------------------------------------------------------------------------------

CODE = """\
from arctic_like.optimizer import SGDOptimizerFactory
from tests.config.fakes import FakeCausal


class HalfSGD(SGDOptimizerFactory):
    name = "half-sgd"


class MyTrainer(FakeCausal):
    name = "my-trainer"
"""


def test_code_is_imported_relative_to_the_recipe_before_types_resolve(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", CODE, "train_code_1.py")
    path = write(
        tmp_path / "sub",
        "code: train_code_1.py\n"
        + RECIPE.replace("type: causal", "type: my-trainer").replace("  lr:", "  type: half-sgd\n  lr:"),
    )
    monkeypatch.chdir(tmp_path)
    config = load_recipe(path)
    assert config.trainer_class().__name__ == "MyTrainer"
    assert config.optimizer.type == "half-sgd"
    assert config.code == [tmp_path / "sub" / "train_code_1.py"]
    trainer = build_trainer(config)
    assert trainer.config is config and isinstance(trainer, FakeCausal)


def test_code_list_and_relative_source_paths(tmp_path):
    write(tmp_path, CODE, "train_code_2.py")
    write(tmp_path, "X = 1\n", "helpers_2.py")
    (tmp_path / "data.jsonl").write_text('{"text": "hi"}\n')
    path = write(
        tmp_path,
        "code: [train_code_2.py, helpers_2.py]\n"
        "data: {sources: [data.jsonl]}\n"
        "model: {config: {model_type: gpt2}}\n",
    )
    config = load_recipe(path)
    assert config.data.sources[0].path == tmp_path / "data.jsonl"
    assert len(config.code) == 2


def test_code_file_that_fails_to_import(tmp_path):
    write(tmp_path, "import no_such_module_xyz\n", "broken_code.py")
    path = write(tmp_path, "code: broken_code.py\n" + RECIPE)
    with pytest.raises(
        RecipeError,
        match=r"recipe\.yaml:1: code: cannot import '.*broken_code\.py': "
        r"ModuleNotFoundError: No module named 'no_such_module_xyz'",
    ) as info:
        load_recipe(path)
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_missing_code_file(tmp_path):
    path = write(tmp_path, "code: [nothere.py]\n" + RECIPE)
    with pytest.raises(RecipeError, match=r"recipe\.yaml:1: code: file '.*nothere\.py' does not exist"):
        load_recipe(path)


def test_build_trainer_from_path_and_dict(tmp_path):
    trainer = build_trainer(write(tmp_path, RECIPE), ["seed=3"])
    assert isinstance(trainer, FakeCausal) and trainer.config.seed == 3
    assert isinstance(build_trainer({"type": "sft", "model": {"config": {"model_type": "gpt2"}}}), FakeSFT)


def test_recipe_error_is_value_error():
    assert issubclass(RecipeError, ValueError)
