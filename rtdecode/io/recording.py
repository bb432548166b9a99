"""One in-memory type for every recording format."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rtdecode.errors import DataError


@dataclass
class Recording:
    """A multichannel recording with optional targets.

    Attributes
    ----------
    x : float32 (n_samples, n_channels)
        Samples in physical units (µV, mV, spike counts, ...).
    fs : float
        Sample rate, Hz.
    t : float64 (n_samples,)
        Time of each sample, s (``i / fs`` when the file has no timestamps).
    y : float32 (n_samples, n_targets) or None
        Targets aligned with ``x`` (kinematics, force, class labels).
    channel_names : list of str
        One name per channel.
    target_names : list of str
        One name per target column.
    meta : dict
        Free-form provenance (file, dataset, units, grid shape, trial ids...).
    """

    x: np.ndarray
    fs: float
    t: np.ndarray | None = None
    y: np.ndarray | None = None
    channel_names: list[str] = field(default_factory=list)
    target_names: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.x = np.ascontiguousarray(self.x, dtype=np.float32)
        if self.x.ndim != 2:
            raise DataError(
                f"recording samples must be 2-D (n_samples, n_channels), got shape {self.x.shape}",
                "reshape the array to (n_samples, n_channels)",
            )
        if not np.isfinite(self.fs) or self.fs <= 0:
            raise DataError(f"sample rate must be a positive number of Hz, got {self.fs!r}",
                            "store the rate as `fs` (Hz) in the file")
        n = self.x.shape[0]
        if self.t is None:
            self.t = np.arange(n, dtype=np.float64) / float(self.fs)
        else:
            self.t = np.asarray(self.t, dtype=np.float64).reshape(-1)
            if self.t.shape[0] != n:
                raise DataError(f"{self.t.shape[0]} timestamps for {n} samples",
                                "give one timestamp per sample")
        if self.y is not None:
            self.y = np.asarray(self.y, dtype=np.float32)
            if self.y.ndim == 1:
                self.y = self.y[:, None]
            if self.y.shape[0] != n:
                raise DataError(f"{self.y.shape[0]} target rows for {n} samples",
                                "give one target row per sample")
        if not self.channel_names:
            self.channel_names = [f"ch{i}" for i in range(self.x.shape[1])]
        if self.y is not None and not self.target_names:
            self.target_names = [f"y{i}" for i in range(self.y.shape[1])]

    @property
    def n_samples(self) -> int:
        """Number of samples."""
        return int(self.x.shape[0])

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return int(self.x.shape[1])

    @property
    def duration_s(self) -> float:
        """Duration, s."""
        return self.n_samples / float(self.fs)

    def segment(self, start_s: float = 0.0, stop_s: float | None = None) -> Recording:
        """Return the samples in ``[start_s, stop_s)`` (seconds from the first sample).

        ``meta["markers"]`` (times in s from the first sample, labels), if any, keeps the
        markers inside the segment, their times from the segment's first sample.
        """
        i0 = max(0, int(round(start_s * self.fs)))
        i1 = self.n_samples if stop_s is None else min(self.n_samples, int(round(stop_s * self.fs)))
        if i1 <= i0:
            raise DataError(f"empty segment [{start_s}, {stop_s}) s of a {self.duration_s:.3f} s recording",
                            "choose start/stop inside the recording")
        meta = dict(self.meta, segment=[i0, i1])
        if "markers" in meta:  # keep the segment's markers, in s from its first sample
            assert self.t is not None
            times, labels = meta["markers"]
            times = np.asarray(times, dtype=np.float64)
            start = self.t[i0] - self.t[0]
            end = self.t[i1] - self.t[0] if i1 < self.n_samples else np.inf
            keep = (times >= start) & (times < end)
            meta["markers"] = (times[keep] - start, [lab for lab, k in zip(labels, keep, strict=True) if k])
        return Recording(
            x=self.x[i0:i1], fs=self.fs, t=self.t[i0:i1],  # type: ignore[index]
            y=None if self.y is None else self.y[i0:i1],
            channel_names=list(self.channel_names), target_names=list(self.target_names),
            meta=meta,
        )

    def with_index_channel(self, channel: int, start: int = 0) -> Recording:
        """Copy with ``channel`` replaced by the running sample index ``start, start+1, ...``.

        Replay and ``predict`` use the same replacement, so a consumer can prove that
        no sample was lost or duplicated and still compare outputs exactly.
        Indices are exact in float32 up to 2**24 samples.
        """
        if not 0 <= channel < self.n_channels:
            raise DataError(f"index channel {channel} outside 0..{self.n_channels - 1}",
                            "choose an existing channel")
        x = self.x.copy()
        x[:, channel] = np.arange(start, start + self.n_samples, dtype=np.float32)
        return Recording(x=x, fs=self.fs, t=self.t, y=self.y, channel_names=list(self.channel_names),
                         target_names=list(self.target_names), meta=dict(self.meta))
