"""Property-based tests (hypothesis) of the config loader.

Whatever it is given — arbitrary nested mappings, wrong types, unknown keys, malformed
TOML text, environment overrides with garbage values — ``load_config`` returns a
``Config`` or raises ``ConfigError`` (exit code 2) whose message names a field or the
file; never a raw pydantic ``ValidationError``, ``TypeError``, ``KeyError``,
``OSError`` or a TOML / JSON parser error.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rtdecode.config import Config, load_config
from rtdecode.errors import ConfigError, MissingModelError

ROOT = Path(__file__).resolve().parents[2]
MODEL = str(ROOT / "models" / "cortex_wiener.onnx")
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

GOOD: dict = {"source": {"name": "rig"}, "decoders": [{"name": "cortex", "model": MODEL}]}
SECTIONS = ["source", "preprocessing", "decoders", "fusion", "sink", "service"]
FIELDS = ["name", "type", "endpoint", "allow_remote", "sndhwm", "heartbeat_s", "model",
          "channels", "rate_hz", "stale_after_s", "safe_value", "providers", "topic",
          "curve_secret_key", "curve_clients", "curve_allow_any", "nodrop", "publish",
          "max_abs", "window_s", "smoothing", "decoders", "0", "bogus", ""]

scalars = (st.none() | st.booleans() | st.integers() | st.text(max_size=12)
           | st.floats() | st.sampled_from(["", "\x00", "../..", "tcp://*:1", "x" * 5000]))
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), children, max_size=4),
    max_leaves=10,
)


def _load(**kwargs: object) -> Config | None:
    try:
        return load_config(**kwargs)  # type: ignore[arg-type]
    except ConfigError as exc:
        # a model file the config names but that does not exist is exit 4, as every model fault
        # (README's exit codes; issue 12); every other config error is exit 2
        assert exc.exit_code == (4 if isinstance(exc, MissingModelError) else 2)
        assert exc.what and exc.fix, "a config error names what and how to fix it"
        return None


@SETTINGS
@given(st.dictionaries(st.sampled_from(SECTIONS) | st.text(max_size=6), values, max_size=6))
def test_arbitrary_mappings(data: dict) -> None:
    _load(data=data, environ={})


@SETTINGS
@given(values, st.dictionaries(st.sampled_from(["RTDECODE_SOURCE__NAME", "RTDECODE_X",
                                                "RTDECODE_DECODERS__0__MODEL"]),
                               st.text(max_size=8), max_size=2))
@example("abc", {"RTDECODE_X": "1"})
@example([1], {"RTDECODE_DECODERS__0__MODEL": "m"})
def test_any_top_level_value_with_env(data: object, env: dict) -> None:
    _load(data=data, environ=env)


@SETTINGS
@given(st.sampled_from(SECTIONS), st.sampled_from(FIELDS), values)
@example("sink", "endpoint", "tcp://0.0.0.0:5555")
@example("sink", "curve_secret_key", "x" * 5000)
@example("decoders", "model", "a\x00b")
@example("sink", "curve_clients", "\x00")
@example("sink", "curve_allow_any", True)
def test_one_bad_field_in_a_good_config(section: str, field: str, value: object) -> None:
    data = copy.deepcopy(GOOD)
    target = data.setdefault(section, {})
    if isinstance(target, list):
        target = target[0]
    target[field] = value
    _load(data=data, environ={})


@SETTINGS
@given(st.lists(st.sampled_from(SECTIONS + FIELDS) | st.text(max_size=5), min_size=1,
                max_size=4),
       st.text(max_size=40) | st.sampled_from(["9" * 5000, "[" * 5000, "null", "{}", "[]",
                                               '{"a":1}', "NaN", "1e999", "\x00"]))
def test_env_overrides_with_garbage(path: list[str], value: str) -> None:
    key = "RTDECODE_" + "__".join(p.upper() for p in path)
    _load(data=copy.deepcopy(GOOD), environ={key: value})


@SETTINGS
@given(st.text(max_size=200))
@example("[source\nname=1")
@example('[source]\nname = "rig"\n[[decoders]]\nname = "a"\nmodel = "\x00"\n')
@example("a = 1\na = 2\n")
def test_malformed_toml_text(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    p = tmp_path_factory.mktemp("cfg") / "c.toml"
    p.write_text(text, encoding="utf-8", errors="surrogatepass")
    _load(path=p, environ={})


@SETTINGS
@given(st.binary(max_size=100))
def test_undecodable_file(tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    p = tmp_path_factory.mktemp("cfg") / "c.toml"
    p.write_bytes(raw)
    _load(path=p, environ={})


@pytest.mark.parametrize("bad", ["x" * 5000, "a\x00b", "~nosuchuser/k", "/proc/self/mem/x"])
@pytest.mark.parametrize("field", ["model", "curve_secret_key", "curve_clients"])
def test_unusable_paths_are_config_errors(tmp_path: Path, bad: str, field: str) -> None:
    from rtdecode.sinks.curve import create_keypair

    data = copy.deepcopy(GOOD)
    if field == "model":
        data["decoders"][0]["model"] = bad
    else:  # a complete CURVE section, so the path itself is what gets checked
        _, secret = create_keypair(tmp_path, "server")
        data["sink"] = {"curve_secret_key": str(secret), "curve_allow_any": True, field: bad}
        if field == "curve_clients":
            data["sink"]["curve_allow_any"] = False
    with pytest.raises(ConfigError, match=field):
        load_config(data=data, environ={})


def test_config_path_that_is_a_directory(tmp_path: Path) -> None:
    d = tmp_path / "dir.toml"
    d.mkdir()
    with pytest.raises(ConfigError, match="dir.toml"):
        load_config(d, environ={})


def test_non_json_data_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        load_config(data={"source": {"name": b"bytes"}}, environ={})  # type: ignore[dict-item]


def test_good_config_still_loads() -> None:
    cfg = load_config(data=copy.deepcopy(GOOD), environ={})
    assert cfg.decoders[0].name == "cortex"
