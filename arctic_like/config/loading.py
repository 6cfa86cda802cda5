"""Load a YAML recipe (or a dict) into a validated ``TrainerConfig``; errors say where and how to fix.

``load_recipe("recipe.yaml", overrides=["optimizer.lr=1e-3"])``:

1. parse the YAML (syntax errors and duplicate keys report ``file:line``);
2. apply the ``key.path=value`` overrides (values parsed as YAML; an unknown key path is an error listing the
   valid keys at that level);
3. import the ``code:`` files, relative to the recipe, so custom trainers and factories register;
4. pick the trainer class by ``type`` and validate with its config class. Validation errors give the path
   (``data.sources[0].path``), the recipe line when known, and a fix.
"""

from __future__ import annotations

import contextlib
import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from arctic_like import registry
from arctic_like.config.arctic_training import at_override, translate
from arctic_like.config.errors import RecipeError, where
from arctic_like.config.parts import expand_source_shorthand, recipe_dir
from arctic_like.config.trainer import (
    PARTS,
    TrainerConfig,
    import_code_file,
    resolve_factory,
    resolve_trainer_class,
    trainer_config_class,
)

__all__ = ["RecipeError", "apply_overrides", "build_trainer", "load_recipe", "parse_override"]

Key = str | int


# ---- YAML with line numbers and duplicate-key detection ----------------------------------------------------


def _parse_yaml(text: str, filename: str) -> tuple[Any, dict[tuple[Key, ...], int]]:
    loader = yaml.SafeLoader(text)
    lines: dict[tuple[Key, ...], int] = {}
    try:
        node = loader.get_single_node()
        data = {} if node is None else _build(loader, node, (), lines, filename)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        problem = error.problem or error.context or "invalid YAML"
        raise RecipeError(
            f"{filename}:{line}: YAML syntax error: {problem}. "
            f"Fix: check the indentation and quoting near line {line}.",
            file=filename,
            line=line,
        ) from None
    except yaml.YAMLError as error:
        raise RecipeError(f"{filename}: YAML error: {error}", file=filename) from None
    finally:
        loader.dispose()
    return data, lines


def _build(
    loader: yaml.SafeLoader, node: yaml.Node, path: tuple[Key, ...], lines: dict, filename: str
) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in out:
                raise RecipeError(
                    f"{filename}:{line}: duplicate key {key!r} (first on line {first_line[key]}). "
                    f"Fix: keep one of them.",
                    file=filename,
                    line=line,
                    path=_format_path((*path, key)),
                )
            first_line[key] = line
            out[key] = _build(loader, value_node, (*path, key), lines, filename)
            lines[(*path, key)] = line
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, i), lines, filename) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


# ---- paths and the schema ----------------------------------------------------------------------------------


def _format_path(path: Iterable[Key]) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def _split_path(text: str, override: str) -> list[Key]:
    keys: list[Key] = []
    for part in text.split("."):
        match = re.fullmatch(r"([^\[\]]*)((?:\[\d+\])*)", part)
        if not match or (not match.group(1) and not match.group(2)):
            raise RecipeError(
                f"--set {override}: malformed key path {text!r}. Fix: write it as key.sub_key=value",
                path=text,
            )
        if match.group(1):
            keys.append(int(match.group(1)) if match.group(1).isdigit() else match.group(1))
        keys += [int(i) for i in re.findall(r"\[(\d+)\]", match.group(2))]
    return keys


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` (which is how ``SerializeAsAny`` appears) and ``Optional`` from an annotation."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _union_models(annotation: Any) -> list[type[BaseModel]]:
    annotation = _unwrap(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
    return [annotation] if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []


def _pick_model(annotation: Any, raw: Any) -> type[BaseModel] | None:
    models = _union_models(annotation)
    if len(models) == 1:  # a base that picks its subclass from the value (data sources, by `type`)
        pick = getattr(models[0], "config_class_for", None)
        return pick(raw) if pick is not None else models[0]
    raw_type = raw.get("type") if isinstance(raw, dict) else None
    for model in models:
        type_field = model.model_fields.get("type")
        if type_field is not None and raw_type in typing.get_args(type_field.annotation):
            return model
    return None


def _part_model(trainer_cls: type | None, part: str, raw: Any) -> type[BaseModel]:
    type_name = raw.get("type") if isinstance(raw, dict) else None
    try:
        return resolve_factory(trainer_cls, part, type_name).config
    except (registry.RegistryError, ImportError, AttributeError):
        return PARTS[part][2]


def _model_at(
    root: type[BaseModel], trainer_cls: type | None, raw: Any, path: tuple[Key, ...]
) -> type[BaseModel] | None:
    """The model class at ``path`` (``None``: free-form value); raises ``KeyError(depth)`` if invalid."""
    model: type[BaseModel] | None = root
    annotation: Any = None
    for depth, key in enumerate(path):
        if model is not None:
            if not isinstance(key, str) or key not in model.model_fields:
                if isinstance(key, str) and model.model_config.get("extra") == "allow":
                    return None  # a key the model validates itself (the fields of model.peft)
                raise KeyError(depth)
            raw = raw.get(key) if isinstance(raw, dict) else None
            if depth == 0 and key in PARTS and key != "checkpoint":
                model = _part_model(trainer_cls, key, raw)
                continue
            annotation, model = model.model_fields[key].annotation, None
        else:
            unwrapped = _unwrap(annotation)
            origin = typing.get_origin(unwrapped)
            if origin is list:
                if not isinstance(key, int) or not isinstance(raw, list) or key >= len(raw):
                    raise KeyError(depth)
                raw = raw[key]
                if depth == 1 and path[0] == "checkpoint":
                    model = _part_model(trainer_cls, "checkpoint", raw)
                    continue
                annotation = typing.get_args(unwrapped)[0]
            elif origin is dict or unwrapped in (Any, dict):
                return None
            else:
                raise KeyError(depth)
        picked = _pick_model(annotation, raw)
        if picked is not None:
            model, annotation = picked, None
    return model


def _valid_keys(
    root: type[BaseModel], trainer_cls: type | None, raw: Any, path: tuple[Key, ...]
) -> list[str]:
    try:
        model = _model_at(root, trainer_cls, raw, path)
    except KeyError:
        return []
    return list(model.model_fields) if model is not None else []


def _check_override_path(
    root: type[BaseModel], trainer_cls: type | None, raw: Any, keys: list[Key], text: str
):
    try:
        _model_at(root, trainer_cls, raw, tuple(keys))
    except KeyError as error:
        depth = error.args[0]
        parent, bad = tuple(keys[:depth]), keys[depth]
        valid = _valid_keys(root, trainer_cls, raw, parent)
        place = f"in {_format_path(parent)!r}" if parent else "at the top level"
        if valid:
            close = difflib.get_close_matches(str(bad), valid, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            message = (
                f"--set {text}: unknown key {bad!r} {place}; valid keys: {', '.join(valid)}.{hint} "
                "Fix: use one of the valid keys."
            )
        else:
            message = (
                f"--set {text}: {bad!r} does not exist {place} (it holds a single value, not keys). "
                "Fix: set the value itself."
            )
        raise RecipeError(message, path=_format_path(keys)) from None


def _expand_shorthands(raw: dict[str, Any]) -> None:
    """Write shorthands (``optimizer: sgd``, ``sources: [addition]``, ``checkpoint: [torch]``) as mappings, in
    place, so overrides can address their fields."""
    for part in ("tokenizer", "data", "model", "optimizer", "scheduler"):
        if isinstance(raw.get(part), str):
            raw[part] = {"type": raw[part]}
    data = raw.get("data")
    if isinstance(data, dict):
        for key in ("sources", "eval_sources"):
            value = data.get(key)
            if isinstance(value, str | dict):
                value = data[key] = [value]
            if isinstance(value, list):
                for index, item in enumerate(value):
                    if isinstance(item, str):
                        with contextlib.suppress(ValueError):  # validation reports it with its path
                            value[index] = expand_source_shorthand(item)
    checkpoint = raw.get("checkpoint")
    if isinstance(checkpoint, str | dict):
        checkpoint = raw["checkpoint"] = [checkpoint]
    if isinstance(checkpoint, list):
        raw["checkpoint"] = [{"type": c} if isinstance(c, str) else c for c in checkpoint]


def parse_override(text: str) -> tuple[list[Key], Any]:
    """``key.path=value`` as (the key path, the value parsed as YAML)."""
    key_text, sep, value_text = text.partition("=")
    if not sep or not key_text.strip():
        raise RecipeError(
            f"--set {text}: expected key.path=value. Fix: e.g. --set optimizer.lr=1e-4", path=text
        )
    keys = _split_path(key_text.strip(), text)
    try:
        value = yaml.safe_load(value_text) if value_text.strip() else None
    except yaml.YAMLError:
        value = value_text
    return keys, value


def _set_override(raw: dict[str, Any], keys: list[Key], value: Any, text: str) -> None:
    node: Any = raw
    for depth, key in enumerate(keys[:-1]):
        nxt = keys[depth + 1]
        if isinstance(node, list):
            if not isinstance(key, int) or key >= len(node):
                raise RecipeError(
                    f"--set {text}: index {key} is out of range for {_format_path(keys[:depth])!r} "
                    f"({len(node)} items). Fix: use an index below {len(node)}, or add the entry to the "
                    "recipe first.",
                    path=_format_path(keys),
                )
            node = node[key]
            continue
        if not isinstance(node, dict):
            break
        if not isinstance(node.get(key), dict | list):
            node[key] = [] if isinstance(nxt, int) else {}
        node = node[key]
    last = keys[-1]
    if isinstance(node, list):
        if not isinstance(last, int) or last > len(node):
            raise RecipeError(
                f"--set {text}: index {last} is out of range ({len(node)} items). Fix: use an index up "
                f"to {len(node)} (that one appends).",
                path=_format_path(keys),
            )
        if last == len(node):
            node.append(value)
        else:
            node[last] = value
    elif isinstance(node, dict):
        node[last] = value


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> list[tuple[list[Key], str]]:
    """Apply ``key.path=value`` strings to ``raw`` in place; returns the parsed paths (checked later)."""
    applied = []
    for text in overrides:
        keys, value = parse_override(text)
        _set_override(raw, keys, value, text)
        applied.append((keys, text))
    return applied


# ---- validation errors -------------------------------------------------------------------------------------


def _fix_hint(error: Mapping[str, Any], root: type[BaseModel], trainer_cls: type | None, raw: Any) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        valid = _valid_keys(root, trainer_cls, raw, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"Fix: {hint}remove it or use one of: {', '.join(valid)}." if valid else "Fix: remove it."
    if kind == "missing":
        return f"Fix: add `{loc[-1]}:`."
    if kind == "registry":
        return ""
    if kind.startswith("literal_error"):
        return "Fix: use one of the allowed values."
    return "" if "Fix:" in error["msg"] else "Fix: correct this value."


def _clean_loc(loc: Iterable[Key], raw: Any) -> tuple[Key, ...]:
    """``loc`` without the entries pydantic adds for unions (the discriminator's value, validator names)."""
    keys, out = list(loc), []
    for index, key in enumerate(keys):
        last = index == len(keys) - 1
        if isinstance(raw, dict) and key not in raw and not last and raw.get("type") == key:
            continue
        if isinstance(key, str) and key.startswith(("function-", "tagged-union")):
            continue
        out.append(key)
        if isinstance(raw, dict):
            raw = raw.get(key)
        elif isinstance(raw, list) and isinstance(key, int) and key < len(raw):
            raw = raw[key]
        else:
            raw = None
    return tuple(out)


def _format_errors(
    error: ValidationError,
    root: type[BaseModel],
    trainer_cls: type | None,
    raw: Any,
    file: str | None,
    lines: dict,
) -> RecipeError:
    items = []
    first_line = first_path = None
    for e in error.errors():
        loc = _clean_loc(e["loc"], raw)
        path = _format_path(loc) or "(recipe)"
        line = None
        for depth in range(len(loc), -1, -1):
            if loc[:depth] in lines:
                line = lines[loc[:depth]]
                break
        msg = e["msg"].removeprefix("Value error, ").rstrip(".")
        hint = "" if "Fix:" in msg else _fix_hint({**e, "loc": loc}, root, trainer_cls, raw)
        items.append(f"{where(file, line)}{path}: {msg.rstrip('.')}. {hint}".rstrip())
        if first_path is None:
            first_line, first_path = line, path
    count = len(items)
    header = f"invalid recipe{f' {file}' if file else ''} ({count} error{'s' if count > 1 else ''}):"
    return RecipeError("\n  ".join([header, *items]), file=file, line=first_line, path=first_path)


# ---- public entry points -----------------------------------------------------------------------------------


def load_recipe(
    path_or_dict: str | Path | Mapping[str, Any],
    overrides: Iterable[str] = (),
    notes: list[str] | None = None,
) -> TrainerConfig:
    """Load, override and validate a recipe; returns the chosen trainer's config class instance.

    An ArcticTraining recipe is translated first (:mod:`arctic_like.config.arctic_training`); ``notes``, when
    given, receives one line per translated key and per ArcticTraining default applied.
    """
    lines: dict[tuple[Key, ...], int] = {}
    file: str | None = None
    base_dir: Path | None = None
    if isinstance(path_or_dict, Mapping):
        raw: Any = _deep_copy(path_or_dict)
    else:
        recipe_path = Path(path_or_dict)
        file = str(recipe_path)
        raw, lines = _parse_yaml(_read_recipe_file(recipe_path), file)
        base_dir = recipe_path.resolve().parent
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RecipeError(
            f"{file or 'recipe'}: the recipe must be a mapping of keys to values, got {type(raw).__name__}. "
            "Fix: write one `key: value` per line, e.g. `type: causal`.",
            file=file,
        )
    parsed = [(*parse_override(text), text) for text in overrides]
    early = [(k, v, t) for k, v, t in parsed if k == ["style"] or at_override(k) is not None]
    for keys, value, text in early:  # ArcticTraining's keys (and style) are set before the translation
        _remove(raw, at_override(keys) or ())  # what the recipe gave that key under our name
        _set_override(raw, keys, value, text)
    translation = translate(raw, lines, file, base_dir)
    raw, lines = translation.recipe, translation.lines
    if notes is not None:
        notes.extend(translation.notes)
    _expand_shorthands(raw)
    applied = []
    for keys, value, text in parsed:
        if (keys, value, text) not in early:
            _set_override(raw, keys, value, text)
            applied.append((keys, text))
    token = recipe_dir.set(base_dir)
    try:
        _import_code(raw, file, lines)
        trainer_name = raw.get("type", "causal")
        try:
            trainer_cls = resolve_trainer_class(trainer_name)
        except (registry.RegistryError, ImportError) as error:
            line = lines.get(("type",))
            raise RecipeError(
                f"{where(file, line)}type: {error}", file=file, line=line, path="type"
            ) from None
        config_cls = trainer_config_class(trainer_cls)
        for keys, text in applied:
            _check_override_path(config_cls, trainer_cls, raw, keys, text)
        try:
            return config_cls.model_validate(raw)
        except ValidationError as error:
            raise _format_errors(error, config_cls, trainer_cls, raw, file, lines) from None
    finally:
        recipe_dir.reset(token)


def _remove(raw: dict[str, Any], path: tuple[Key, ...]) -> None:
    node: Any = raw
    for key in path[:-1]:
        if not isinstance(node, dict | list) or (isinstance(node, dict) and key not in node):
            return
        if isinstance(node, list) and not (isinstance(key, int) and key < len(node)):
            return
        node = node[key]
    if path and isinstance(node, dict):
        node.pop(path[-1], None)


def _read_recipe_file(path: Path) -> str:
    """The text of a recipe file; a missing, unreadable or non-UTF-8 file is a `RecipeError`."""
    file = str(path)
    if path.is_dir():
        raise RecipeError(
            f"recipe {file!r} is a directory, not a file. Fix: give the path of a .yaml file in it.",
            file=file,
        )
    if not path.is_file():
        raise RecipeError(
            f"recipe file {file!r} does not exist. "
            f"Fix: check the path (relative paths start at {Path.cwd()}).",
            file=file,
        )
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RecipeError(
            f"recipe file {file!r} cannot be read ({error.strerror or error}). Fix: check its permissions.",
            file=file,
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise RecipeError(
            f"{file}:{line}: the recipe is not UTF-8 text (byte {data[error.start]:#04x} at offset "
            f"{error.start}). Fix: save it as UTF-8 (a YAML recipe is a text file).",
            file=file,
            line=line,
        ) from None


def _import_code(raw: dict[str, Any], file: str | None, lines: dict) -> None:
    code = raw.get("code") or []
    for index, entry in enumerate([code] if isinstance(code, str | Path) else code):
        if not isinstance(entry, str | Path):
            continue
        path = Path(entry)
        base = recipe_dir.get()
        if base is not None and not path.is_absolute():
            path = base / path
        line = lines.get(("code",) if isinstance(code, str | Path) else ("code", index))
        at = where(file, line)
        if path.is_dir():
            raise RecipeError(
                f"{at}code: {str(path)!r} is a directory; code: takes Python files. "
                "Fix: list the .py files in it (code: [a.py, b.py]).",
                file=file,
                line=line,
                path="code",
            )
        if not path.is_file():
            raise RecipeError(
                f"{at}code: file {str(path)!r} does not exist. Fix: give a path relative to the recipe.",
                file=file,
                line=line,
                path="code",
            )
        try:
            import_code_file(path)
        except SystemExit as error:
            raise RecipeError(
                f"{at}code: {str(path)!r} called sys.exit({error.code!r}) while being imported. "
                'Fix: put the part of the file that runs as a script under `if __name__ == "__main__":`.',
                file=file,
                line=line,
                path="code",
            ) from None
        except Exception as error:
            raise RecipeError(
                f"{at}code: cannot import {str(path)!r}: {type(error).__name__}: {error}. "
                f"Fix: run `python {path}` to see the full traceback.",
                file=file,
                line=line,
                path="code",
            ) from error


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_deep_copy(v) for v in value]
    return value


def build_trainer(
    config: TrainerConfig | str | Path | Mapping[str, Any], overrides: Iterable[str] = ()
) -> Any:
    """The trainer class registered as ``config.type``, built with ``config`` (a recipe is loaded first)."""
    if not isinstance(config, TrainerConfig):
        config = load_recipe(config, overrides)
    return config.trainer_class()(config)
