"""Config loading: validation before anything opens, errors that name the field and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rtdecode.config import load_config
from rtdecode.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "cortex_wiener.onnx"


def _write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


GOOD = f"""
[source]
name = "rig"
[[decoders]]
name = "cortex"
model = "{MODEL}"
"""


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, GOOD), environ={})
    assert cfg.sink.endpoint == "tcp://127.0.0.1:5555"
    assert cfg.sink.allow_remote is False
    assert cfg.decoders[0].out_topic == "cortex"


def test_unknown_key_is_rejected_with_field_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, GOOD + "\n[sink]\nendpoitn = 'x'\n"), environ={})
    msg = str(e.value)
    assert "sink.endpoitn" in msg and "remove this key" in msg


def test_missing_section_and_bad_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, "[source]\nname='x'\nrate_hz=-5\n"), environ={})
    msg = str(e.value)
    assert "decoders" in msg and "source.rate_hz" in msg


def test_source_needs_a_selector(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="source.name"):
        load_config(_write(tmp_path, GOOD.replace('name = "rig"', 'channels = 3')), environ={})


def test_missing_model_file_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(_write(tmp_path, GOOD.replace(str(MODEL), "nope.onnx")), environ={})


def test_env_overrides_nested_fields(tmp_path: Path) -> None:
    env = {"RTDECODE_SINK__ENDPOINT": "ipc:///tmp/x.sock", "RTDECODE_SERVICE__STALE_AFTER_S": "0.5",
           "RTDECODE_DECODERS__0__PROVIDERS": '["cuda", "cpu"]'}
    cfg = load_config(_write(tmp_path, GOOD), environ=env)
    assert cfg.sink.endpoint == "ipc:///tmp/x.sock"
    assert cfg.service.stale_after_s == 0.5
    assert cfg.decoders[0].providers == ["cuda", "cpu"]


def test_env_override_unknown_field_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sink.nope"):
        load_config(_write(tmp_path, GOOD), environ={"RTDECODE_SINK__NOPE": "1"})


def test_duplicate_topics_and_reserved_topic(tmp_path: Path) -> None:
    two = GOOD + f'\n[[decoders]]\nname = "cortex"\nmodel = "{MODEL}"\n'
    with pytest.raises(ConfigError, match="unique"):
        load_config(_write(tmp_path, two), environ={})
    with pytest.raises(ConfigError, match="reserved"):
        load_config(_write(tmp_path, GOOD.replace('name = "cortex"', 'name = "_status"')), environ={})


def test_toml_syntax_error_and_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot parse"):
        load_config(_write(tmp_path, "[source\nname=1"), environ={})
    y = f"source:\n  name: rig\ndecoders:\n  - name: a\n    model: {MODEL}\n"
    cfg = load_config(_write(tmp_path, y, "c.yaml"), environ={})
    assert cfg.decoders[0].name == "a"


def test_example_configs_validate() -> None:
    configs = sorted((ROOT / "deploy" / "configs").glob("*.toml"))
    assert configs, "deploy/configs/ should hold example configs"
    for p in configs:
        load_config(p, environ={})


def test_serve_exits_2_on_config_error(tmp_path: Path) -> None:
    p = _write(tmp_path, GOOD + "\n[service]\nbogus = 1\n")
    r = subprocess.run([sys.executable, "-m", "rtdecode", "serve", str(p)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2
    assert "service.bogus" in r.stderr and "Fix:" in r.stderr


def test_configuration_reference_is_current() -> None:
    from rtdecode.config import reference_markdown

    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert doc.strip() == reference_markdown().strip(), (
        "docs/configuration.md is stale: regenerate it (see its first lines)")


def test_environment_errors_name_the_variable(tmp_path: Path) -> None:
    """A bad value from the environment names the variable, not the file; so does a misspelt
    section, which must not be told to 'remove this key' from a file that does not have it."""
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, GOOD), environ={"RTDECODE_SOURCE__CHANNELS": "fifty"})
    msg = str(e.value)
    assert "RTDECODE_SOURCE__CHANNELS = 'fifty'" in msg and "source.channels" in msg
    assert "Fix: give RTDECODE_SOURCE__CHANNELS a valid value" in msg
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, GOOD), environ={"RTDECODE_SORCE__NAME": "rig"})
    msg = str(e.value)
    assert "RTDECODE_SORCE__NAME" in msg and "unset RTDECODE_SORCE__NAME" in msg
    assert "remove this key" not in msg


def test_remote_bind_error_puts_the_real_fix_on_the_fix_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, GOOD + '\n[sink]\nendpoint = "tcp://0.0.0.0:5555"\n'), environ={})
    fix = str(e.value).split("Fix:", 1)[1]
    assert "allow_remote = true" in fix and "loopback" in fix
    assert "see docs/configuration.md for allowed values" not in fix


def test_missing_model_is_exit_code_4(tmp_path: Path) -> None:
    """README: exit 4 for a missing model (also a ConfigError: the fix is the config's path)."""
    from rtdecode.errors import MissingModelError

    with pytest.raises(MissingModelError) as e:
        load_config(_write(tmp_path, GOOD.replace(str(MODEL), "nope.onnx")), environ={})
    assert e.value.exit_code == 4


def test_info_reads_a_fusion_model(capsys: pytest.CaptureFixture) -> None:
    from rtdecode.cli import main

    assert main(["info", str(ROOT / "models" / "cortex_fusion.json")]) == 0
    out = capsys.readouterr().out
    assert "kalman fusion model" in out and '"wiener": 2' in out


def test_train_help_names_an_existing_config(capsys: pytest.CaptureFixture) -> None:
    from rtdecode.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    names = [w for w in capsys.readouterr().out.split() if w.startswith("configs/train/")]
    assert names and all((ROOT / n.rstrip(")., ")).exists() for n in names), names


def test_environment_overrides_are_decoded_by_field_type(tmp_path: Path) -> None:
    """A string field keeps what was written (a name that looks like a number stays a name); a list
    is JSON; null clears an optional field; numbers and booleans convert as the field says."""
    env = {"RTDECODE_SOURCE__NAME": "123", "RTDECODE_DECODERS__0__PROVIDERS": '["cpu"]',
           "RTDECODE_PREPROCESSING__INPUT_RANGE_FACTOR": "null", "RTDECODE_SINK__NODROP": "true",
           "RTDECODE_SERVICE__STALE_AFTER_S": "0.5"}
    cfg = load_config(_write(tmp_path, GOOD), environ=env)
    assert cfg.source.name == "123" and cfg.decoders[0].providers == ["cpu"]
    assert cfg.preprocessing.input_range_factor is None and cfg.sink.nodrop is True
    assert cfg.service.stale_after_s == 0.5
    with pytest.raises(ConfigError, match="RTDECODE_DECODERS__0__PROVIDERS = 'cpu' is not valid JSON"):
        load_config(_write(tmp_path, GOOD), environ={"RTDECODE_DECODERS__0__PROVIDERS": "cpu"})


def test_a_tms_only_service_keeps_every_sample_by_default(tmp_path: Path) -> None:
    """on_behind defaults to skip for decoders, none for a [tms]-only service (epochs need every
    sample); an explicit setting wins."""
    tms = '[source]\nname = "emg"\n[tms.markers]\nname = "pulses"\n'
    assert load_config(_write(tmp_path, tms), environ={}).service.on_behind == "none"
    assert load_config(_write(tmp_path, tms + '[service]\non_behind = "skip"\n'),
                       environ={}).service.on_behind == "skip"
    assert load_config(_write(tmp_path, GOOD), environ={}).service.on_behind == "skip"
