"""The port helpers every part of the local stack, the tests and the bench use."""

from __future__ import annotations

import socket
import time

import pytest

from sandbox.ports import free_port, port_open, wait_for_port


def test_free_port_is_bindable_and_wait_for_port_sees_a_listener() -> None:
    port = free_port()
    assert not port_open("127.0.0.1", port)
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", port))
        srv.listen()
        wait_for_port("127.0.0.1", port, timeout=1)
        assert port_open("127.0.0.1", port)


def test_wait_for_port_times_out() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=str(port)):
        wait_for_port("127.0.0.1", port, timeout=0.2)
    assert time.monotonic() - started < 2
