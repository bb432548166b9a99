"""CURVE encryption and client authentication over real ZeroMQ sockets on tcp://127.0.0.1.

Authorized clients receive; unauthorized ones (unknown key, wrong server key, no CURVE)
receive nothing within a timeout and learn why from the handshake events. Keys come from
``rtdecode keygen``; the status never carries key material. Every receive has a timeout.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from rtdecode.cli import main
from rtdecode.config import load_config
from rtdecode.errors import ConfigError, SinkError
from rtdecode.lsl import pylsl
from rtdecode.sinks.client import Subscriber
from rtdecode.sinks.curve import create_keypair
from rtdecode.sinks.protocol import STATUS_TOPIC, decode, encode_estimate, encode_status
from rtdecode.sinks.zmq_pub import Publisher

pytestmark = pytest.mark.skipif(not zmq.has("curve"), reason="libzmq without CURVE")

JOIN_TIMEOUT_S = 5.0
DENY_WINDOW_S = 1.5
MODEL = Path(__file__).resolve().parents[2] / "models" / "cortex_wiener.onnx"


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    """Server pair, an authorized client pair (in clients/) and an unknown client pair."""
    create_keypair(tmp_path / "server", "server")
    create_keypair(tmp_path / "client", "ctrl")
    create_keypair(tmp_path / "intruder", "intruder")
    clients = tmp_path / "clients"
    clients.mkdir()
    (clients / "ctrl.key").write_bytes((tmp_path / "client" / "ctrl.key").read_bytes())
    return {
        "server_secret": tmp_path / "server" / "server.key_secret",
        "server_public": tmp_path / "server" / "server.key",
        "clients": clients,
        "client_secret": tmp_path / "client" / "ctrl.key_secret",
        "intruder_secret": tmp_path / "intruder" / "intruder.key_secret",
        "intruder_public": tmp_path / "intruder" / "intruder.key",
    }


def _frame(seq: int) -> bytes:
    t = pylsl.local_clock()
    return encode_estimate("cortex", seq, 0, t, t, np.array([seq, 1.0], dtype=np.float32))


def _receives(pub: Publisher, sub: Subscriber, window_s: float) -> int:
    """Publish for up to ``window_s``; return how many messages ``sub`` got (stops at 1)."""
    deadline = time.monotonic() + window_s
    seq = 0
    while time.monotonic() < deadline:
        pub.send(_frame(seq))
        seq += 1
        if sub.recv(timeout_s=0.02) is not None:
            return 1
    return 0


def _curve_pub(keys: dict[str, Path], **kwargs: object) -> Publisher:
    opts: dict = {"curve_secret_key": keys["server_secret"], "curve_clients": keys["clients"]}
    opts.update(kwargs)
    return Publisher("tcp://127.0.0.1:*", **opts)


def test_keygen_writes_certificates_with_private_secret(tmp_path: Path, capsys) -> None:
    out = tmp_path / "k"
    assert main(["keygen", str(out), "--name", "ctl"]) == 0
    public, secret = out / "ctl.key", out / "ctl.key_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    pub_key, sec_key = zmq.auth.load_certificate(secret)
    assert sec_key is not None and len(sec_key) == 40
    assert zmq.auth.load_certificate(public) == (pub_key, None)
    assert sec_key.decode() not in capsys.readouterr().out  # never printed
    assert not [p for p in out.iterdir() if p.name.startswith(".keygen")]  # temp dir gone
    # never overwrites a key by accident
    assert main(["keygen", str(out), "--name", "ctl"]) == 5
    assert zmq.auth.load_certificate(secret)[1] == sec_key
    assert main(["keygen", str(out), "--name", "../x"]) == 5


def test_authorized_client_receives(keys: dict[str, Path]) -> None:
    with (
        _curve_pub(keys) as pub,
        Subscriber(
            pub.bound_endpoint,
            topics=["cortex"],
            curve_server_key=keys["server_public"],
            curve_secret_key=keys["client_secret"],
        ) as sub,
    ):
        assert _receives(pub, sub, JOIN_TIMEOUT_S) == 1
        assert sub.handshake_failures == 0 and sub.check_handshake() is None
        st = pub.status()
        assert st["curve"] == "clients" and st["auth_accepted"] >= 1 and st["auth_denied"] == 0


@pytest.mark.parametrize("who", ["unknown_key", "wrong_server_key", "no_curve", "any_key"])
def test_unauthorized_client_receives_nothing(keys: dict[str, Path], who: str) -> None:
    kwargs: dict = {}
    if who == "unknown_key":
        kwargs = {"curve_server_key": keys["server_public"],
                  "curve_secret_key": keys["intruder_secret"]}
    elif who == "wrong_server_key":
        kwargs = {"curve_server_key": keys["intruder_public"],
                  "curve_secret_key": keys["client_secret"]}
    elif who == "any_key":  # throw-away key pair: only curve_allow_any accepts it
        kwargs = {"curve_server_key": keys["server_public"]}
    with _curve_pub(keys) as pub, Subscriber(pub.bound_endpoint, **kwargs) as sub:
        assert _receives(pub, sub, DENY_WINDOW_S) == 0
        # the refused client is told why (socket-monitor handshake events)
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        while sub.check_handshake() is None:
            assert time.monotonic() < deadline, "no handshake failure reported"
            time.sleep(0.02)
        assert sub.handshake_failures >= 1
        expected = {"unknown_key": "refused this client", "any_key": "refused this client",
                    "wrong_server_key": "server public key", "no_curve": "mechanism mismatch"}
        assert expected[who] in (sub.handshake_error or "")
        if who in ("unknown_key", "any_key"):
            assert pub.status()["auth_denied"] >= 1
            assert pub.status()["auth_accepted"] == 0


def test_allow_any_mode_accepts_any_client_with_server_key(keys: dict[str, Path]) -> None:
    with (
        Publisher("tcp://127.0.0.1:*", curve_secret_key=keys["server_secret"],
                  curve_allow_any=True) as pub,
        Subscriber(pub.bound_endpoint, curve_server_key=keys["server_public"]) as sub,
        Subscriber(pub.bound_endpoint) as plain,
    ):
        assert pub.status()["curve"] == "any"
        assert _receives(pub, sub, JOIN_TIMEOUT_S) == 1
        assert _receives(pub, plain, DENY_WINDOW_S) == 0  # still encrypted: no plain text


def test_two_curve_publishers_in_one_process(keys: dict[str, Path]) -> None:
    """Each CURVE publisher has its own context and ZAP handler (one per context)."""
    with _curve_pub(keys) as a, _curve_pub(keys) as b:
        for pub in (a, b):
            with Subscriber(pub.bound_endpoint, curve_server_key=keys["server_public"],
                            curve_secret_key=keys["client_secret"]) as sub:
                assert _receives(pub, sub, JOIN_TIMEOUT_S) == 1
    a.close()  # idempotent after the context ended


def test_status_exposes_no_secret(keys: dict[str, Path]) -> None:
    secret_text = keys["server_secret"].read_text()
    _, secret_key = zmq.auth.load_certificate(keys["server_secret"])
    assert secret_key is not None
    with (
        _curve_pub(keys) as pub,
        Subscriber(pub.bound_endpoint, topics=[STATUS_TOPIC],
                   curve_server_key=keys["server_public"],
                   curve_secret_key=keys["client_secret"]) as sub,
    ):
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        msg = None
        seq = 0
        while msg is None:
            assert time.monotonic() < deadline
            frame = encode_status(STATUS_TOPIC, seq, pylsl.local_clock(), {"sink": pub.status()})
            pub.send(frame)
            seq += 1
            msg = sub.recv(timeout_s=0.02)
        payload = json.dumps(msg.status)
        assert msg.status["sink"]["curve"] == "clients"
        for needle in (secret_key.decode(), str(keys["server_secret"]), str(keys["clients"])):
            assert needle not in payload
        for line in secret_text.splitlines():
            if "secret-key" in line:
                assert line.strip() not in payload
        assert secret_key.decode() not in repr(pub)
    assert decode(frame).status == msg.status


# ---------------------------------------------------------------- config validation


def _cfg(sink: dict) -> dict:
    return {"source": {"name": "rig"}, "decoders": [{"name": "a", "model": str(MODEL)}],
            "sink": sink}


def test_config_accepts_curve_setup(keys: dict[str, Path]) -> None:
    cfg = load_config(data=_cfg({"endpoint": "tcp://0.0.0.0:5555", "allow_remote": True,
                                 "curve_secret_key": str(keys["server_secret"]),
                                 "curve_clients": str(keys["clients"])}), environ={})
    pub = Publisher.from_config(cfg.sink)
    assert pub.curve_mode == "clients" and pub.allow_remote


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("missing_secret", "sink.curve_secret_key"),
        ("public_as_secret", "sink.curve_secret_key"),
        ("garbage_secret", "sink.curve_secret_key"),
        ("secret_is_dir", "sink.curve_secret_key"),
        ("missing_clients", "sink.curve_clients"),
        ("empty_clients", "sink.curve_clients"),
        ("garbage_client_cert", "sink.curve_clients"),
        ("no_client_mode", "sink.curve_allow_any"),
        ("both_modes", "sink.curve_allow_any"),
        ("clients_without_secret", "sink.curve_secret_key"),
    ],
)
def test_config_rejects_bad_curve_setup(
    keys: dict[str, Path], tmp_path: Path, case: str, field: str
) -> None:
    sink: dict = {"curve_secret_key": str(keys["server_secret"]), "curve_clients": str(keys["clients"])}
    if case == "missing_secret":
        sink["curve_secret_key"] = str(tmp_path / "nope.key_secret")
    elif case == "public_as_secret":
        sink["curve_secret_key"] = str(keys["server_public"])
    elif case == "garbage_secret":
        bad = tmp_path / "bad.key_secret"
        bad.write_text('curve\n    public-key = "short"\n    secret-key = "x"\n')
        sink["curve_secret_key"] = str(bad)
    elif case == "secret_is_dir":
        sink["curve_secret_key"] = str(tmp_path)
    elif case == "missing_clients":
        sink["curve_clients"] = str(tmp_path / "no-such-dir")
    elif case == "empty_clients":
        empty = tmp_path / "empty"
        empty.mkdir()
        sink["curve_clients"] = str(empty)
    elif case == "garbage_client_cert":
        (keys["clients"] / "junk.key").write_bytes(b"\xff\xfe not a cert")
    elif case == "no_client_mode":
        del sink["curve_clients"]
    elif case == "both_modes":
        sink["curve_allow_any"] = True
    elif case == "clients_without_secret":
        del sink["curve_secret_key"]
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")) as info:
        load_config(data=_cfg(sink), environ={})
    text = str(info.value)
    secret = zmq.auth.load_certificate(keys["server_secret"])[1]
    assert secret is not None and secret.decode() not in text
    assert "fix" in text.lower()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_config_rejects_unreadable_secret(keys: dict[str, Path]) -> None:
    keys["server_secret"].chmod(0)
    with pytest.raises(ConfigError, match=r"sink\.curve_secret_key.*not readable"):
        load_config(data=_cfg({"curve_secret_key": str(keys["server_secret"]),
                               "curve_clients": str(keys["clients"])}), environ={})


def test_publisher_rejects_inconsistent_curve_options(keys: dict[str, Path]) -> None:
    with pytest.raises(SinkError, match="sink.curve_secret_key"):
        Publisher("tcp://127.0.0.1:*", curve_clients=keys["clients"])
    with pytest.raises(SinkError, match="curve_clients"):
        Publisher("tcp://127.0.0.1:*", curve_secret_key=keys["server_secret"])
    with pytest.raises(SinkError, match="server"):
        Subscriber("tcp://127.0.0.1:5555", curve_secret_key=keys["client_secret"])
    # a key file deleted after validation: open() fails clearly and leaves nothing open
    pub = _curve_pub(keys)
    keys["server_secret"].unlink()
    with pytest.raises(SinkError, match="does not exist"):
        pub.open()
    assert not pub.is_open


def test_listen_with_keys(keys: dict[str, Path], capsys) -> None:
    """`rtdecode listen --server-key --client-key` reads an encrypted stream."""
    import threading

    with _curve_pub(keys) as pub:
        stop = threading.Event()

        def feed() -> None:
            seq = 0
            while not stop.is_set():
                pub.send(_frame(seq))
                seq += 1
                time.sleep(0.005)

        t = threading.Thread(target=feed, daemon=True)
        t.start()
        try:
            rc = main(["listen", pub.bound_endpoint, "--seconds", "1.5",
                       "--server-key", str(keys["server_public"]),
                       "--client-key", str(keys["client_secret"])])
        finally:
            stop.set()
            t.join(timeout=5)
        assert rc == 0
        out = capsys.readouterr().out
        assert "cortex: n=" in out and "cannot subscribe" not in out
        rc = main(["listen", pub.bound_endpoint, "--seconds", "1.0",
                   "--server-key", str(keys["server_public"]),
                   "--client-key", str(keys["intruder_secret"])])
        assert rc == 0
        out = capsys.readouterr().out
        assert "cortex: n=" not in out


def test_daemon_status_exposes_no_secret(keys: dict[str, Path]) -> None:
    """The daemon's own status dict (built before anything opens) carries no key material."""
    from rtdecode.service.daemon import Daemon

    cfg = load_config(data=_cfg({"curve_secret_key": str(keys["server_secret"]),
                                 "curve_clients": str(keys["clients"])}), environ={})
    status = Daemon(cfg)._status()
    frame = encode_status(STATUS_TOPIC, 0, pylsl.local_clock(), status)
    payload = decode(frame).status
    text = json.dumps(payload)
    secret = zmq.auth.load_certificate(keys["server_secret"])[1]
    assert secret is not None and secret.decode() not in text
    assert str(keys["server_secret"]) not in text and str(keys["clients"]) not in text
    assert payload["sink"]["curve"] == "clients"


def test_check_with_keys(keys: dict[str, Path], capsys) -> None:
    """`rtdecode check --server-key --client-key` reads the status of an encrypted daemon."""
    import threading

    with _curve_pub(keys) as pub:
        stop = threading.Event()

        def feed() -> None:
            seq = 0
            while not stop.is_set():
                pub.send(encode_status(STATUS_TOPIC, seq, pylsl.local_clock(), {"state": "running"}))
                seq += 1
                time.sleep(0.02)

        t = threading.Thread(target=feed, daemon=True)
        t.start()
        try:
            ok = main(["check", pub.bound_endpoint, "--timeout", "5",
                       "--server-key", str(keys["server_public"]),
                       "--client-key", str(keys["client_secret"])])
            ok_out = capsys.readouterr().out
            denied = main(["check", pub.bound_endpoint, "--timeout", "1",
                           "--server-key", str(keys["server_public"]),
                           "--client-key", str(keys["intruder_secret"])])
            denied_out = capsys.readouterr().out
        finally:
            stop.set()
            t.join(timeout=5)
    assert ok == 0 and ok_out.startswith("running"), ok_out
    assert denied == 1 and "no status" in denied_out, denied_out


def test_handshake_failure_without_detail_names_the_mechanism_mismatch_for_a_plain_client() -> None:
    """libzmq may report a plain client's failed handshake without detail: still name the cause."""
    from rtdecode.sinks.client import _handshake_error

    for event in (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL):
        assert "mechanism mismatch" in _handshake_error(event, 0, client_uses_curve=False)
    assert "server public key" in _handshake_error(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, 0,
                                                   client_uses_curve=True)
    assert "refused this client" in _handshake_error(zmq.EVENT_HANDSHAKE_FAILED_AUTH, 400,
                                                     client_uses_curve=True)
