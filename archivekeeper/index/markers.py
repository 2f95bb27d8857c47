"""Reading a volume's root and its marker `.archivekeeper/volume.json`, safely: the root is
opened without following a symlink at its last component, the marker through that handle, never
following a symlink, never waiting on a FIFO or device planted there, at most MARKER_MAX_BYTES.

Read-only, standard library only: the index probes volumes with it, and fsops (which writes the
marker and changes files) checks the id through the very handle it then uses.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

META_DIR = b".archivekeeper"
MARKER_NAME = b"volume.json"
MARKER_MAX_BYTES = 64 * 1024
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NOT_A_DIRECTORY = (errno.ENOTDIR, errno.ELOOP)


class MarkerError(Exception):
    """A volume marker that is there but is not a small regular JSON file with an id."""


class RootError(Exception):
    """A volume root that cannot be opened as a real directory; reason says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def lstat_at(dir_fd: int, name: bytes) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "a special file"


@contextmanager
def closing(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def open_root(path: str | bytes) -> int:
    """Given a volume's configured absolute path, return an fd for its root directory.

    Only the final component is opened with O_NOFOLLOW: a root that is itself a symlink is
    refused, while parents such as /media -> /run/media are followed, as configured. Raise
    RootError if the path is not absolute, is "/", is missing, is a symlink or not a directory.
    """
    raw = os.fsencode(path)
    trimmed = raw.rstrip(b"/")  # a trailing slash would make the kernel follow a symlink

    def refuse(reason: str) -> RootError:
        return RootError(reason)

    if not raw.startswith(b"/"):
        raise refuse("the volume path must be absolute")
    if not trimmed:
        raise refuse("the filesystem root cannot be a volume")
    try:
        return os.open(trimmed, DIR_FLAGS)
    except FileNotFoundError:
        raise refuse("no such directory (drive not mounted?)") from None
    except OSError as exc:
        if exc.errno not in NOT_A_DIRECTORY:
            raise refuse(exc.strerror or str(exc)) from exc
        try:
            what = kind(os.lstat(trimmed).st_mode)
        except OSError:
            what = "gone"
        raise refuse(f"the volume root is {what}, not a directory") from exc


def read_marker(root_fd: int) -> dict | None:
    """Given an open volume root, return its marker .archivekeeper/volume.json (a dict whose "id"
    is text), or None if it has none.

    Never follows a symlink, never waits on a FIFO or device planted there, reads at most
    MARKER_MAX_BYTES. Raise MarkerError saying what is wrong with a marker that is unusable.
    """
    try:
        meta_fd = os.open(META_DIR, DIR_FLAGS, dir_fd=root_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MarkerError(meta_problem(root_fd, exc)) from exc
    with closing(meta_fd):
        return read_marker_in(meta_fd)


def meta_problem(root_fd: int, exc: OSError) -> str:
    if exc.errno in NOT_A_DIRECTORY:
        found = lstat_at(root_fd, META_DIR)
        return f".archivekeeper is {kind(found.st_mode) if found else 'gone'}, not a directory"
    return f".archivekeeper cannot be opened: {exc.strerror}"


def read_marker_in(meta_fd: int) -> dict | None:
    where = ".archivekeeper/volume.json"
    found = lstat_at(meta_fd, MARKER_NAME)
    if found is None:
        return None
    if stat.S_ISLNK(found.st_mode):
        raise MarkerError(f"{where} is a symlink")
    if not stat.S_ISREG(found.st_mode):
        raise MarkerError(f"{where} is not a regular file (it is {kind(found.st_mode)})")
    try:
        # O_NONBLOCK: if a FIFO is swapped in after the lstat, opening it must not wait
        fd = os.open(MARKER_NAME, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC,
                     dir_fd=meta_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MarkerError(f"{where} cannot be read: {exc.strerror}") from exc
    with closing(fd):
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise MarkerError(f"{where} is not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= MARKER_MAX_BYTES:
            chunk = os.read(fd, MARKER_MAX_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    if size > MARKER_MAX_BYTES:
        raise MarkerError(f"{where} is larger than {MARKER_MAX_BYTES} bytes")
    try:
        marker = json.loads(b"".join(chunks))
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the stack
        raise MarkerError(f"{where} is not valid JSON") from None
    if not isinstance(marker, dict) or not isinstance(marker.get("id"), str) or not marker["id"]:
        raise MarkerError(f"{where} has no volume id")
    return marker
