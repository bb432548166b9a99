"""Decision fusion of several decoders' outputs (seed 002).

* :class:`KalmanFusion` — Kalman filter whose state is the intended kinematics and whose
  measurement stacks the decoders' outputs; offline :meth:`~KalmanFusion.filter` and a live,
  asynchronous API (:meth:`~KalmanFusion.update` at each output's source time,
  :meth:`~KalmanFusion.estimate` each tick) with out-of-sequence re-filtering, adaptive
  per-decoder noise and exclusion of stale / non-finite / failing decoders.
* :class:`FusionModel` / :func:`fit_fusion_model` — the least-squares fitted model (JSON).
* :class:`ANNFusion` — one-hidden-layer tanh network, exportable to ONNX.
"""

from rtdecode.fusion.ann import ANNFusion
from rtdecode.fusion.kalman import FusionEstimate, KalmanFusion
from rtdecode.fusion.model import FusionModel, fit_fusion_model, stack_outputs

__all__ = ["ANNFusion", "FusionEstimate", "FusionModel", "KalmanFusion", "fit_fusion_model", "stack_outputs"]
