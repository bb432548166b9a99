"""Pull numeric LSL chunks into preallocated arrays through liblsl's C API, arguments built once.

``pylsl.StreamInlet.pull_chunk(..., dest_obj=..., min_samples=1)`` makes the same two liblsl
calls as :class:`ChunkPuller` — wait for one sample, then take whatever else has arrived
without waiting — but builds its ctypes arguments, a timestamp array, a memoryview and the
returned views on every call: 18-26 µs a pull at 16 channels and 35-41 µs at 1,024 channels
on the development VM, against 7 and 17 µs here (a pull per 1 ms tick; bench notes in
docs/performance.md). The functions are liblsl's ``lsl_pull_chunk_*`` from the library pylsl
loaded, declared here with their C signature; errors are raised by pylsl's own
``handle_error`` (``LostError``, ``InternalError`` …), as ``pull_chunk`` raises them.
"""

from __future__ import annotations

import ctypes
import logging

import numpy as np

from rtdecode.errors import SourceError
from rtdecode.lsl import NUMERIC_DTYPES, pylsl  # sets LSLAPICFG before pylsl loads liblsl

logger = logging.getLogger(__name__)

__all__ = ["ChunkPuller"]

#: liblsl's pull function for each numeric channel format
_FUNCTIONS = {pylsl.cf_float32: "lsl_pull_chunk_f", pylsl.cf_double64: "lsl_pull_chunk_d",
              pylsl.cf_int32: "lsl_pull_chunk_i", pylsl.cf_int16: "lsl_pull_chunk_s",
              pylsl.cf_int8: "lsl_pull_chunk_c", pylsl.cf_int64: "lsl_pull_chunk_l"}
#: ``unsigned long lsl_pull_chunk_X(lsl_inlet, T *data, double *stamps, unsigned long data_elements,
#: unsigned long stamp_elements, double timeout, int32_t *ec)`` (the GIL is released during the call)
_PROTOTYPE = ctypes.CFUNCTYPE(ctypes.c_ulong, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                              ctypes.c_ulong, ctypes.c_ulong, ctypes.c_double,
                              ctypes.POINTER(ctypes.c_int32))


class ChunkPuller:
    """Pulls of one stream's samples into rows of ``data``, with their LSL times.

    Parameters
    ----------
    channel_format : int
        The stream's pylsl channel format (numeric).
    data : (rows, channels) array of that format's dtype, C-contiguous
        Where samples land; a pull fills its first rows.
    """

    def __init__(self, channel_format: int, data: np.ndarray) -> None:
        if channel_format not in _FUNCTIONS:
            raise SourceError(f"LSL channel format {channel_format} is not numeric",
                              "stream numbers (float32, double64 or integers)")
        if data.dtype != NUMERIC_DTYPES[channel_format] or data.ndim != 2 or not data.flags.c_contiguous:
            raise ValueError(f"pull buffer {data.dtype} {data.shape} does not fit format {channel_format}")
        self._pull = _PROTOTYPE((_FUNCTIONS[channel_format], pylsl.lib.lib))
        self.data = data
        self.stamps = np.zeros(data.shape[0], dtype=np.float64)
        self._channels = data.shape[1]
        self._row_bytes = data.strides[0]
        self._data_at = data.ctypes.data
        self._stamps_at = self.stamps.ctypes.data
        self._err = ctypes.c_int32(0)
        self._err_at = ctypes.pointer(self._err)

    def pull(self, inlet: pylsl.StreamInlet, timeout_s: float, cap: int) -> np.ndarray:
        """Wait up to ``timeout_s`` for one sample, then take what else is there, at most ``cap``
        samples in all (1 <= cap <= rows); returns their LSL times, a float64 (n,) view of
        :attr:`stamps` (n = 0 after a timeout), the samples being ``data[:n]``.

        Raises
        ------
        pylsl.util.LostError, pylsl.util.InternalError, RuntimeError
            As ``pylsl.StreamInlet.pull_chunk`` does.
        """
        n = self._call(inlet, self._data_at, self._stamps_at, 1, timeout_s)
        if n == 0 or cap == 1:
            return self.stamps[:n]
        more = self._call(inlet, self._data_at + self._row_bytes, self._stamps_at + 8, cap - 1, 0.0)
        return self.stamps[: 1 + more]

    def _call(self, inlet: pylsl.StreamInlet, data_at: int, stamps_at: int, rows: int,
              timeout_s: float) -> int:
        """One ``lsl_pull_chunk_*`` of at most ``rows`` samples; returns the samples pulled."""
        self._err.value = 0
        values = self._pull(inlet.obj, data_at, stamps_at, rows * self._channels, rows, timeout_s,
                            self._err_at)
        if self._err.value:
            pylsl.util.handle_error(self._err.value)
        return int(values) // self._channels
