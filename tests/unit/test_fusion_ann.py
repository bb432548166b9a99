"""ANN fusion: trains (L-BFGS, weight decay, early stopping), beats a linear map on a
non-linear mixture, and its stateless ONNX export equals the numpy network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from rtdecode.errors import DataError, ModelError
from rtdecode.export.onnx_graphs import write_model
from rtdecode.fusion import ANNFusion
from rtdecode.runtime.streaming import StreamingModel


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((2500, 6)) * [1, 2, 0.5, 1, 3, 1] + [0, 1, 0, -2, 0, 5]
    Y = np.column_stack([np.tanh(Z[:, 0] + 0.5 * Z[:, 1]), 0.3 * Z[:, 2] - Z[:, 3] * 0.2])
    return Z, 10.0 * Y + 0.05 * rng.standard_normal(Y.shape)


@pytest.fixture(scope="module")
def ann(data: tuple) -> ANNFusion:
    Z, Y = data
    return ANNFusion(8, restarts=2, seed=1).fit(Z[:2000], Y[:2000])


def test_ann_learns_a_nonlinear_fusion(ann: ANNFusion, data: tuple) -> None:
    Z, Y = data
    mse_ann = np.mean((ann.predict(Z[2000:]) - Y[2000:]) ** 2)
    Z1 = np.column_stack([Z[:2000], np.ones(2000)])
    coef = np.linalg.lstsq(Z1, Y[:2000], rcond=None)[0]
    mse_lin = np.mean((np.column_stack([Z[2000:], np.ones(500)]) @ coef - Y[2000:]) ** 2)
    assert mse_ann < 0.3 * mse_lin
    assert ann.history["hidden"] == 8 and len(ann.history["runs"]) == 2
    assert all(r["iterations"] <= ann.max_iter for r in ann.history["runs"])


def test_onnx_export_equals_numpy_and_streams(ann: ANNFusion, data: tuple, tmp_path: Path) -> None:
    Z = data[0][2000:]
    blob = ann.to_onnx(name="ann_fusion", rate_hz=20.0, input_names=[f"d{i}" for i in range(6)],
                       output_names=["vx", "vy"], output_units=["cm/s", "cm/s"])
    path = write_model(blob, tmp_path / "ann.onnx")
    proto = onnx.load(str(path))
    assert {n.op_type for n in proto.graph.node} == {"Conv", "Tanh"}
    model = StreamingModel(path).open()
    assert model.meta.states == [] and model.meta.receptive_field == 1
    assert model.meta.provenance["fusion"] == "ann"
    ref = ann.predict(Z)
    chunks = ((0, 1), (1, 1), (1, 77), (77, 500))
    out = np.concatenate([model.step(Z[a:b].astype(np.float32)) for a, b in chunks])
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * float(np.abs(ref).max()))


def test_ann_errors() -> None:
    with pytest.raises(ModelError, match="not fitted"):
        ANNFusion().predict(np.zeros((2, 3)))
    with pytest.raises(DataError, match="one row per frame"):
        ANNFusion().fit(np.zeros((10, 3)), np.zeros((9, 2)))
