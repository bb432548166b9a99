"""One validated configuration tree for the daemon.

Loaded from TOML (or YAML when PyYAML is installed), with environment overrides
``RTDECODE_<SECTION>__<FIELD>=value`` (nested delimiter ``__``; values are parsed
as JSON when they parse, else taken as strings). Unknown keys are rejected and
every error names the field and how to fix it, before anything is opened.

Example
-------
.. code-block:: toml

    [source]
    name = "rtdecode-sim-cortex"

    [[decoders]]
    name = "cortex"
    model = "models/cortex_wiener.onnx"

    [sink]
    endpoint = "tcp://127.0.0.1:5555"
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rtdecode.errors import ConfigError

logger = logging.getLogger(__name__)

ENV_PREFIX = "RTDECODE_"
ENV_DELIMITER = "__"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SourceConfig(_Strict):
    """Where the samples come from (an LSL stream)."""

    kind: Literal["lsl"] = Field("lsl", description="source kind (only LSL streams today)")
    name: str | None = Field(None, description="LSL stream name to resolve")
    type: str | None = Field(None, description="LSL stream type to resolve (e.g. EEG, EMG)")
    source_id: str | None = Field(None, description="LSL source_id to resolve")
    resolve_timeout_s: float = Field(10.0, gt=0, description="how long to look for the stream")
    channels: int | None = Field(None, ge=1, description="expected channel count (checked)")
    rate_hz: float | None = Field(None, gt=0, description="expected nominal rate (checked)")
    rate_tolerance: float = Field(0.01, ge=0, le=0.5, description="allowed relative rate mismatch")
    max_chunk_samples: int = Field(8192, ge=1, description="largest chunk pulled per tick")
    buffer_s: int = Field(10, ge=1, description="inlet buffer length, s (older samples are lost)")
    gap_factor: float = Field(
        3.0, gt=1.0, description="a timestamp step above gap_factor / rate_hz counts as a gap"
    )
    index_channel: int | None = Field(
        None, ge=0, description="channel that carries the sample index (replay --index-channel); "
        "the daemon then counts lost / duplicated samples exactly"
    )

    @model_validator(mode="after")
    def _need_a_selector(self) -> SourceConfig:
        if not (self.name or self.type or self.source_id):
            raise ValueError(
                "set at least one of source.name, source.type or source.source_id "
                "so the daemon knows which LSL stream to open"
            )
        return self


class PreprocessingConfig(_Strict):
    """Run-time policy of the input checks. The filter chain itself comes from the model file."""

    nonfinite: Literal["hold", "zero"] = Field(
        "hold", description="replace NaN/Inf input samples by the channel's last finite value or 0"
    )
    max_abs: float | None = Field(
        None, gt=0, description="samples beyond ±max_abs (stream units) are flagged BAD_INPUT"
    )
    chain: list[dict[str, Any]] | None = Field(
        None, description="optional: the chain you expect; start-up fails if a model's differs"
    )


class SmoothingConfig(_Strict):
    """Causal smoothing of a classifier's class probabilities (its delay is reported)."""

    method: Literal["average", "majority"] = Field(
        "average", description="probability average or majority vote over the window")
    window_s: float = Field(..., gt=0, le=10, description="window length, s")


class DecoderConfig(_Strict):
    """One streaming ONNX decoder."""

    name: str = Field(..., min_length=1, max_length=63, pattern=r"^[A-Za-z0-9_.\-/]+$",
                      description="decoder name (letters, digits, _ . - /)")
    model: Path = Field(..., description="streaming ONNX model file (see docs/models.md)")
    topic: str | None = Field(None, max_length=63, description="output topic (default: name)")
    providers: list[Literal["tensorrt", "cuda", "cpu"]] = Field(
        default_factory=lambda: ["cpu"], min_length=1,
        description="execution-provider preference, first available wins",
    )
    require_provider: bool = Field(
        False, description="fail at start-up unless the first preferred provider is available"
    )
    intra_op_threads: int = Field(1, ge=0, description="ONNX Runtime intra-op threads (0 = auto)")
    smoothing: SmoothingConfig | None = Field(
        None, description="classifiers only: causal smoothing of the class probabilities")

    @property
    def out_topic(self) -> str:
        """Topic this decoder publishes on."""
        return self.topic or self.name


class FusionConfig(_Strict):
    """Kalman decision fusion of several decoders (seed 002), published on its own topic."""

    model: Path = Field(..., description="fusion model JSON (rtdecode.fusion.model.FusionModel.save)")
    decoders: list[str] | None = Field(
        None, description="config decoder names in the fusion model's block order "
        "(default: the names stored in the fusion model)")
    topic: str = Field("fused", min_length=1, max_length=63, description="output topic")
    rate_hz: float = Field(50.0, gt=0, le=10000, description="publish rate of the fused estimate")
    stale_after_s: float = Field(0.25, gt=0, description="a decoder silent this long is excluded")
    adapt_noise: bool = Field(True, description="adapt each decoder's noise from its innovations")
    history: int = Field(64, ge=2, le=4096, description="frames kept for out-of-order fusion")


class SinkConfig(_Strict):
    """ZeroMQ PUB output."""

    endpoint: str = Field("tcp://127.0.0.1:5555", description="ZeroMQ bind endpoint")
    allow_remote: bool = Field(
        False, description="allow binding a non-loopback interface (a network-visible service)"
    )
    publish: Literal["every", "latest"] = Field(
        "every", description="every: one message per model output step; latest: one per tick"
    )
    sndhwm: int = Field(10000, ge=1, description="send high-water mark (messages) per subscriber")
    heartbeat_s: float = Field(1.0, gt=0, le=60, description="status message period")


class ServiceConfig(_Strict):
    """Daemon loop behaviour."""

    poll_timeout_s: float = Field(0.05, gt=0, le=1.0, description="longest wait for input per tick")
    stale_after_s: float = Field(0.25, gt=0, description="no input for this long → STALE output")
    safe_value: Literal["hold", "zero"] = Field(
        "hold", description="value published while stale / on model failure"
    )
    stats_interval_s: float = Field(10.0, gt=0, description="period of the one-line stats log")
    warmup_runs: int = Field(20, ge=0, description="model runs on zeros before reporting ready")
    duration_s: float | None = Field(None, gt=0, description="stop after this long (bounded runs)")
    max_samples: int | None = Field(None, ge=1, description="stop after this many input samples")


class Config(_Strict):
    """The whole daemon configuration."""

    source: SourceConfig
    preprocessing: PreprocessingConfig = Field(default_factory=PreprocessingConfig)
    decoders: list[DecoderConfig] = Field(..., min_length=1)
    fusion: FusionConfig | None = None
    sink: SinkConfig = Field(default_factory=SinkConfig)
    service: ServiceConfig = Field(default_factory=ServiceConfig)

    @field_validator("decoders")
    @classmethod
    def _unique_topics(cls, v: list[DecoderConfig]) -> list[DecoderConfig]:
        topics = [d.out_topic for d in v]
        dup = {t for t in topics if topics.count(t) > 1}
        if dup:
            raise ValueError(f"decoder topics must be unique; repeated: {sorted(dup)} "
                             "(give each decoder its own name or topic)")
        if "_status" in topics:
            raise ValueError("topic '_status' is reserved for the status message; rename the decoder")
        return v

    @model_validator(mode="after")
    def _fusion_fits(self) -> Config:
        if self.fusion is None:
            return self
        names = [d.name for d in self.decoders]
        if self.fusion.topic in [d.out_topic for d in self.decoders] + ["_status"]:
            raise ValueError(f"fusion.topic {self.fusion.topic!r} is already used; choose another")
        for n in self.fusion.decoders or []:
            if n not in names:
                raise ValueError(f"fusion.decoders names {n!r}, which is not a configured decoder "
                                 f"({names}); list names from [[decoders]]")
        return self


def _fix_hint(loc: tuple[Any, ...], msg: str, kind: str) -> str:
    if kind == "extra_forbidden":
        return "remove this key (check its spelling against docs/configuration.md)"
    if kind == "missing":
        return "add this field"
    return "see docs/configuration.md for allowed values"


def _format_errors(err: ValidationError, origin: str) -> ConfigError:
    lines = []
    fixes = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"{loc}: {e['msg']}")
        fixes.append(f"{loc}: {_fix_hint(e['loc'], e['msg'], e['type'])}")
    return ConfigError(f"invalid configuration in {origin}:\n    " + "\n    ".join(lines),
                       "; ".join(fixes))


def _read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist", "give the path of a .toml or .yaml file")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            try:
                import tomllib  # type: ignore[import-not-found]
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            return tomllib.loads(text)
        if suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ModuleNotFoundError as exc:
                raise ConfigError("YAML configs need PyYAML", "pip install pyyaml, or use TOML") from exc
            data = yaml.safe_load(text)
            if not isinstance(data, dict):
                raise ConfigError(f"{path} must hold a mapping at top level", "see deploy/configs/")
            return data
    except ConfigError:
        raise
    except Exception as exc:  # tomllib.TOMLDecodeError, yaml.YAMLError
        raise ConfigError(f"cannot parse {path}: {exc}", "fix the syntax at the position shown") from exc
    raise ConfigError(f"unsupported config format {suffix!r} for {path}", "use .toml, .yaml or .yml")


def _apply_env(data: dict[str, Any], environ: dict[str, str]) -> list[str]:
    applied = []
    for key, raw in sorted(environ.items()):
        if not key.startswith(ENV_PREFIX):
            continue
        if key in ("RTDECODE_SHARED_DATA",):
            continue
        path = [p.lower() for p in key[len(ENV_PREFIX):].split(ENV_DELIMITER)]
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node: Any = data
        for i, part in enumerate(path[:-1]):
            if isinstance(node, list):
                try:
                    node = node[int(part)]
                except (ValueError, IndexError) as exc:
                    raise ConfigError(
                        f"environment override {key}: no list item {part!r}",
                        "index list sections by position, e.g. RTDECODE_DECODERS__0__MODEL",
                    ) from exc
            else:
                node = node.setdefault(part, {})
            if not isinstance(node, (dict, list)):
                raise ConfigError(f"environment override {key}: {'.'.join(path[:i + 1])} is not a section",
                                  "override a field inside a section")
        if isinstance(node, list):
            raise ConfigError(f"environment override {key} ends on a list", "name a field of an item")
        node[path[-1]] = value
        applied.append(key)
    return applied


def load_config(
    path: str | Path | None = None,
    *,
    data: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Load, override and validate a configuration.

    Parameters
    ----------
    path : path, optional
        TOML or YAML file. Relative model paths in it are resolved against the
        file's folder first, then the current directory.
    data : dict, optional
        An already-parsed mapping (used instead of ``path``).
    environ : dict, optional
        Environment to read overrides from (default ``os.environ``).

    Raises
    ------
    ConfigError
        With every invalid field named and how to fix it.
    """
    if (path is None) == (data is None):
        raise ConfigError("load_config needs exactly one of path or data", "pass a config file")
    origin = str(path) if path is not None else "<dict>"
    raw = _read_file(Path(path)) if path is not None else json.loads(json.dumps(data))
    applied = _apply_env(raw, dict(os.environ if environ is None else environ))
    if applied:
        logger.info("config overrides from environment: %s", ", ".join(applied))
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as err:
        raise _format_errors(err, origin) from None
    base = Path(path).resolve().parent if path is not None else Path.cwd()
    paths = [dec for dec in cfg.decoders]
    if cfg.fusion is not None:
        paths.append(cfg.fusion)  # type: ignore[arg-type]
    for dec in paths:
        if not dec.model.is_absolute():
            cand = base / dec.model
            if cand.exists() or not (Path.cwd() / dec.model).exists():
                dec.model = cand
            else:
                dec.model = (Path.cwd() / dec.model).resolve()
        if not dec.model.exists():
            where = f"decoders[{dec.name}]" if isinstance(dec, DecoderConfig) else "fusion"
            raise ConfigError(f"{where}.model: file {dec.model} does not exist",
                              "point `model` at a file in models/ (make models)")
    return cfg


def reference_markdown() -> str:
    """The configuration reference (docs/configuration.md), generated from the models above."""
    sections = [
        ("source", SourceConfig, "The LSL input stream. Checked against the stream at start-up."),
        ("preprocessing", PreprocessingConfig,
         "Run-time input policy. The filter chain itself travels inside each model file."),
        ("decoders", DecoderConfig, "One `[[decoders]]` table per streaming ONNX model."),
        ("decoders.smoothing", SmoothingConfig,
         "Optional table inside a classifier's `[[decoders]]`: causal smoothing of its class "
         "probabilities; its delay ((window − 1)/2 frames) is reported in the status."),
        ("fusion", FusionConfig,
         "Optional: fuse several decoders' outputs with a Kalman filter (docs/fusion.md)."),
        ("sink", SinkConfig, "The ZeroMQ PUB output (wire format: docs/protocol.md)."),
        ("service", ServiceConfig, "The daemon loop."),
    ]
    out = [
        "# Configuration reference",
        "",
        "*Generated from `rtdecode/config.py` (`python -c 'import rtdecode.config as c; "
        "print(c.reference_markdown())' > docs/configuration.md`); a test keeps it current.*",
        "",
        "A config is one TOML (or YAML) file. It is validated before anything is opened: unknown",
        "keys are rejected, and every error names the field and the fix. Units are in field names",
        "(`_s` seconds, `_hz` hertz). Relative model paths are resolved against the config file's",
        "folder. Examples: `deploy/configs/`.",
        "",
        "**Environment overrides**: `RTDECODE_<SECTION>__<FIELD>=value` (values parsed as JSON",
        "when they parse); list items by position, e.g. `RTDECODE_DECODERS__0__PROVIDERS='[\"cuda\","
        "\"cpu\"]'`.",
        "",
        "**LSL network scope**: rtdecode sets `LSLAPICFG` to its own loopback-only file",
        "(`rtdecode/data/lsl_api.cfg`) unless you set it. On a lab network where the rig runs on",
        "another host, set `LSLAPICFG` to a liblsl config that can reach it (or to an empty value",
        "for liblsl's defaults).",
        "",
    ]
    for name, model, blurb in sections:
        header = f"[[{name}]]" if name == "decoders" else f"[{name}]"
        if name == "decoders.smoothing":
            header = "[decoders.smoothing]"
        out += [f"## `{header}`", "", blurb, "", "| field | type | default | meaning |",
                "|---|---|---|---|"]
        for fname, f in model.model_fields.items():
            ann = str(f.annotation).replace("typing.", "").replace("pathlib.", "")
            ann = ann.replace("<class '", "").replace("'>", "").replace("|", "or")
            default = "required" if f.is_required() else (
                "[...]" if f.default_factory is not None else repr(f.default))
            if f.default_factory is not None:
                default = repr(f.default_factory())  # type: ignore[call-arg]
            desc = (f.description or "").replace("|", "/")
            out.append(f"| `{fname}` | {ann} | `{default}` | {desc} |")
        out.append("")
    out += [
        "## Status message (`_status` topic)",
        "",
        "JSON object sent every `sink.heartbeat_s`, at start-up, and on shutdown:",
        "`state` (starting / running / stale / stopping), `version`, `pid`, `uptime_s`, `source`,",
        "`input` (`samples_in`, `gaps`, `missing_samples`, `index_lost`, `index_dup`, `time_jumps`),",
        "`bad_input_samples`, `messages_out`, `stale_messages`, `send_dropped`, `latency_ms`",
        "(`p50`, `p90`, `p99`, `p999`, `max`, `count`: sample age at publish since start),",
        "`decoders` (name, topic, model, provider, outputs, rate, delay, receptive field,",
        "failures) and `rss_mb`. It never contains secrets.",
        "",
    ]
    return "\n".join(out)
