"""The systemd notify protocol (sd_notify(3)), written directly: one datagram of NAME=value
lines to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an abstract name written with a
leading "@"). Outside systemd, or when the socket is gone, every call returns False and nothing
else happens: telling the service manager must never stop or slow the daemon's work."""

from __future__ import annotations

import os
import socket
import time

# Longest a send may wait on a full socket queue: the main loop must not hang on the manager.
SEND_TIMEOUT = 1.0


def notify(*fields: str) -> bool:
    """Given NAME=value fields, send them as one datagram to $NOTIFY_SOCKET; return whether the
    whole datagram went out (False when the variable is unset or not a socket address)."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address.startswith(("/", "@")):
        return False
    target = os.fsencode("\0" + address[1:] if address.startswith("@") else address)
    # systemd ignores a STATUS= that is not UTF-8; a stray surrogate must not make it raise
    data = "\n".join(fields).encode("utf-8", errors="replace")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(SEND_TIMEOUT)
            return sock.sendto(data, target) == len(data)
    except OSError:
        return False


def watchdog_interval() -> float | None:
    """How often to send WATCHDOG=1, in seconds: half of $WATCHDOG_USEC, as systemd advises.
    None when there is no watchdog, the value is not a positive whole number of microseconds, or
    $WATCHDOG_PID names another process (the variable was inherited, not meant for us)."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID")
    if pid is not None and not (_digits(pid) and int(pid) == os.getpid()):
        return None
    if not _digits(usec) or int(usec) == 0:
        return None
    return int(usec) / 2_000_000


def _digits(text: str) -> bool:
    # int() would also take " 5", "+5" and "1_000", which systemd's parser refuses
    return text.isascii() and text.isdigit()


def ready() -> bool:
    return notify("READY=1")


def status(text: str) -> bool:
    """A one-line STATUS= for `systemctl status`; a newline (a folder name may hold one) would
    start another field, so it becomes a space."""
    return notify("STATUS=" + " ".join(text.splitlines()))


def reloading() -> bool:
    """RELOADING=1 with the CLOCK_MONOTONIC time that systemd 253+ requires (older versions
    ignore the field); send ready() once the new config is in force or refused."""
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify("RELOADING=1", f"MONOTONIC_USEC={usec}")


def stopping() -> bool:
    return notify("STOPPING=1")


def watchdog_ping() -> bool:
    return notify("WATCHDOG=1")
