"""Drive hot-plug: notice volumes coming and going within seconds.

Two sources, because neither is enough alone. The kernel flags /proc/self/mountinfo when the
mount table changes (a USB drive mounted or unmounted): `MountTable` is that flag as a poll()
source. But a volume's marker can come or go with no mount change (a drive emptied, a plain
folder volume, a bind mount not in this namespace), so the daemon also calls `Presence.poll()`
every ~2 s: a probe opens each volume's root and marker, cheap enough to repeat.
"""

from __future__ import annotations

import os
import select
from collections.abc import Callable

from archivekeeper.index.volumes import VolumeStatus

MOUNTINFO = "/proc/self/mountinfo"


class MountTable:
    """/proc/self/mountinfo as a poll() source. The kernel reports a change of the mount table as
    POLLPRI|POLLERR (POLLIN is always set on this file, so register `POLL_EVENTS` with
    select.poll or put the fd in select()'s exceptional list: selectors' EVENT_READ would fire
    constantly). Where the file is missing, `fileno()` is None and `changed()` always False:
    the daemon's periodic Presence.poll() still sees drives, a little later."""

    POLL_EVENTS = select.POLLPRI | select.POLLERR

    def __init__(self, path: str = MOUNTINFO):
        self._file = None
        self._content = b""
        try:
            self._file = open(path, "rb")  # kept open: its fd is the poll source
            self._content = self._file.read()
        except OSError:
            if self._file is not None:
                self._file.close()
            self._file = None

    def fileno(self) -> int | None:
        return self._file.fileno() if self._file is not None else None

    def changed(self) -> bool:
        """True if the mount table differs from the last call's; never blocks. It compares
        what it reads, because the kernel's flag is cleared by whichever poll() sees it first
        (the daemon's own, usually), and a mount undone before this call changes nothing."""
        if self._file is None:
            return False
        self._file.seek(0)
        content = self._file.read()
        if content == self._content:
            return False
        self._content = content
        return True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Presence:
    """Which volumes are online, as changes. `probe` returns every configured volume's status
    (the daemon passes `session.volume_statuses(register=False)`)."""

    def __init__(self, probe: Callable[[], list[VolumeStatus]]):
        self._probe = probe
        self._last: dict[str, VolumeStatus] = {}
        self._roots: dict[str, tuple[int, int] | None] = {}  # (st_dev, st_ino) of each root

    def poll(self) -> list[tuple[VolumeStatus, str]]:
        """Probe now; return [(status, "online"|"offline")] for each volume whose state changed
        since the last call (on the first call: every volume). A volume online both times but
        with another marker id or st_dev (another drive at its path, or the drive on another
        device node) is reported "offline" then "online": its watches died with the old mount.
        A volume no longer configured is reported offline.

        An unplug and replug of the same drive between two calls goes unseen when it comes back
        with the same st_dev (the mount id is no help: the kernel reuses it), so the daemon
        calls this as soon as the MountTable fires, not only every ~2 s."""
        changes: list[tuple[VolumeStatus, str]] = []
        now = {status.name: status for status in self._probe()}
        roots = {name: _root(status) for name, status in now.items()}
        for status in now.values():
            old = self._last.get(status.name)
            if old is not None and old.online and status.online and (
                    (old.volume_id, old.dev) != (status.volume_id, status.dev)
                    or self._roots.get(status.name) != roots[status.name]):
                changes += [(old, "offline"), (status, "online")]
            elif old is None or old.online != status.online:
                changes.append((status, "online" if status.online else "offline"))
        for name in self._last.keys() - now.keys():
            old = self._last[name]
            if old.online:
                changes.append((VolumeStatus(old.name, old.path, online=False,
                                             reason="no longer configured"), "offline"))
        self._last, self._roots = now, roots
        return changes

    @property
    def statuses(self) -> list[VolumeStatus]:
        """The statuses seen by the last poll."""
        return list(self._last.values())


def _root(status: VolumeStatus) -> tuple[int, int] | None:
    """The identity of an online volume's root folder: a folder replaced by a copy of itself
    (same marker, same device) is another folder, and the watches on the old one see nothing."""
    if not status.online:
        return None
    try:
        st = os.stat(status.path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
