"""Which mount a directory is on, and what /proc/self/mountinfo says about mounts.

A bind mount of a folder of the same filesystem has the same st_dev as the folder it sits in, so
st_dev alone cannot tell that a walk is leaving the volume's mount: the mount id can. It comes
from statx (STATX_MNT_ID, Linux 5.8) or, on older kernels, from the mount table: the mount with
the longest mount point holding the directory's real path.

Standard library only, and light: walker processes import it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import struct
from collections.abc import Callable
from typing import NamedTuple

_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_AT_NO_AUTOMOUNT = 0x800  # a scan must not make an automounter mount anything
_AT_EMPTY_PATH = 0x1000
_STATX_MNT_ID = 0x1000
_STATX_SIZE = 256  # struct statx
_STATX_MNT_ID_OFFSET = 144  # __u64 stx_mnt_id, after the times and device numbers
_ESCAPE = re.compile(rb"\\([0-7]{3})")


class Mount(NamedTuple):
    """One line of /proc/self/mountinfo."""

    mount_id: int
    dev: tuple[int, int] | None  # (major, minor)
    mount_point: bytes  # octal escapes (\040 for a space) decoded
    fs_type: str


def _load_statx() -> Callable[..., int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).statx
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint,
                         ctypes.c_char_p)
    function.restype = ctypes.c_int
    return function


# Module-level so tests can switch it off to exercise the mount table fallback.
_STATX = _load_statx()


def parse_mountinfo(text: bytes) -> list[Mount]:
    """Given the text of /proc/self/mountinfo, return its mounts in order; malformed lines are
    left out."""
    mounts = []
    for line in text.splitlines():
        fields = line.split(b" ")
        if b"-" not in fields[5:] or not fields[0].isdigit():
            continue
        separator = fields.index(b"-", 5)
        if separator + 1 >= len(fields):
            continue
        major, _, minor = fields[2].partition(b":")
        dev = (int(major), int(minor)) if major.isdigit() and minor.isdigit() else None
        mount_point = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 8)]), fields[4])
        mounts.append(Mount(int(fields[0]), dev, mount_point,
                            fields[separator + 1].decode("utf-8", "replace")))
    return mounts


def holding_mount(mounts: list[Mount], path: bytes) -> Mount | None:
    """Given mounts and a real absolute path, return the mount whose mount point is the longest
    one containing path (the last among equals: a later mount hides an earlier one)."""
    best = None
    for mount in mounts:
        point = mount.mount_point
        inside = path == point or path.startswith(point.rstrip(b"/") + b"/")
        if inside and (best is None or len(point) >= len(best.mount_point)):
            best = mount
    return best


def read_mountinfo() -> list[Mount] | None:
    try:
        with open("/proc/self/mountinfo", "rb") as mountinfo:
            return parse_mountinfo(mountinfo.read())
    except OSError:
        return None


def mount_id(target: bytes | int) -> int | None:
    """Given an absolute path or an open directory fd, return the id of the mount it is on, never
    following a final symlink; None if neither statx nor the mount table can tell. Raise OSError
    if statx cannot reach the path."""
    if _STATX is not None:
        buffer = ctypes.create_string_buffer(_STATX_SIZE)
        flags = _AT_SYMLINK_NOFOLLOW | _AT_NO_AUTOMOUNT
        if isinstance(target, int):
            start, path, flags = target, b"", flags | _AT_EMPTY_PATH
        else:
            start, path = _AT_FDCWD, target
        if _STATX(start, path, flags, _STATX_MNT_ID, buffer) == 0:
            if struct.unpack_from("=I", buffer)[0] & _STATX_MNT_ID:
                return struct.unpack_from("=Q", buffer, _STATX_MNT_ID_OFFSET)[0]
        else:
            code = ctypes.get_errno()
            if code != errno.ENOSYS:
                raise OSError(code, os.strerror(code), target)
    if isinstance(target, int):
        real = os.readlink(f"/proc/self/fd/{target}".encode())
    else:
        parent, _, name = target.rpartition(b"/")
        real = os.path.realpath(parent or b"/").rstrip(b"/") + b"/" + name
    mounts = read_mountinfo()
    found = holding_mount(mounts, real) if mounts else None
    return found.mount_id if found else None
