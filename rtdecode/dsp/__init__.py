"""Causal, stateful preprocessing stages built from JSON-able specs.

>>> from rtdecode.dsp import build_chain
>>> chain = build_chain([{"kind": "rectify"}, {"kind": "decimate", "factor": 2}], 1000.0, 4)
>>> y, t_out = chain.process(x, t)  # doctest: +SKIP
"""

from rtdecode.dsp.base import Stage
from rtdecode.dsp.chain import Chain, build_chain, build_stage, chains_equal
from rtdecode.dsp.registry import StageSpec, parse_chain

__all__ = [
    "Chain",
    "Stage",
    "StageSpec",
    "build_chain",
    "build_stage",
    "chains_equal",
    "parse_chain",
]
