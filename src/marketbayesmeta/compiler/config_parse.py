"""YAML text → :class:`Config`, with errors a person can act on (pure: no file I/O)."""

from __future__ import annotations

import difflib
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import ConfigError, Problem
from .config import Config


class _StrictSafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors/aliases (no alias bombs) and duplicate keys, and reads
    date-like scalars as text (no config key is a date; ``notes: 2024-02-30`` is just text)."""


_StrictSafeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _no_alias(self: _StrictSafeLoader, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - shape only
    raise yaml.constructor.ConstructorError(
        None, None, "YAML anchors and aliases are not supported in a config", self.peek_token().start_mark)


def _compose_node(self: _StrictSafeLoader, parent: Any, index: Any) -> Any:
    if self.check_event(yaml.events.AliasEvent):
        event = self.peek_event()
        raise yaml.composer.ComposerError(
            None, None, "YAML anchors and aliases are not supported in a config", event.start_mark)
    event = self.peek_event()
    anchor = getattr(event, "anchor", None)
    if anchor is not None:
        raise yaml.composer.ComposerError(
            None, None, "YAML anchors and aliases are not supported in a config", event.start_mark)
    return yaml.composer.Composer.compose_node(self, parent, index)


def _construct_mapping(self: _StrictSafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = self.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a list or mapping used as a key", key_node.start_mark) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen[key] = True
    return yaml.SafeLoader.construct_mapping(self, node, deep=deep)


_StrictSafeLoader.compose_node = _compose_node  # type: ignore[method-assign]
_StrictSafeLoader.construct_mapping = _construct_mapping  # type: ignore[method-assign]

# Tags SafeLoader knows but a config never needs: !!binary would reach a text key as bytes and
# !!set / !!omap / !!pairs as other containers, all silently accepted by the models. Refused.
_NOT_PLAIN = ("binary", "set", "omap", "pairs")


def _refuse_tag(self: _StrictSafeLoader, node: yaml.Node) -> Any:
    raise yaml.constructor.ConstructorError(
        None, None, f"the tag {node.tag.replace('tag:yaml.org,2002:', '!!')} is not accepted; "
        "only plain YAML (mappings, lists, "
        "strings, numbers, booleans) is", node.start_mark)


for _tag in _NOT_PLAIN:
    _StrictSafeLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse_tag)


def parse_yaml(text: str, filename: str) -> Any:
    """Safe-load YAML; syntax errors become a ConfigError with line and column."""
    try:
        return yaml.load(text, Loader=_StrictSafeLoader)  # noqa: S506 - strict SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        what = exc.problem or exc.context or "invalid YAML"
        if "could not determine a constructor" in str(what):
            what = f"{what}; only plain YAML (mappings, lists, strings, numbers, booleans) is accepted"
        elif "'\\t'" in str(what):
            what = f"{what} (a tab); YAML indentation must use spaces, not tabs"
        raise ConfigError(f"{filename}: YAML error at {where}: {what}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{filename}: YAML error: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{filename}: YAML nesting is too deep") from None
    except Exception as exc:  # noqa: BLE001 - untrusted input: any parser failure is a config error
        # PyYAML's constructors raise plain exceptions for some bad explicitly tagged values
        # (``!!int x``, ``!!int`` alone, ``!!bool maybe``, ``!!timestamp 2024-99-99``, ``!!map [1]``).
        raise ConfigError(f"{filename}: YAML error: a value could not be read ({type(exc).__name__}: "
                          f"{exc}); only plain YAML (mappings, lists, strings, numbers, booleans) is "
                          "accepted") from None


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class reached by following ``loc`` (field names; list indices skipped)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part)
        if field is None:
            return None
        current = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """Find the BaseModel inside Optional[...] / list[...] annotations."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _unwrap(arg)
        if found is not None:
            return found
    return None


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _accepted(err: dict[str, Any]) -> str | None:
    ctx = err.get("ctx") or {}
    kind = err["type"]
    if kind == "literal_error":
        return ctx.get("expected")
    if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        bound = next(iter(v for k, v in ctx.items()), "")
        return f"a number {op} {bound}"
    if kind == "string_pattern_mismatch":
        return "letters, digits, _ and -"
    if kind.startswith("int_"):
        return "a whole number"
    if kind.startswith("float_") or kind == "finite_number":
        return "a finite number"
    if kind.startswith("bool"):
        return "true or false"
    if kind.startswith("string_"):
        return "a text value"
    if kind in {"model_type", "dict_type"}:
        return "a mapping of keys"
    if kind == "list_type":
        return "a list"
    return None


def validation_problems(exc: ValidationError, filename: str) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        path = _dotted(loc)
        if err["type"] == "extra_forbidden":
            parent = _model_at(Config, loc[:-1])
            allowed = sorted(parent.model_fields) if parent else []
            key = str(loc[-1])
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.append(Problem(file=filename, message=f"unknown key '{path}'{hint}",
                                    accepted=", ".join(allowed) or None))
        elif err["type"] == "missing":
            problems.append(Problem(file=filename, message=f"'{path}' is required"))
        else:
            value = err.get("input")
            scalar = isinstance(value, str | int | float | bool) or value is None
            shown = None if not scalar else value if isinstance(value, str) else repr(value)
            msg = err["msg"]
            problems.append(Problem(file=filename, message=f"'{path}': {msg}", value=shown,
                                    accepted=_accepted(err)))
    return problems


def parse_config(text: str, filename: str) -> Config:
    """Validate YAML text as a config. Raises :class:`ConfigError` listing every problem."""
    data = parse_yaml(text, filename)
    if data is None:
        raise ConfigError(f"{filename}: the config is empty; expected a YAML mapping with version, project, data, analysis")
    if not isinstance(data, dict):
        raise ConfigError(f"{filename}: the config must be a YAML mapping of keys, got {type(data).__name__}")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, filename)
        raise ConfigError(f"{filename}: invalid config ({len(problems)} problem(s))", problems) from None
