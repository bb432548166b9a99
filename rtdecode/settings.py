"""The one configuration loader, for the service (:mod:`rtdecode.config`) and training.

A configuration is a pydantic-settings model whose only source is :class:`EnvOverlay`: the
document read from a TOML / YAML file (:func:`read_document`; Python 3.10 reads TOML with
``tomli``) with environment overrides laid over it. An override names a field by its path,
``<PREFIX><SECTION>__<FIELD>`` (list items by position: ``RTDECODE_DECODERS__0__MODEL``), and
is decoded by the type of the field it sets: a string, number, boolean, path or choice is
given to the model as written (pydantic converts it, ``RTDECODE_SOURCE__NAME=123`` stays the
name "123"), a list, mapping or section is parsed as JSON, and ``null`` / ``none`` clears an
optional field. Validation errors name each field — or the variable that set it — and the fix
(:func:`format_validation_error`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from rtdecode.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["EnvOverlay", "SettingsModel", "format_validation_error", "load_settings", "read_document"]

S = TypeVar("S", bound="SettingsModel")
#: Variables with these names are rtdecode's own settings, never config overrides.
RESERVED = ("RTDECODE_SHARED_DATA", "RTDECODE_MODELS", "RTDECODE_TRT_CACHE", "RTDECODE_CONFIG",
            "RTDECODE_REQUIRE_BROWSER")
DELIMITER = "__"


@dataclass
class _Input:
    document: dict[str, Any]
    environ: Mapping[str, str]
    prefix: str
    applied: dict[tuple[str, ...], tuple[str, str]] = field(default_factory=dict)


_INPUT: contextvars.ContextVar[_Input | None] = contextvars.ContextVar("rtdecode_settings", default=None)


def read_document(path: Path, what: str = "config file") -> dict[str, Any]:
    """Parse a TOML (or YAML, with PyYAML) file into a mapping.

    Raises
    ------
    ConfigError
        When the file is missing, unreadable, malformed or of another format.
    """
    if not path.exists():
        raise ConfigError(f"{what} {path} does not exist", "give the path of a .toml or .yaml file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}",
                          "give a readable UTF-8 .toml or .yaml file") from None
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise ConfigError(f"unsupported config format {suffix!r} for {path}", "use .toml, .yaml or .yml")
    try:
        data = _parse(text, suffix)
    except ConfigError:
        raise
    except Exception as exc:  # tomllib.TOMLDecodeError, yaml.YAMLError
        raise ConfigError(f"cannot parse {path}: {exc}", "fix the syntax at the position shown") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping (sections) at top level, not "
                          f"{type(data).__name__}", "see deploy/configs/ for examples")
    return data


def _parse(text: str, suffix: str) -> Any:
    if suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # Python 3.10: the tomli backport (a runtime dependency there)
            import tomli as tomllib
        return tomllib.loads(text)
    try:
        import yaml
    except ModuleNotFoundError as exc:
        raise ConfigError("YAML configs need PyYAML", "pip install pyyaml, or use TOML") from exc
    return yaml.safe_load(text)


# -- the environment overlay --------------------------------------------------------------------
def _without_none(ann: Any) -> tuple[Any, bool]:
    """(the annotation without ``None``, whether None was allowed)."""
    if get_origin(ann) in (Union, types.UnionType):
        args = [a for a in get_args(ann) if a is not type(None)]
        return (args[0] if len(args) == 1 else Union[tuple(args)]), len(args) < len(get_args(ann))  # noqa: UP007
    return ann, False


def _field_type(model: type[BaseModel], path: tuple[str, ...]) -> Any:
    """The annotation of the field at ``path`` (list items by index), or None when there is none."""
    ann: Any = model
    for part in path:
        ann, _ = _without_none(ann)
        if get_origin(ann) in (list, tuple):
            ann = get_args(ann)[0] if part.isdigit() else None
        elif isinstance(ann, type) and issubclass(ann, BaseModel) and part in ann.model_fields:
            ann = ann.model_fields[part].annotation
        else:
            return None
    return ann


def _is_complex(ann: Any) -> bool:
    if get_origin(ann) in (Union, types.UnionType):
        return any(_is_complex(a) for a in get_args(ann))
    if get_origin(ann) is Literal:
        return False
    return get_origin(ann) in (list, tuple, dict, set) or ann in (list, tuple, dict, set) or (
        isinstance(ann, type) and issubclass(ann, BaseModel))


def decode_override(var: str, raw: str, ann: Any) -> Any:
    """An override's value for a field of type ``ann`` (see the module docstring)."""
    base, optional = _without_none(ann)
    if optional and raw.strip().lower() in ("null", "none"):
        return None
    if base is None or not _is_complex(base):
        return raw
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise ConfigError(f"environment variable {var} = {raw!r} is not valid JSON, which this field "
                          "(a list, mapping or section) needs",
                          f'write it as JSON, e.g. {var}=\'["cuda", "cpu"]\', or unset it') from None


def _set(doc: dict[str, Any], path: tuple[str, ...], value: Any, var: str) -> None:
    node: Any = doc
    for i, part in enumerate(path[:-1]):
        if isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError) as exc:
                raise ConfigError(f"environment override {var}: no list item {part!r}", "index list "
                                  "sections by position, e.g. RTDECODE_DECODERS__0__MODEL") from exc
        else:
            node = node.setdefault(part, {})
        if not isinstance(node, (dict, list)):
            raise ConfigError(f"environment override {var}: {'.'.join(path[:i + 1])} is not a section",
                              "override a field inside a section")
    if isinstance(node, list):
        raise ConfigError(f"environment override {var} ends on a list", "name a field of an item")
    node[path[-1]] = value


class EnvOverlay(PydanticBaseSettingsSource):
    """pydantic-settings source: the document with the environment's overrides laid over it."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        """Unused: the whole document comes from :meth:`__call__`."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        inp = _INPUT.get()
        if inp is None:
            return {}
        doc = json.loads(json.dumps(inp.document))  # a deep copy of plain data
        for var, raw in sorted(inp.environ.items()):
            if not var.startswith(inp.prefix) or var in RESERVED:
                continue
            path = tuple(p.lower() for p in var[len(inp.prefix):].split(DELIMITER))
            _set(doc, path, decode_override(var, raw, _field_type(self.settings_cls, path)), var)
            inp.applied[path] = (var, raw)
        return doc


class SettingsModel(BaseSettings):
    """A configuration root: its only source is :class:`EnvOverlay`."""

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: Any,
                                   env_settings: Any, dotenv_settings: Any,
                                   file_secret_settings: Any) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the document + environment overlay (no .env files, no secrets directories)."""
        return (EnvOverlay(settings_cls),)


# -- errors -------------------------------------------------------------------------------------
def _split_fix(msg: str) -> tuple[str, str | None]:
    """A validator's message ``"what (fix: how)"`` → (what, how); (msg, None) without a fix."""
    head, sep, tail = msg.partition(" (fix: ")
    return (head, tail[:-1] if tail.endswith(")") else tail) if sep else (msg, None)


def _fix_hint(kind: str, reference: str) -> str:
    if kind == "extra_forbidden":
        return f"remove this key (check its spelling against {reference})"
    if kind == "missing":
        return "add this field"
    return f"see {reference} for allowed values"


def _env_origin(loc: tuple[Any, ...], kind: str,
                env: dict[tuple[str, ...], tuple[str, str]]) -> tuple[str, str] | None:
    """The environment variable (name, raw value) that set the field at ``loc``, if any.

    An unknown key (``extra_forbidden``) may be a whole misspelt section the variable created.
    """
    key = tuple(str(p).lower() for p in loc)
    for path, var in env.items():
        if key and (key[:len(path)] == path or (kind == "extra_forbidden" and path[:len(key)] == key)):
            return var
    return None


def format_validation_error(err: ValidationError, origin: str,
                            env: dict[tuple[str, ...], tuple[str, str]] | None = None,
                            reference: str = "docs/configuration.md") -> ConfigError:
    """One ConfigError naming every invalid field, where it came from, and the fix.

    ``env`` maps a field path to the environment variable (name, raw value) that set it:
    errors in those fields name the variable (and how to fix or unset it), not the file.
    """
    lines, fixes = [], []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        origin_var = _env_origin(e["loc"], e["type"], env or {})
        if origin_var is None:
            what, how = _split_fix(e["msg"])
            lines.append(f"{loc}: {what}")
            fixes.append(f"{loc}: {how or _fix_hint(e['type'], reference)}")
            continue
        var, raw = origin_var
        if e["type"] == "extra_forbidden":
            lines.append(f"environment variable {var}: {loc} is not a configuration field")
            fixes.append(f"unset {var}, or correct its name (<SECTION>__<FIELD>, fields in {reference})")
        else:
            lines.append(f"environment variable {var} = {raw!r}: {loc}: {e['msg']}")
            fixes.append(f"give {var} a valid value for {loc} ({reference}), or unset it")
    return ConfigError(f"invalid configuration in {origin}:\n    " + "\n    ".join(lines),
                       "; ".join(fixes))


def load_settings(cls: type[S], document: dict[str, Any], *, origin: str,
                  environ: Mapping[str, str], prefix: str,
                  reference: str = "docs/configuration.md") -> S:
    """Validate ``document`` with the environment's ``prefix`` overrides as a ``cls``.

    Raises
    ------
    ConfigError
        Every invalid field named (or the variable that set it) with the fix.
    """
    try:
        plain = json.loads(json.dumps(document))
    except (TypeError, ValueError, RecursionError) as exc:
        raise ConfigError(f"config data is not a JSON-like mapping: {exc}",
                          "use only dict/list/str/int/float/bool/None values") from None
    inp = _Input(plain, environ, prefix)
    token = _INPUT.set(inp)
    try:
        settings = cls()
    except ValidationError as err:
        raise format_validation_error(err, origin, inp.applied, reference) from None
    finally:
        _INPUT.reset(token)
    if inp.applied:
        logger.info("config overrides from environment: %s", ", ".join(v for v, _ in inp.applied.values()))
    return settings
