"""``run_jobs`` takes its jobs lazily: a generator of jobs (each holding its own training split)
is asked for the next job only when the fit before it is done (one process) or when fewer
than ``workers`` fits are in flight — so a leave-one-trial-out run holds one fold's frames at a
time, not every fold's. Real tiny networks, real fits, real spawned workers."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rtdecode.nn.models import FrameMLP  # noqa: E402
from rtdecode.nn.train.config import OptimConfig  # noqa: E402
from rtdecode.nn.train.workers import FitJob, classifier_run, run_jobs  # noqa: E402


def _jobs(n: int, made: list[int]) -> Iterator[FitJob]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    optim = OptimConfig(epochs=2, batch_size=16)
    for i in range(n):
        torch.manual_seed(i)
        run = partial(classifier_run, split=(x, y, x[:16], y[:16]), optim=optim, seed=i, desc=f"job {i}")
        made.append(i)
        yield FitJob.of(FrameMLP(3, 2, hidden=(4,)), run, False)


def test_one_process_builds_each_job_after_the_previous_fit() -> None:
    made: list[int] = []
    for k, (model, fit) in enumerate(run_jobs(_jobs(3, made), workers=1, threads=1)):
        assert made == list(range(k + 1))  # nothing built ahead of the fit being returned
        assert isinstance(model, FrameMLP) and fit.epochs_run >= 1


def test_workers_take_at_most_their_number_of_jobs_ahead() -> None:
    made: list[int] = []
    seen = []
    for k, (_model, fit) in enumerate(run_jobs(_jobs(4, made), workers=2, threads=1)):
        assert len(made) <= k + 2  # the one returned and at most one more in flight
        seen.append(fit.epochs_run)
    assert made == [0, 1, 2, 3] and len(seen) == 4
