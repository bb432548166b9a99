"""rtdecode: real-time closed-loop decoding of neural and HD-sEMG signals.

LSL inlet → causal preprocessing → ONNX Runtime decoders → (Kalman fusion) → ZeroMQ PUB.
"""

__version__ = "0.1.0"
