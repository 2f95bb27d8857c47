"""sd_notify written directly: datagrams reach a real AF_UNIX socket the test binds (a path and
an abstract name), WATCHDOG_USEC/WATCHDOG_PID are read as systemd means them, and no setup
(unset, relative, dead, full) makes a call raise or hang."""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
import time
from pathlib import Path

import pytest

from archivekeeper.service import notify


def receiver(address: str | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.setblocking(False)  # a datagram that never came fails the test instead of hanging it
    return sock


@pytest.fixture
def path_socket(monkeypatch):
    # AF_UNIX paths stop at 107 bytes: a short folder, not pytest's long tmp_path
    with tempfile.TemporaryDirectory(prefix="ak-") as folder:
        path = str(Path(folder) / "notify")
        with receiver(path) as sock:
            monkeypatch.setenv("NOTIFY_SOCKET", path)
            yield sock


@pytest.fixture
def abstract_socket(monkeypatch):
    name = f"archivekeeper-test-{secrets.token_hex(8)}"
    with receiver(b"\0" + name.encode()) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        yield sock


def received(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_fields_go_out_as_one_datagram_to_a_path_socket(path_socket):
    assert notify.notify("READY=1", "STATUS=scanning studio") is True
    assert received(path_socket) == "READY=1\nSTATUS=scanning studio"
    with pytest.raises(BlockingIOError):
        path_socket.recv(4096)  # one datagram, not one per field


def test_an_at_sign_names_an_abstract_socket(abstract_socket):
    assert notify.notify("WATCHDOG=1") is True
    assert received(abstract_socket) == "WATCHDOG=1"


@pytest.mark.parametrize(("call", "sent"), [
    (notify.ready, "READY=1"),
    (notify.stopping, "STOPPING=1"),
    (notify.watchdog_ping, "WATCHDOG=1"),
    (lambda: notify.status("applying: 12 of 40 shoots"), "STATUS=applying: 12 of 40 shoots"),
])
def test_each_helper_sends_its_field(abstract_socket, call, sent):
    assert call() is True
    assert received(abstract_socket) == sent


def test_reloading_carries_the_monotonic_time_systemd_253_requires(path_socket):
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notify.reloading() is True
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = received(path_socket).split("\n")
    assert first == "RELOADING=1"
    name, _, usec = second.partition("=")
    assert name == "MONOTONIC_USEC" and before <= int(usec) <= after


def test_a_newline_in_a_status_cannot_start_another_field(path_socket):
    assert notify.status("scanning studio:2019 Virtanen\nREADY=1") is True
    assert received(path_socket) == "STATUS=scanning studio:2019 Virtanen READY=1"


def test_a_name_that_is_not_utf8_is_sent_with_a_replacement_character(path_socket):
    name = os.fsdecode(b"Virtanen \xe4")  # a Latin-1 folder name: a lone surrogate in Python
    assert notify.status(f"scanning {name}") is True
    assert received(path_socket) == "STATUS=scanning Virtanen ?"


@pytest.mark.parametrize("value", [None, "", "notify.sock", "vsock:2:1234"])
def test_no_socket_address_sends_nothing_and_returns_false(monkeypatch, tmp_path, value):
    monkeypatch.chdir(tmp_path)
    if value is None:
        monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    else:
        monkeypatch.setenv("NOTIFY_SOCKET", value)
    with receiver("notify.sock") as sock:  # a relative name is not a socket address
        assert notify.ready() is False
        with pytest.raises(BlockingIOError):
            sock.recv(4096)


def test_a_dead_socket_returns_false(monkeypatch):
    with tempfile.TemporaryDirectory(prefix="ak-") as folder:
        path = str(Path(folder) / "notify")
        receiver(path).close()  # the file stays, nobody listens: ECONNREFUSED
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert notify.ready() is False
        monkeypatch.setenv("NOTIFY_SOCKET", str(Path(folder) / "missing"))
        assert notify.watchdog_ping() is False
    monkeypatch.setenv("NOTIFY_SOCKET", f"@archivekeeper-nobody-{secrets.token_hex(8)}")
    assert notify.stopping() is False


def test_a_full_socket_queue_returns_false_after_the_timeout(monkeypatch, path_socket):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as filler:
        filler.setblocking(False)
        with pytest.raises(BlockingIOError):
            for _ in range(100_000):
                filler.sendto(b"x" * 1024, os.environ["NOTIFY_SOCKET"])
    monkeypatch.setattr(notify, "SEND_TIMEOUT", 0.05)
    assert notify.watchdog_ping() is False


@pytest.mark.parametrize(("usec", "pid", "interval"), [
    ("300000000", None, 150.0),
    ("300000000", "self", 150.0),
    ("1", None, 0.0000005),
    ("300000000", "1", None),          # set for another process (inherited)
    ("300000000", "", None),
    ("300000000", "12x", None),
    (None, None, None),
    ("", None, None),
    ("0", None, None),
    ("-5", None, None),
    ("+5", None, None),
    (" 5", None, None),
    ("1_000", None, None),
    ("5s", None, None),
    ("\N{SUPERSCRIPT TWO}", None, None),
])
def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process(
        monkeypatch, usec, pid, interval):
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, str(os.getpid()) if value == "self" else value)
    assert notify.watchdog_interval() == interval
