"""A preprocessing chain: stages built from JSON-able specs and run in order.

The chain a model was trained with travels inside the model file as
:attr:`Chain.specs` (plain JSON), and the daemon rebuilds the same stages with
:func:`build_chain`; :func:`chains_equal` tells whether two chains are the same.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rtdecode.dsp.base import Stage, check_chunk, check_io
from rtdecode.dsp.channels import GridStage, SelectStage
from rtdecode.dsp.registry import STAGE_TYPES, StageSpec, parse_chain
from rtdecode.dsp.specs import spec_to_dict
from rtdecode.errors import StageError

logger = logging.getLogger(__name__)

__all__ = ["BLOCK_BYTES", "STAGE_TYPES", "Chain", "build_chain", "build_stage", "chains_equal"]

#: A long chunk runs through the stages in blocks of about this many bytes of float64 samples
#: (at least 32 rows), so each block's intermediates stay in the CPU caches: a 1,800-sample
#: catch-up chunk of the 1,024-channel iBCI front end (float64) took 17–29 ms in one piece and
#: 11–12 ms in 32-row blocks, the cost of sixty live 30-sample ticks (10–14 ms; quiet 2-core VM).
#: The stages are chunk-invariant, so the blocks give the same output up to rounding.
BLOCK_BYTES = 256 * 1024


def build_stage(spec: StageSpec, rate_hz: float, n_in: int) -> Stage:
    """Build one stage from a validated spec for a given input rate (Hz) and channel count.

    Raises
    ------
    StageError
        If the spec does not fit the input (e.g. a cut-off above Nyquist).
    """
    return STAGE_TYPES[spec.kind](spec, rate_hz, n_in)


class Chain:
    """Preprocessing stages run in order on each chunk.

    Parameters
    ----------
    stages : sequence of Stage
        Stages in processing order; each stage's input rate and channel count must
        match the previous stage's output.
    rate_hz : float, optional
        Input sample rate, Hz (required for an empty chain; checked otherwise).
    n_channels : int, optional
        Input channel count (required for an empty chain; checked otherwise).

    Attributes
    ----------
    rate_in_hz, rate_out_hz : float
        Input and output sample rates, Hz.
    n_in, n_out : int
        Input and output channel counts.
    delay_s : float
        Sum of the stages' declared delays, s.
    grid_shape : (int, int) or None
        (rows, cols) of the output channels when a ``grid`` stage lays them out (and
        no later stage re-selects channels), else None.
    """

    def __init__(
        self,
        stages: Sequence[Stage] = (),
        rate_hz: float | None = None,
        n_channels: int | None = None,
    ) -> None:
        self.stages: tuple[Stage, ...] = tuple(stages)
        if self.stages:
            first = self.stages[0]
            rate, n = first.rate_in_hz, first.n_in
            if rate_hz is not None and not math.isclose(rate_hz, rate, rel_tol=1e-12):
                raise StageError(
                    f"chain input rate {rate_hz:g} Hz differs from its first stage's {rate:g} Hz",
                    "build the stages for the stream's rate (use build_chain)",
                )
            if n_channels is not None and n_channels != n:
                raise StageError(
                    f"chain input has {n_channels} channels but its first stage expects {n}",
                    "build the stages for the stream's channel count (use build_chain)",
                )
        else:
            if rate_hz is None or n_channels is None:
                raise StageError(
                    "an empty chain needs its input rate_hz and n_channels",
                    "pass Chain([], rate_hz=..., n_channels=...) or use build_chain([], ...)",
                )
            rate, n = check_io(rate_hz, n_channels, "chain")
        self.rate_in_hz: float = float(rate)
        self.n_in: int = int(n)
        for i, (prev, stage) in enumerate(itertools.pairwise(self.stages), start=1):
            if not math.isclose(prev.rate_out_hz, stage.rate_in_hz, rel_tol=1e-12) or (
                prev.n_out != stage.n_in
            ):
                raise StageError(
                    f"stage {i} ({type(stage).__name__}) expects {stage.n_in} channels at "
                    f"{stage.rate_in_hz:g} Hz but stage {i - 1} outputs {prev.n_out} channels "
                    f"at {prev.rate_out_hz:g} Hz",
                    "build the chain with build_chain so each stage fits its input",
                )
        last = self.stages[-1] if self.stages else None
        self.rate_out_hz: float = last.rate_out_hz if last else self.rate_in_hz
        self.n_out: int = last.n_out if last else self.n_in
        self._empty = np.empty((0, self.n_out), np.float32)  # returned when a call completes no row
        self._empty.flags.writeable = False
        self.delay_s: float = float(sum(s.delay_s for s in self.stages))
        #: how long one input sample affects the chain's output, s (sum of the stages')
        self.memory_s: float = float(sum(s.memory_s for s in self.stages))
        grid: tuple[int, int] | None = None
        for stage in self.stages:
            if isinstance(stage, GridStage):
                grid = stage.grid_shape
            elif stage.n_out != stage.n_in or isinstance(stage, SelectStage):
                grid = None
        self.grid_shape: tuple[int, int] | None = grid
        #: dtype the samples are validated into (the first stage's, float64 by default)
        self.dtype = self.stages[0].input_dtype if self.stages else np.dtype(np.float64)
        widest = max([self.n_in] + [s.n_out for s in self.stages])
        #: longest chunk run through the stages in one piece, rows (see BLOCK_BYTES)
        self.block_rows: int = max(32, BLOCK_BYTES // (8 * widest))

    def process(self, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run new samples through every stage, keeping each stage's state.

        Parameters
        ----------
        x : float (n, n_in)
            New input samples (n may be 0), stream units.
        t : float64 (n,)
            Time of each sample, s.

        Returns
        -------
        y : float32 (m, n_out)
            Output samples produced by this call (computed in float64, or in float32 by
            the stages whose spec says ``precision = "float32"``).
        t_out : float64 (m,)
            Time of the newest input sample each output depends on, s.

        Raises
        ------
        StageError
            If ``x`` does not have ``n_in`` columns or ``t`` one time per row.
        """
        y, t_out = check_chunk(x, t, self.n_in, "preprocessing chain", self.dtype)
        b = self.block_rows
        if y.shape[0] <= b:
            return self._run(y, t_out)
        parts = [self._run(y[i : i + b], t_out[i : i + b]) for i in range(0, y.shape[0], b)]
        return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))

    def _run(self, y: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every stage's unchecked step (the chunk was validated once) on (n, n_in) samples in
        :attr:`dtype` and their times; returns float32 (m, n_out) and float64 (m,)."""
        for stage in self.stages:
            if y.shape[0] == 0:
                return self._empty, t[:0]
            if stage.dtype is not None and y.dtype != stage.dtype:
                y = y.astype(stage.dtype)
            y, t = stage._step(y, t)
        return y.astype(np.float32), t

    def reset(self) -> None:
        """Return every stage to its initial (zero) state."""
        for stage in self.stages:
            stage.reset()

    @property
    def specs(self) -> list[dict[str, Any]]:
        """The chain as JSON-serialisable dicts (normalised; round-trips through build_chain).

        Raises
        ------
        StageError
            If a stage was built by hand, without a spec.
        """
        out = []
        for i, stage in enumerate(self.stages):
            if stage.spec is None:
                raise StageError(
                    f"stage {i} ({type(stage).__name__}) has no spec and cannot be written out",
                    "build the chain from specs with build_chain",
                )
            out.append(spec_to_dict(stage.spec))
        return out

    def __len__(self) -> int:
        return len(self.stages)

    def __repr__(self) -> str:
        kinds = ", ".join(getattr(s.spec, "kind", type(s).__name__) for s in self.stages)
        return (
            f"Chain([{kinds}], {self.rate_in_hz:g} Hz x {self.n_in} -> "
            f"{self.rate_out_hz:g} Hz x {self.n_out}, delay {self.delay_s * 1e3:.3g} ms)"
        )


def build_chain(
    specs: Sequence[dict[str, Any] | StageSpec], rate_hz: float, n_channels: int
) -> Chain:
    """Validate specs and build their stages for a stream.

    Parameters
    ----------
    specs : list of dict or StageSpec
        Stage specs in processing order (``[]`` gives the identity chain).
    rate_hz : float
        Sample rate of the stream, Hz.
    n_channels : int
        Channel count of the stream.

    Returns
    -------
    Chain
        Stages with zero state.

    Raises
    ------
    ConfigError
        If a spec is malformed (unknown kind or field, value out of range).
    StageError
        If a spec does not fit the rate or channel count at its position in the chain
        (e.g. a cut-off at or above that stage's Nyquist frequency); the message names
        the stage index, kind and field.
    """
    parsed = parse_chain(specs)
    rate, n = check_io(rate_hz, n_channels, "preprocessing chain")
    stages: list[Stage] = []
    for i, spec in enumerate(parsed):
        try:
            stage = build_stage(spec, rate, n)
        except StageError as exc:
            raise StageError(
                f"preprocessing stage {i} ({spec.kind!r}, input {rate:g} Hz x {n} channels): "
                f"{exc.what}",
                exc.fix,
            ) from exc
        stages.append(stage)
        rate, n = stage.rate_out_hz, stage.n_out
    chain = Chain(stages, rate_hz=float(rate_hz), n_channels=int(n_channels))
    logger.debug("built %r", chain)
    return chain


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(u, v) for u, v in zip(a, b, strict=True))
    return bool(a == b)


def chains_equal(
    a_specs: Sequence[dict[str, Any] | StageSpec] | Chain,
    b_specs: Sequence[dict[str, Any] | StageSpec] | Chain,
) -> bool:
    """Whether two preprocessing chains are the same after normalisation.

    Specs are validated and compared with defaults filled in, tuples as lists, and
    numbers equal to 1e-9 relative (so a JSON round trip or ``1`` vs ``1.0`` does not
    matter). A scalar and a per-channel list are different specs.

    Parameters
    ----------
    a_specs, b_specs : list of dict or StageSpec, or Chain
        The chains to compare (e.g. the one in a model file and the one configured).

    Returns
    -------
    bool

    Raises
    ------
    ConfigError
        If either chain is not a valid list of specs.
    """
    a = (
        a_specs.specs
        if isinstance(a_specs, Chain)
        else [spec_to_dict(s) for s in parse_chain(a_specs)]
    )
    b = (
        b_specs.specs
        if isinstance(b_specs, Chain)
        else [spec_to_dict(s) for s in parse_chain(b_specs)]
    )
    return _same(a, b)
