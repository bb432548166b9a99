"""Recording files (.xdf .mat .npz .csv, dataset folders) → one :class:`Recording` type."""

from rtdecode.io.datasets import read_monkey_reach
from rtdecode.io.readers import read_recording
from rtdecode.io.recording import Recording
from rtdecode.io.writers import write_csv, write_npz

__all__ = ["Recording", "read_recording", "read_monkey_reach", "write_npz", "write_csv"]
