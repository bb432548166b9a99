"""Typed results of the fitting loops and protocol runs.

Every object that ends up in ``metrics.json`` has a ``to_json()`` giving the documented
schema (plain dicts, lists and numbers); models, weights and curves stay typed beside it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import Tensor, nn

from rtdecode.decoders.base import StreamingDecoder
from rtdecode.nn.datasets import TrainingData

logger = logging.getLogger(__name__)

__all__ = [
    "AbNetwork",
    "AbRun",
    "AbScore",
    "Attempt",
    "BestStep",
    "ClassifierFit",
    "ClassifierHistory",
    "FoldScore",
    "LdaResult",
    "LinearFit",
    "LotoModel",
    "LotoRun",
    "RegressionFit",
    "RegressionHistory",
    "RunResult",
    "ScoredPair",
    "Summary",
]


def _floats(v: Sequence[float]) -> list[float]:
    return [float(x) for x in v]


# -- fitting loops -----------------------------------------------------------------------------


@dataclass
class BestStep:
    """The best step of a full-batch fit on one selection set.

    Attributes
    ----------
    step : int
        -1 when no step was scored (e.g. the fit diverged at once).
    score : float
        Mean R² on the selection set.
    r2 : dict of str → float
        Mean R² on every set at that step.
    r2_outputs : dict of str → list of float
        R² per output on every set.
    state : dict or None
        The model's ``state_dict`` at that step.
    """

    step: int = -1
    score: float = -math.inf
    r2: dict[str, float] = field(default_factory=dict)
    r2_outputs: dict[str, list[float]] = field(default_factory=dict)
    state: dict[str, Tensor] | None = None

    @property
    def found(self) -> bool:
        """True when a step was kept."""
        return self.step >= 0 and self.state is not None


@dataclass
class RegressionHistory:
    """Per-step loss and mean R² of every set of a full-batch fit."""

    loss: list[float] = field(default_factory=list)
    r2: dict[str, list[float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """``{"loss": [...], "r2": {set: [...]}}``."""
        return {"loss": list(self.loss), "r2": {k: list(v) for k, v in self.r2.items()}}


@dataclass
class RegressionFit:
    """What :func:`~rtdecode.nn.train.regression.fit_regression` returns."""

    history: RegressionHistory
    best: dict[str, BestStep]
    steps_run: int
    diverged: bool
    seconds: float


@dataclass
class ClassifierHistory:
    """Per-epoch training loss, validation loss and validation accuracy."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, list[float]]:
        """``{"train_loss", "val_loss", "val_acc"}``, one value per epoch."""
        return {"train_loss": list(self.train_loss), "val_loss": list(self.val_loss),
                "val_acc": list(self.val_acc)}


@dataclass
class ClassifierFit:
    """What :func:`~rtdecode.nn.train.classification.fit_classifier` returns."""

    history: ClassifierHistory
    best_epoch: int
    epochs_run: int
    seconds: float


# -- seed 000's A/B protocol -------------------------------------------------------------------


@dataclass
class AbScore:
    """A model pair scored the seed-000 way: chosen on A tested on B, chosen on B tested on A.

    Attributes
    ----------
    r2_amax_b, r2_bmax_a : list of float
        R² per output.
    amax_b, bmax_a : float
        Their means (NaN outputs ignored), unless the selection reported others.
    """

    r2_amax_b: list[float]
    r2_bmax_a: list[float]
    amax_b: float = math.nan
    bmax_a: float = math.nan

    def __post_init__(self) -> None:
        if math.isnan(self.amax_b):
            self.amax_b = float(np.nanmean(self.r2_amax_b))
        if math.isnan(self.bmax_a):
            self.bmax_a = float(np.nanmean(self.r2_bmax_a))

    @property
    def score(self) -> float:
        """Session score: mean(Amax(B), Bmax(A))."""
        return 0.5 * (self.amax_b + self.bmax_a)

    def to_json(self) -> dict[str, Any]:
        """``score``, ``amax_b``, ``bmax_a`` and ``r2_outputs`` ``{"amax_b": [...], "bmax_a": [...]}``."""
        return {"score": self.score, "amax_b": self.amax_b, "bmax_a": self.bmax_a,
                "r2_outputs": {"amax_b": _floats(self.r2_amax_b), "bmax_a": _floats(self.r2_bmax_a)}}


@dataclass
class ScoredPair:
    """Two models of one kind — chosen on A (``models["a"]``) and on B — and their scores.

    Attributes
    ----------
    kind : str
        Model class name.
    parameters, receptive_field_frames : int
    scores : AbScore
    models : dict of {"a", "b"} → nn.Module
        In physical output units.
    predictions : dict of {"a", "b"} → list of float32 (T, K)
        Per segment, over the whole data.
    of : str or list of str, optional
        What an ensemble / stack was made of.
    members : dict of {"a", "b"} → int, optional
        Ensemble sizes.
    """

    kind: str
    parameters: int
    receptive_field_frames: int
    scores: AbScore
    models: dict[str, nn.Module]
    predictions: dict[str, list[np.ndarray]]
    of: str | list[str] | None = None
    members: dict[str, int] | None = None

    def to_json(self) -> dict[str, Any]:
        """The pair's entry under ``models`` in ``metrics.json``."""
        out: dict[str, Any] = {"kind": self.kind, "parameters": self.parameters,
                               "receptive_field_frames": self.receptive_field_frames, **self.scores.to_json()}
        if self.of is not None:
            out["of"] = self.of
        if self.members is not None:
            out["members"] = dict(self.members)
        return out


@dataclass
class Attempt:
    """One restart of a network: the R² on every set at its best-on-A and best-on-B steps."""

    amax: dict[str, float]
    bmax: dict[str, float]
    steps_run: int
    seconds: float
    diverged: bool
    train_r2_max: float
    train_r2_last: float

    def to_json(self) -> dict[str, Any]:
        """The attempt's entry under ``attempts``."""
        return {"steps_run": self.steps_run, "seconds": round(self.seconds, 2), "diverged": self.diverged,
                "amax": dict(self.amax), "bmax": dict(self.bmax), "train_r2_max": self.train_r2_max,
                "train_r2_last": self.train_r2_last}


@dataclass
class AbNetwork:
    """Restarts of one network under the A/B protocol, with the selected pair.

    Attributes
    ----------
    config : dict
        The built model's constructor arguments.
    chosen : ScoredPair
        The selected Amax / Bmax models (scores from :func:`~rtdecode.nn.protocols.select_ab`).
    amax_attempt, bmax_attempt : int
        Indices of the selected restarts.
    amax_best, bmax_best : BestStep
        Their best steps (without weights).
    attempts : list of Attempt
    curves : dict of {"amax", "bmax"} → RegressionHistory
    ensemble : ScoredPair, optional
        The mean of every restart's model (``protocol.ensemble`` / ``stack_linear``).
    members : dict of {"a", "b"} → list of nn.Module
        The ensemble's members.
    """

    config: dict[str, Any]
    chosen: ScoredPair
    amax_attempt: int
    bmax_attempt: int
    amax_best: BestStep
    bmax_best: BestStep
    attempts: list[Attempt]
    curves: dict[str, RegressionHistory]
    ensemble: ScoredPair | None = None
    members: dict[str, list[nn.Module]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The network's entry under ``models`` (or ``controls.shuffled``)."""
        return {
            **self.chosen.to_json(), "config": self.config,
            "amax": {"attempt": self.amax_attempt, "step": self.amax_best.step,
                     "r2": self.amax_best.r2 or None},
            "bmax": {"attempt": self.bmax_attempt, "step": self.bmax_best.step,
                     "r2": self.bmax_best.r2 or None},
            "attempts": [a.to_json() for a in self.attempts],
            "mean_attempt_amax_b": float(np.mean([a.amax["b"] for a in self.attempts])),
        }


@dataclass
class LinearFit:
    """Seed 000's linear control: ridge Wiener filters chosen on A and on B.

    Attributes
    ----------
    scores : AbScore
    r2_train : float
        Mean R² of the A-chosen filter on the training set.
    ridge : dict of {"a", "b"} → float
    lags, parameters : int
    models : dict of {"a", "b"} → LinearDecoder
        Physical units.
    predictions : list of float32 (T, K)
        Per segment, of the A-chosen filter.
    """

    scores: AbScore
    r2_train: float
    ridge: dict[str, float]
    lags: int
    parameters: int
    models: dict[str, nn.Module]
    predictions: list[np.ndarray]

    @property
    def score(self) -> float:
        """Session score."""
        return self.scores.score

    def to_json(self) -> dict[str, Any]:
        """The entry ``controls.linear``."""
        return {**self.scores.to_json(), "r2_train": self.r2_train, "ridge": dict(self.ridge),
                "lags": self.lags, "parameters": self.parameters}


@dataclass
class AbRun:
    """A whole A/B protocol run (see :func:`~rtdecode.nn.train.ab.run_ab`).

    Attributes
    ----------
    sets : dict of {"train", "a", "b"} → list of int
        Trial ids.
    skip_frames, restarts : int
    networks : dict of str → AbNetwork
        Per configured network.
    extra : dict of str → ScoredPair
        Ensembles (``<name>_ensemble``) and the stack (``<first>_ensemble_linear``).
    linear : LinearFit, optional
    shuffled : AbNetwork, optional
    """

    sets: dict[str, list[int]]
    skip_frames: int
    restarts: int
    networks: dict[str, AbNetwork] = field(default_factory=dict)
    extra: dict[str, ScoredPair] = field(default_factory=dict)
    linear: LinearFit | None = None
    shuffled: AbNetwork | None = None

    def scores_of(self, name: str) -> AbScore:
        """Scores of an exportable model (a network, an ensemble, the stack or ``control_linear``)."""
        if name in self.networks:
            return self.networks[name].chosen.scores
        if name in self.extra:
            return self.extra[name].scores
        if name == "control_linear" and self.linear is not None:
            return self.linear.scores
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """``metrics.json``'s ``results`` for the ``ab`` protocol."""
        models: dict[str, Any] = {}
        for name, net in self.networks.items():
            models[name] = net.to_json()
            ens = f"{name}_ensemble"
            if ens in self.extra:
                models[ens] = self.extra[ens].to_json()
        for name, pair in self.extra.items():
            models.setdefault(name, pair.to_json())
        controls: dict[str, Any] = {}
        if self.linear is not None:
            controls["linear"] = self.linear.to_json()
        if self.shuffled is not None:
            controls["shuffled"] = self.shuffled.to_json()
        return {"protocol": "ab", "sets": self.sets, "skip_frames": self.skip_frames,
                "restarts": self.restarts, "models": models, "controls": controls}

    def heldout(self, name: str, output_names: list[str]) -> dict[str, Any]:
        """The held-out numbers of model ``name`` for its ONNX metadata."""
        s = self.scores_of(name)
        return {
            "protocol": "seed 000 groups of five (3 train / A / B), score = mean(Amax(B), Bmax(A))",
            "r2_score": s.score, "r2_amax_b": s.amax_b, "r2_bmax_a": s.bmax_a,
            "r2_amax_b_outputs": dict(zip(output_names, _floats(s.r2_amax_b), strict=True)),
            "r2_bmax_a_outputs": dict(zip(output_names, _floats(s.r2_bmax_a), strict=True)),
        }


# -- seed 004's leave-one-trial-out protocol ---------------------------------------------------


@dataclass
class Summary:
    """Mean, sample sd and count of per-fold values."""

    mean: float
    sd: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        """Summarise ``values`` (sd 0 for a single value)."""
        v = np.asarray(list(values), dtype=np.float64)
        return cls(float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size))

    def to_json(self) -> dict[str, float]:
        """``{"mean", "sd", "n"}``."""
        return {"mean": self.mean, "sd": self.sd, "n": self.n}


@dataclass
class FoldScore:
    """One network on one leave-one-trial-out fold."""

    test: int
    val: list[int]
    train_frames: int
    accuracy: float
    best_epoch: int
    epochs_run: int
    fit_seconds: float
    smoothed: dict[str, float]
    predict_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The fold's entry under ``models.<name>.folds``."""
        return {"test": self.test, "val": list(self.val), "train_frames": self.train_frames,
                "accuracy": self.accuracy, "best_epoch": self.best_epoch, "epochs_run": self.epochs_run,
                "fit_seconds": round(self.fit_seconds, 1), "smoothed": dict(self.smoothed),
                "predict_seconds": round(self.predict_seconds, 2)}


@dataclass
class LotoModel:
    """One network over every fold: per-fold scores and the summed confusion matrix."""

    kind: str
    n_classes: int
    folds: list[FoldScore] = field(default_factory=list)
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    parameters: int | None = None

    def __post_init__(self) -> None:
        if self.confusion.size == 0:
            self.confusion = np.zeros((self.n_classes, self.n_classes), dtype=np.int64)

    @property
    def accuracy(self) -> Summary:
        """Per-sample accuracy over the folds."""
        return Summary.of([f.accuracy for f in self.folds])

    def smoothed(self, window: str) -> Summary:
        """Accuracy after one smoothing window over the folds."""
        return Summary.of([f.smoothed[window] for f in self.folds])

    def fold(self, test: int) -> FoldScore:
        """The fold whose test trial is ``test``."""
        return next(f for f in self.folds if f.test == test)

    def to_json(self) -> dict[str, Any]:
        """The network's entry under ``models``."""
        windows = list(self.folds[0].smoothed) if self.folds else []
        return {"kind": self.kind, "parameters": self.parameters, "accuracy": self.accuracy.to_json(),
                "smoothed": {k: self.smoothed(k).to_json() for k in windows},
                "folds": [f.to_json() for f in self.folds], "confusion": self.confusion.tolist()}


@dataclass
class LdaResult:
    """The LDA baseline on the same folds."""

    window_s: float
    threshold: float
    stride: int
    n_classes: int
    folds: list[dict[str, Any]] = field(default_factory=list)
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    features: str = "MAV, WL, ZC, SSC per channel"

    def __post_init__(self) -> None:
        if self.confusion.size == 0:
            self.confusion = np.zeros((self.n_classes, self.n_classes), dtype=np.int64)

    @property
    def accuracy(self) -> Summary:
        """Per-sample accuracy over the folds."""
        return Summary.of([f["accuracy"] for f in self.folds])

    def smoothed(self, window: str) -> Summary:
        """Accuracy after one smoothing window over the folds."""
        return Summary.of([f["smoothed"][window] for f in self.folds])

    def fold(self, test: int) -> dict[str, Any]:
        """The fold whose test trial is ``test``."""
        return next(f for f in self.folds if f["test"] == test)

    def to_json(self) -> dict[str, Any]:
        """The entry ``baselines.lda``."""
        windows = list(self.folds[0]["smoothed"]) if self.folds else []
        return {"folds": list(self.folds), "confusion": self.confusion.tolist(), "window_s": self.window_s,
                "threshold": self.threshold, "stride": self.stride, "features": self.features,
                "accuracy": self.accuracy.to_json(),
                "smoothed": {k: self.smoothed(k).to_json() for k in windows}}


@dataclass
class LotoRun:
    """A whole leave-one-trial-out run (see :func:`~rtdecode.nn.train.loto.run_loto`).

    Attributes
    ----------
    folds : list of dict
        ``{"test", "val", "train"}`` trial ids per fold.
    classes : list of str
    frame_rate_hz : float
    windows : dict of str → (frames, method)
        The causal smoothing windows scored.
    models : dict of str → LotoModel
    lda : LdaResult, optional
    export_fold : int
        Test trial of the fold whose models are kept.
    """

    folds: list[dict[str, Any]]
    classes: list[str]
    frame_rate_hz: float
    windows: dict[str, tuple[int, str]]
    max_train_frames: int | None
    max_val_frames: int | None
    export_fold: int
    models: dict[str, LotoModel] = field(default_factory=dict)
    lda: LdaResult | None = None

    def to_json(self) -> dict[str, Any]:
        """``metrics.json``'s ``results`` for the ``loto`` protocol."""
        return {
            "protocol": "loto", "folds": self.folds, "classes": self.classes,
            "frame_rate_hz": self.frame_rate_hz,
            "smoothing_windows": {k: {"frames": w, "method": m, "delay_frames": (w - 1) / 2}
                                  for k, (w, m) in self.windows.items()},
            "max_train_frames": self.max_train_frames, "max_val_frames": self.max_val_frames,
            "models": {n: m.to_json() for n, m in self.models.items()},
            "baselines": {"lda": self.lda.to_json()} if self.lda is not None else {},
            "export_fold": self.export_fold,
        }

    def heldout(self, name: str, output_names: list[str]) -> dict[str, Any]:
        """The held-out numbers of ``name`` (a network or ``lda``; its export fold) for the ONNX metadata."""
        m: LotoModel | LdaResult
        if name == "lda" and self.lda is not None:
            m = self.lda
            f = m.fold(self.export_fold)
            test, acc, smoothed = int(f["test"]), float(f["accuracy"]), dict(f["smoothed"])
        else:
            m = self.models[name]
            fs = m.fold(self.export_fold)
            test, acc, smoothed = fs.test, fs.accuracy, dict(fs.smoothed)
        return {
            "protocol": "seed 004 leave one trial out",
            "loto_accuracy_mean": m.accuracy.mean, "loto_accuracy_sd": m.accuracy.sd,
            "loto_folds": m.accuracy.n, "heldout_trial": test, "heldout_accuracy": acc,
            "heldout_accuracy_smoothed": smoothed,
            "loto_accuracy_smoothed_mean": {k: m.smoothed(k).mean for k in smoothed},
        }


# -- what a run hands to export and plots -----------------------------------------------------


@dataclass
class RunResult:
    """What a protocol run produced.

    Attributes
    ----------
    run : AbRun or LotoRun
        Every score, typed; ``metrics`` is its JSON form.
    models : dict of str → nn.Module or StreamingDecoder
        The selected model of each exportable name (physical output units): a torch network,
        or a numpy decoder (the LDA) exported by :mod:`rtdecode.export.classic_onnx`.
    data : TrainingData
        The data as trained on (with any fitted standardize stage in ``preprocessing``).
    curves : dict of str → dict of str → dict
        Training curves as plain series (the histories' ``to_json()``). Regression: per
        network ``{"amax", "bmax"}`` → :class:`RegressionHistory`; classification: per
        network, per test trial (as str) → :class:`ClassifierHistory`.
    segment_predictions : dict of str → list of float32 (T, K)
        Regression: per model, per segment, of the A-chosen model.
    set_masks : dict of str → list of bool (T,)
        Regression: per set, per segment, the frames scored.
    chains : dict of str → list of dict
        The preprocessing of models whose chain differs from ``data.preprocessing`` (the
        LDA: the chain's filter stages only).
    """

    run: AbRun | LotoRun
    models: dict[str, nn.Module | StreamingDecoder]
    data: TrainingData
    curves: dict[str, dict[str, Any]] = field(default_factory=dict)
    segment_predictions: dict[str, list[np.ndarray]] = field(default_factory=dict)
    set_masks: dict[str, list[np.ndarray]] = field(default_factory=dict)
    chains: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, Any]:
        """The run's JSON results (``metrics.json``'s ``results``)."""
        return self.run.to_json()

    def heldout(self, name: str) -> dict[str, Any]:
        """Held-out numbers of the exportable model ``name`` (rounded, for the ONNX metadata)."""
        return _round(self.run.heldout(name, self.data.output_names))


def _round(value: Any, nd: int = 4) -> Any:
    if isinstance(value, float):
        return round(value, nd)
    if isinstance(value, dict):
        return {k: _round(v, nd) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v, nd) for v in value]
    return value
