"""Classic decoders fitted with numpy, each streaming (``step``) and exportable to ONNX.

* :class:`KalmanDecoder` — kinematics as the state, spike counts as observations
  (steady-state gain for streaming / ONNX).
* :class:`PopulationVectorDecoder` — cosine tuning per unit, population vector scaled by a
  fitted linear map.
* :class:`WienerDecoder` — optimal linear filter over lagged inputs.

The multi-lag linear fit itself lives in :mod:`rtdecode.decoders.linear`; the least-squares
state-space fit and the Kalman steps shared with :mod:`rtdecode.fusion` in
:mod:`rtdecode.decoders.statespace`.
"""

from rtdecode.decoders.base import StreamingDecoder, segment_slices
from rtdecode.decoders.fir import CausalLinearDecoder
from rtdecode.decoders.kalman import KalmanDecoder
from rtdecode.decoders.population import PopulationVectorDecoder, fit_cosine_tuning
from rtdecode.decoders.statespace import LinearGaussianModel, fit_linear_gaussian, steady_state_gain
from rtdecode.decoders.wiener import WienerDecoder

__all__ = [
    "CausalLinearDecoder",
    "KalmanDecoder",
    "LinearGaussianModel",
    "PopulationVectorDecoder",
    "StreamingDecoder",
    "WienerDecoder",
    "fit_cosine_tuning",
    "fit_linear_gaussian",
    "segment_slices",
    "steady_state_gain",
]
