"""One validated configuration tree for the daemon.

Loaded by the one configuration loader (:mod:`rtdecode.settings`) from TOML (or YAML when
PyYAML is installed), with environment overrides ``RTDECODE_<SECTION>__<FIELD>=value``
(nested delimiter ``__``, list items by position) decoded by the type of the field they set.
Unknown keys are rejected and every error names the field (or the variable) and how to fix
it, before anything is opened.

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

import logging
import math
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_settings import SettingsConfigDict

from rtdecode.errors import ConfigError, MissingModelError
from rtdecode.record.config import LslOutletConfig, RecordConfig
from rtdecode.settings import SettingsModel, format_validation_error, load_settings, read_document
from rtdecode.tms.config import MarkerStreamConfig, MeasureConfig, TmsConfig, TriggerConfig
from rtdecode.tms.m2m_config import M2mServeConfig

__all__ = ["Config", "DecoderConfig", "FusionConfig", "PreprocessingConfig", "ServiceConfig",
           "SinkConfig", "SmoothingConfig", "SourceConfig", "format_validation_error", "load_config",
           "read_document", "reference_markdown"]

logger = logging.getLogger(__name__)

ENV_PREFIX = "RTDECODE_"
ENV_DELIMITER = "__"


def _finite_vector(v: list[float] | None) -> list[float] | None:
    """Validator of the ``safe_vector`` fields: finite numbers only."""
    if v is not None and not all(math.isfinite(x) for x in v):
        raise ValueError("safe_vector must hold finite numbers (no nan / inf)")
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SourceConfig(_Strict):
    """Where the samples come from (an LSL stream)."""

    kind: Literal["lsl"] = Field("lsl", description="source kind (only LSL streams today)")
    name: str | None = Field(None, description="LSL stream name to resolve")
    type: str | None = Field(None, description="LSL stream type to resolve (e.g. EEG, EMG)")
    source_id: str | None = Field(None, description="LSL source_id to resolve")
    resolve_timeout_s: float = Field(10.0, gt=0, description="how long to look for the stream")
    choose_window_s: float = Field(
        0.5, ge=0, le=10, description="once an outlet that fits is found, keep gathering matching "
        "outlets this long, then choose among those that fit (warning when several do)")
    channels: int | None = Field(None, ge=1, description="expected channel count (checked)")
    rate_hz: float | None = Field(None, gt=0, description="expected nominal rate (checked)")
    rate_tolerance: float = Field(0.01, ge=0, le=0.5, description="allowed relative rate mismatch")
    max_chunk_samples: int = Field(8192, ge=1, description="largest chunk pulled per tick")
    busy_poll_s: float = Field(
        0.0, ge=0, le=0.1,
        description="poll the inlet without sleeping for up to this long before blocking in each "
                    "wait (0 = always block). Keeps the decoding thread and its caches hot and skips "
                    "the wake-up after a blocking wait, at the cost of up to one busy CPU core: only "
                    "for a core the daemon has to itself (see docs/performance.md)")
    buffer_s: int = Field(10, ge=1, description="inlet buffer length, s (older samples are lost)")
    gap_factor: float = Field(
        3.0, gt=1.0, description="a timestamp step above gap_factor / rate_hz counts as a gap"
    )
    index_channel: int | None = Field(
        None, ge=0, description="channel that carries the sample index (replay --index-channel); "
        "the daemon then counts lost / duplicated samples exactly, and the plausible-range input "
        "clamp leaves that channel alone (a counter outgrows any training range)"
    )
    reconnect: bool = Field(
        True, description="while the input is silent, switch to a new outlet matching name / type / "
        "source_id (a restarted rig); liblsl itself recovers an outlet with the same source_id"
    )

    def counters(self) -> tuple[int, ...]:
        """Channels that carry a sample counter (``index_channel``), for the input checks."""
        return () if self.index_channel is None else (self.index_channel,)

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
        None, gt=0, description="samples beyond ±max_abs (stream units) are clamped to it and flagged "
        "BAD_INPUT; replaces input_range_factor when set"
    )
    input_range_factor: float | None = Field(
        10.0, gt=1, description="samples beyond ± this many times their channel's training scale "
        "(the models' recorded input ranges, docs/reliability.md) are clamped to that limit and "
        "flagged BAD_INPUT; null: the finite check only"
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
        default_factory=lambda: ["cpu"], min_length=1,  # type: ignore[arg-type]
        description="execution-provider preference, first available wins",
    )
    require_provider: bool = Field(
        True, description="fail at start-up unless the first preferred provider is available and "
        "starts; false: fall back along the list, with a WARNING"
    )
    intra_op_threads: int = Field(1, ge=0, description="ONNX Runtime intra-op threads (0 = auto)")
    device_id: int = Field(0, ge=0, description="CUDA device ordinal (cuda / tensorrt)")
    trt_cache_dir: Path | None = Field(
        None, description="TensorRT engine + timing cache folder (default $RTDECODE_TRT_CACHE or "
        "~/.cache/rtdecode/trt); the first start builds the engine (minutes), later starts load it")
    fp16: bool = Field(False, description="TensorRT: allow fp16 kernels (faster; ~1e-3 parity)")
    io_binding: bool | Literal["auto"] = Field(
        "auto", description="keep the model state on the device with IOBinding; auto: on for "
        "cuda / tensorrt, off on cpu (measured slower there)")
    cuda_graph_frames: int | None = Field(
        None, ge=1, le=4096, description="capture CUDA graphs for steps of exactly this many model "
        "frames (cuda first in providers, IOBinding); other chunk lengths run uncaptured")
    max_step_frames: int = Field(
        2048, ge=1, le=65536, description="longest chunk per ONNX run (the TensorRT profile's "
        "maximum); longer chunks are split, which streaming makes exact")
    keep_warm: bool = Field(
        True, description="on the (at most two) ticks before a model frame is due that complete none "
        "(a decimating chain), run the model once on scratch inputs and discard the result, so that "
        "its code and weights are in the CPU caches when the frame comes (measured: the real step p50 "
        "3x faster on a shared 2-core VM; docs/performance.md). Plain runs only (not with IOBinding "
        "/ CUDA graphs)")
    smoothing: SmoothingConfig | None = Field(
        None, description="classifiers only: causal smoothing of the class probabilities")
    deadline_ms: float | None = Field(
        None, gt=0, description="a model call slower than this is a failure (its rows get the "
        "on_failure value, flagged DEGRADED); default: no deadline")
    output_margin: float | None = Field(
        0.0, ge=0, description="an output outside the model's training range, widened by this "
        "fraction of the range on each side, is clamped to the bound and flagged CLAMPED|DEGRADED "
        "(class probabilities: [0, 1]); null: the finite check only")
    on_failure: Literal["hold", "zero"] = Field(
        "hold", description="value published while the model raises or misses its deadline: "
        "its last good output (flags DEGRADED|HOLD) or zeros (DEGRADED)")
    safe_vector: list[float] | None = Field(
        None, min_length=1, description="this decoder's values while stale when service.safe_value "
        "= 'vector' (overrides service.safe_vector; one per model output)")
    _safe_vector_finite = field_validator("safe_vector")(_finite_vector)

    @model_validator(mode="after")
    def _gpu_options_fit(self) -> DecoderConfig:
        if self.fp16 and "tensorrt" not in self.providers:
            raise ValueError(f"decoder {self.name!r}: fp16 applies to the TensorRT provider only; "
                             "add \"tensorrt\" to providers or remove fp16")
        if self.cuda_graph_frames is not None:
            if self.providers[0] != "cuda" or self.io_binding is False:
                raise ValueError(f"decoder {self.name!r}: cuda_graph_frames needs \"cuda\" first in "
                                 "providers and io_binding true or \"auto\"")
            if self.cuda_graph_frames > self.max_step_frames:
                raise ValueError(f"decoder {self.name!r}: cuda_graph_frames exceeds max_step_frames")
        return self

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
    nodrop: bool = Field(
        False, description="ZMQ_XPUB_NODROP: count queue_full drops instead of dropping silently "
        "per subscriber; a stuck subscriber then stops delivery to all (docs/security.md)"
    )
    curve_secret_key: Path | None = Field(
        None, description="server secret certificate (rtdecode keygen); enables CURVE encryption "
        "and needs curve_clients or curve_allow_any"
    )
    curve_clients: Path | None = Field(
        None, description="directory of authorized client public certificates (*.key)"
    )
    curve_allow_any: bool = Field(
        False, description="with CURVE: accept any client that knows the server public key "
        "(encryption without client authentication)"
    )

    @model_validator(mode="after")
    def _sink_is_safe(self) -> SinkConfig:
        from rtdecode.errors import SinkError
        from rtdecode.sinks import curve
        from rtdecode.sinks.zmq_pub import check_curve_options, check_endpoint

        try:
            check_endpoint(self.endpoint, allow_remote=self.allow_remote)
            check_curve_options(self.curve_secret_key, self.curve_clients, self.curve_allow_any)
            if self.curve_secret_key is not None:
                curve.load_secret_certificate(self.curve_secret_key, "sink.curve_secret_key")
            if self.curve_clients is not None:
                curve.load_client_keys(self.curve_clients, "sink.curve_clients")
        except SinkError as exc:
            what = exc.what if exc.what.startswith("sink.") else f"sink.endpoint: {exc.what}"
            raise ValueError(f"{what} (fix: {exc.fix})") from None
        return self


class ServiceConfig(_Strict):
    """Daemon loop behaviour."""

    poll_timeout_s: float = Field(0.05, gt=0, le=1.0, description="longest wait for input per tick")
    stale_after_s: float = Field(0.25, gt=0, description="no input for this long → STALE output")
    safe_value: Literal["hold", "zero", "vector"] = Field(
        "hold", description="value published while stale: the last output (flags STALE|HOLD), zeros "
        "or safe_vector (flags STALE)"
    )
    safe_vector: list[float] | None = Field(
        None, min_length=1, description="values published while stale when safe_value = 'vector' "
        "(one per decoder output, and per fused output; checked at start-up)"
    )
    _safe_vector_finite = field_validator("safe_vector")(_finite_vector)
    stale_max_rate_hz: float = Field(
        100.0, gt=0, le=10000, description="while stale, each topic gets a STALE message per model "
        "frame (its output rate), at most this often"
    )
    on_reconnect: Literal["reset", "carry"] = Field(
        "reset", description="when input returns after a stale episode: zero every filter, model and "
        "fusion state, or carry it over the outage"
    )
    latency_budget_ms: float | None = Field(
        None, gt=0, le=60000, description="an estimate older than this when published (publish time − "
        "LSL time of its newest input sample) is flagged LATE, and the daemon is 'behind' when the "
        "oldest sample of three pulls in a row waited in the daemon's own queue longer than this (a "
        "source that delivers late makes estimates LATE, not the daemon behind); default: the larger "
        "of 50 ms and two frame periods of the slowest decoder")
    on_behind: Literal["skip", "coalesce", "none"] = Field(
        "skip", description="while behind: skip drops the input samples more than a quarter of the "
        "budget older than the newest one pulled (counted; the next row flagged GAP) so outputs stay "
        "fresh (default; 'none' for a service with only a [tms] section, whose epochs need every "
        "sample); coalesce publishes only the newest row per topic per tick; none publishes every row "
        "(flagged LATE). skip is what a controller that moves a limb wants: a fresh estimate with a "
        "gap, never a backlog of old ones (docs/reliability.md)")
    prewake_ms: float = Field(
        0.3, ge=0, le=10, description="with keep_warm: when the next chunk should complete a model "
        "frame, wake this long before it is due (predicted from the stream's rate and the recent "
        "transport delay) and run the warm step then, so the real step finds its caches warm; 0: "
        "warm on the tick before only (docs/performance.md)")
    stats_interval_s: float = Field(10.0, gt=0, description="period of the one-line stats log")
    warmup_runs: int = Field(20, ge=0, description="model runs on zeros before reporting ready")
    duration_s: float | None = Field(None, gt=0, description="stop after this long (bounded runs)")
    max_samples: int | None = Field(None, ge=1, description="stop after this many input samples")
    malloc_arenas: int | None = Field(
        2, ge=1, le=64, description="glibc malloc arenas for the daemon's threads (mallopt "
        "M_ARENA_MAX, set at start-up): liblsl starts new threads at every reconnection, and with "
        "glibc's default (8 per core) the resident memory grew ~5 MB at most reconnections; null "
        "keeps glibc's default (docs/reliability.md)")
    stage_timing: bool = Field(
        True, description="time each stage of the tick (pull, chain, model, publish, fusion) into "
        "preallocated histograms; percentiles in the status message (cost: ~µs per tick)")


class Config(SettingsModel):
    """The whole daemon configuration (load it with :func:`load_config`)."""

    model_config = SettingsConfigDict(extra="forbid", validate_assignment=True)

    source: SourceConfig
    preprocessing: PreprocessingConfig = Field(default_factory=PreprocessingConfig)
    decoders: list[DecoderConfig] = Field(
        ..., description="streaming decoders (may be left out when a [tms] section is given)")
    fusion: FusionConfig | None = None
    tms: TmsConfig | None = None
    sink: SinkConfig = Field(default_factory=SinkConfig)
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    record: RecordConfig | None = None
    lsl_outlet: LslOutletConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _tms_alone(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("tms") is not None and "decoders" not in data:
            return {**data, "decoders": []}  # a TMS-only service decodes nothing
        return data

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
    def _something_to_serve(self) -> Config:
        if not self.decoders and self.tms is None:
            raise ValueError("nothing to serve: add at least one [[decoders]] table or a [tms] "
                             "section (docs/configuration.md, docs/tms.md)")
        if self.tms is not None and self.tms.topic in [d.out_topic for d in self.decoders]:
            raise ValueError(f"tms.topic {self.tms.topic!r} is already a decoder's topic; choose another")
        if self.tms is not None and not self.decoders and "on_behind" not in self.service.model_fields_set:
            # a TMS-only service measures epochs: it needs every sample, not the freshest ones
            self.service.on_behind = "none"
        return self

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
    raw = read_document(Path(path)) if path is not None else data
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin} must hold a mapping (sections) at top level, "
                          f"not {type(raw).__name__}", "see deploy/configs/ for examples")
    cfg = load_settings(Config, raw, origin=origin, environ=os.environ if environ is None else environ,
                        prefix=ENV_PREFIX)
    _resolve_model_paths(cfg, Path(path).resolve().parent if path is not None else Path.cwd())
    return cfg


def _resolve_model_paths(cfg: Config, base: Path) -> None:
    """Model paths relative to the config file's folder (else the current one), which must exist."""
    paths = [dec for dec in cfg.decoders]
    if cfg.fusion is not None:
        paths.append(cfg.fusion)  # type: ignore[arg-type]
    if cfg.tms is not None and cfg.tms.m2m is not None:
        paths.append(cfg.tms.m2m)  # type: ignore[arg-type]
    for dec in paths:
        where = (f"decoders[{dec.name}]" if isinstance(dec, DecoderConfig)
                 else "fusion" if dec is cfg.fusion else "tms.m2m")
        try:
            if not dec.model.is_absolute():
                cand = base / dec.model
                if cand.exists() or not (Path.cwd() / dec.model).exists():
                    dec.model = cand
                else:
                    dec.model = (Path.cwd() / dec.model).resolve()
            found = dec.model.exists()
        except (OSError, ValueError) as exc:  # name too long, NUL byte, ...
            raise ConfigError(f"{where}.model: cannot use path {str(dec.model)[:200]!r}: {exc}",
                              "point `model` at a file in models/ (make models)") from None
        if not found:
            raise MissingModelError(f"{where}.model: file {dec.model} does not exist",
                                    "point `model` at an existing .onnx file (the shipped ones are in "
                                    "the repository's models/ folder)")


def reference_markdown() -> str:
    """The configuration reference (docs/configuration.md), generated from the models above."""
    out = list(_REFERENCE_INTRO)
    for name, model, blurb in _reference_sections():
        out += _field_table(name, model, blurb)
    return "\n".join(out + _REFERENCE_STATUS)


def _field_table(name: str, model: type[BaseModel], blurb: str) -> list[str]:
    """One section of the reference: its header, what it is, and a table of its fields."""
    header = f"[[{name}]]" if name == "decoders" else f"[{name}]"
    out = [f"## `{header}`", "", blurb, "", "| field | type | default | meaning |", "|---|---|---|---|"]
    for fname, f in model.model_fields.items():
        ann = str(f.annotation).replace("typing.", "").replace("pathlib.", "")
        ann = ann.replace("<class '", "").replace("'>", "").replace("|", "or")
        if f.is_required():
            default = "required"
        else:
            default = repr(f.default_factory() if f.default_factory is not None  # type: ignore[call-arg]
                           else f.default)
        desc = (f.description or "").replace("|", "/")
        out.append(f"| `{fname}` | {ann} | `{default}` | {desc} |")
    return out + [""]


def _reference_sections() -> list[tuple[str, type[BaseModel], str]]:
    """The configuration sections in reference order: name, model, what it is."""
    return [
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
        ("record", RecordConfig, "Optional: record the session to HDF5 (docs/recording.md)."),
        ("lsl_outlet", LslOutletConfig, "Optional: each output topic also as an LSL stream."),
        ("tms", TmsConfig, "Optional: TMS pulse events and per-channel MEP measures, one event "
         "message per pulse (docs/tms.md). Needs one of `[tms.markers]` or `[tms.trigger]`."),
        ("tms.markers", MarkerStreamConfig, "Pulses from an LSL marker stream (payload: docs/tms.md)."),
        ("tms.trigger", TriggerConfig, "Pulses from edges of a trigger channel in the input stream."),
        ("tms.measure", MeasureConfig, "The chain before measurement and the windows, ms after the "
         "pulse; a window [a, b] holds the samples whose time lies in [a, b]."),
        ("tms.m2m", M2mServeConfig, "Optional: an M2M-Net prediction of every muscle's MEP on each "
         "pulse with a coil pose, then predicted and measured side by side (docs/m2m.md)."),
    ]


#: The reference's opening paragraphs, one line each.
_REFERENCE_INTRO = [
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
    "**Environment overrides**: `RTDECODE_<SECTION>__<FIELD>=value`, decoded by the type of the",
    "field they set: text, numbers, booleans, paths and choices as written (`RTDECODE_SOURCE__NAME=123`",
    "is the name \"123\"), lists and sections as JSON, `null` clears an optional field; list items",
    "by position, e.g. `RTDECODE_DECODERS__0__PROVIDERS='[\"cuda\", \"cpu\"]'`. An invalid",
    "override is reported with the variable's name.",
    "",
    "**LSL network scope**: rtdecode sets `LSLAPICFG` to its own loopback-only file",
    "(`rtdecode/data/lsl_api.cfg`) unless you set it. On a lab network where the rig runs on",
    "another host, set `LSLAPICFG` to a liblsl config that can reach it (or to an empty value",
    "for liblsl's defaults). The project's file also bounds liblsl's per-stream sample pools",
    "(`[tuning]` `InletBufferReserveMs` / `OutletBufferReserveMs` = 500; liblsl's default of",
    "5,000 ms writes 621 MB per inlet at 1,024 ch @ 30 kHz when the stream opens): copy those",
    "lines into a config of your own. The daemon reads `InletBufferReserveMs` from the file in",
    "use and warns, naming the setting, when a stream's pool would pass 100 MB. Its",
    "`TimeProbeInterval = 0.01` / `TimeProbeMaxRTT = 0.05` cut the clock-offset estimate an inlet",
    "makes when it opens or reopens after an outage from 0.64 s (liblsl's defaults) to 0.13 s.",
    "",
]

#: The reference's closing section: the status message's fields.
_REFERENCE_STATUS = [
    "## Status message (`_status` topic)",
    "",
    "JSON object sent every `sink.heartbeat_s`, at start-up, and on shutdown:",
    "`state` (starting / running / stale / stopping), `reason` (one line, shown by",
    "`rtdecode check`), `phase`, `version`, `pid`, `uptime_s`, `source`, `input` (`samples_in`,",
    "`gaps`, `missing_samples`, `index_lost`, `index_dup`, `time_jumps`, `reconnects`,",
    "`reconnect_rejected`), `bad_input_samples`, `out_of_range_samples`, `messages_out`,",
    "`stale_messages`, `stale_episodes`, `stale_for_s`, `last_outage` (`silent_s`, `detect_s`,",
    "`stale_s`), `old_samples_dropped`, `send_dropped`, `sink` (`sent`,",
    "`drops` per reason `queue_full` / `no_subscriber`, `nodrop`, `sndhwm`, `subscriptions`,",
    "`curve` off / clients / any, and with CURVE `auth_accepted` / `auth_denied`), `latency_ms`",
    "(`p50`, `p90`, `p99`, `p999`, `max`, `count`: sample age at publish since start),",
    "`decoders` (name, topic, model, provider, outputs, rate, delay, receptive field,",
    "`failures`, `deadline_misses`, `failure_episodes`, `failing`), `fusion`, `rss_mb` and",
    "`stages_ms` (per-stage percentiles when `service.stage_timing` is on); with `[record]`,",
    "`record` (`file`, `part`, `queued_mb`, `queue_mb`, `dropped` chunks / samples / frames,",
    "`written`, `flushes`, `writer_pid`, `error`), with `[lsl_outlet]`, `lsl_outlet` (per topic",
    "`pushed`, `consumers`), with `[tms]`, `tms` (`topic`, `pulses_from`, `channels` (labels of",
    "the measured channels, in event order), `pulses`, `published`, `measured`, `no_samples`,",
    "`outage`, `preactivated`, `pending`, `last_pulse`, `markers_ignored`,",
    "`marker_field_errors`, `delay_after_window_ms`; docs/tms.md). It never contains secrets.",
    "",
]
