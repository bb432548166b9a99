"""Intracortical BCI front end: raw broadband data → threshold crossings and spike-band power.

- :mod:`rtdecode.ibci.frontend` — the front end as a chain spec (``car`` → spike-band ``butter``
  → ``crossings_sbp``), the stages themselves live in :mod:`rtdecode.dsp`;
- :mod:`rtdecode.ibci.thresholds` — per-channel noise RMS over a calibration period, and the
  recalibration of a model file's thresholds (``rtdecode thresholds``);
- :mod:`rtdecode.ibci.fit` — frames and targets from recordings in blocks, and a Kalman or
  Wiener decoder on them written as a model file.

See docs/ibci.md.
"""
