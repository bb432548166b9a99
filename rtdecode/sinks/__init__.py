"""Output side of rtdecode: the wire protocol, the ZeroMQ publisher and a reference subscriber.

See ``docs/protocol.md`` for the frame layout and a C struct for non-Python controllers.
"""

from rtdecode.sinks.client import Subscriber, TopicStats
from rtdecode.sinks.protocol import (
    HEADER_FORMAT,
    HEADER_SIZE,
    KIND_ESTIMATE,
    KIND_STATUS,
    MAGIC,
    MAX_TOPIC_BYTES,
    STATUS_TOPIC,
    VERSION,
    EstimateEncoder,
    Message,
    decode,
    encode_estimate,
    encode_status,
    encode_topic,
    flag_names,
)
from rtdecode.sinks.zmq_pub import Publisher, check_endpoint, is_loopback_endpoint

__all__ = [
    "HEADER_FORMAT",
    "HEADER_SIZE",
    "KIND_ESTIMATE",
    "KIND_STATUS",
    "MAGIC",
    "MAX_TOPIC_BYTES",
    "STATUS_TOPIC",
    "VERSION",
    "EstimateEncoder",
    "Message",
    "Publisher",
    "Subscriber",
    "TopicStats",
    "check_endpoint",
    "decode",
    "encode_estimate",
    "encode_status",
    "encode_topic",
    "flag_names",
    "is_loopback_endpoint",
]
