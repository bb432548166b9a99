"""Network fits that run in worker processes — the folds of leave-one-trial-out, the restarts
of the A/B protocol — one fit per process where there are cores.

A job carries a freshly built network (its spec, initial weights and torch's RNG state right
after it was built) and how to fit it, so a fit gives the same weights in a worker as in the
main process: the protocol builds every network in the main process, in its own order and
seeds, and only the fitting moves. ``workers = 1`` fits in the main process, one job after
another.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from rtdecode.nn.models import model_from_spec, model_to_spec
from rtdecode.nn.train.classification import fit_classifier
from rtdecode.nn.train.config import OptimConfig
from rtdecode.nn.train.results import ClassifierFit

logger = logging.getLogger(__name__)

__all__ = ["FitJob", "Runner", "classifier_run", "fit_job", "run_jobs", "worker_count"]


#: Fits a rebuilt network: ``run(model, progress)`` → the fit (a picklable callable, e.g. a
#: ``functools.partial`` of a module-level function).
Runner = Callable[[nn.Module, bool], Any]


@dataclass
class FitJob:
    """One network fit.

    Attributes
    ----------
    spec, state : the network's architecture spec and initial weights.
    rng_state : torch's RNG state after the network was built (dropout draws continue from it).
    run : how to fit it (:data:`Runner`).
    progress : show a progress bar (main process only).
    """

    spec: dict[str, Any]
    state: dict[str, torch.Tensor]
    rng_state: torch.Tensor
    run: Runner
    progress: bool = False

    @classmethod
    def of(cls, model: nn.Module, run: Runner, progress: bool) -> FitJob:
        """The job of a network just built (call right after building it: the RNG state is taken now)."""
        return cls(spec=model_to_spec(model), state={k: v.clone() for k, v in model.state_dict().items()},
                   rng_state=torch.get_rng_state(), run=run, progress=progress)


def fit_job(job: FitJob) -> tuple[nn.Module, Any]:
    """Rebuild the network, restore the RNG and fit it; returns the fitted network and the fit."""
    model = model_from_spec(job.spec)
    model.load_state_dict(job.state)
    torch.set_rng_state(job.rng_state)
    return model, job.run(model, job.progress)


def classifier_run(model: nn.Module, progress: bool, *, split: tuple[np.ndarray, ...], optim: OptimConfig,
                   seed: int, desc: str) -> ClassifierFit:
    """:data:`Runner` of a frame classifier: minibatch Adam, early-stopped on the validation frames.

    ``split``: training frames float (N, C), labels int (N,), validation frames and labels.
    """
    o = optim
    return fit_classifier(model, *split, epochs=o.epochs, batch_size=o.batch_size, lr=o.lr,
                          patience=o.patience_epochs, weight_decay=o.weight_decay,
                          rng=np.random.default_rng(seed), progress=progress, desc=desc)


def worker_count(requested: int, threads: int, jobs: int) -> int:
    """Worker processes for ``jobs`` fits: ``requested``, or with 0 one per ``threads`` CPU cores."""
    n = requested if requested > 0 else (os.cpu_count() or 1) // max(threads, 1)
    return max(1, min(n, jobs))


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def run_jobs(jobs: Iterable[FitJob], workers: int, threads: int) -> Iterator[tuple[nn.Module, Any]]:
    """Fit every job; results in job order. ``workers`` > 1: that many spawned processes.

    ``jobs`` is consumed lazily: one job at a time in the main process, at most ``workers``
    ahead of the caller with workers — so a generator of jobs (each carrying its own training
    split) keeps only the splits being fitted in memory.
    """
    if workers <= 1:
        yield from map(fit_job, jobs)
        return
    logger.info("fitting networks in %d worker processes (%d torch thread(s) each)", workers, threads)
    ctx = multiprocessing.get_context("spawn")  # never fork a process holding torch's thread pool
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(threads,)) as ex:
        pending: deque[Future[tuple[nn.Module, Any]]] = deque()
        for job in jobs:
            job.progress = False  # bars from several processes would interleave
            pending.append(ex.submit(fit_job, job))
            if len(pending) >= workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
