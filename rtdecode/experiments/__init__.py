"""Paper experiments (run with ``rtdecode experiment ...``).

* :mod:`rtdecode.experiments.fusion_sim` — seed 002's simulation: Kalman / ANN fusion of a
  Kalman, a Wiener and a population-vector decoder on simulated motor cortex.
* :mod:`rtdecode.experiments.fusion_monkey` — the same fusion on real monkey M1/PMd spikes.

Library code: results are returned and written as JSON (and PNG figures); nothing is printed.
"""
