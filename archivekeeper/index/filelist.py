"""A shoot's file list as the index stores it: one row per shoot, column by column.

relpaths joined by NUL (no path can hold one), sizes and mtimes as int64, inodes as uint64 (all
little-endian), one byte per file kind. A first index of a million files then writes 20,000 rows
instead of a million, and reading a shoot's files back is a few C-level calls. Standard library
only: the scan workers import it.
"""

from __future__ import annotations

import sys
from array import array

KINDS = ("other", "raw", "image", "video", "sidecar", "symlink")
_KIND_CODES = {kind: code for code, kind in enumerate(KINDS)}

RAW_EXT = {"cr2", "cr3", "crw", "nef", "nrw", "arw", "srf", "sr2", "dng", "raf", "orf", "rw2",
           "pef", "srw", "x3f", "3fr", "iiq", "erf", "kdc", "mrw", "raw"}
IMAGE_EXT = {"jpg", "jpeg", "png", "tif", "tiff", "heic", "heif", "avif", "webp", "jxl", "gif",
             "bmp", "psd", "psb"}
VIDEO_EXT = {"mp4", "mov", "avi", "mts", "m2ts", "m4v", "mkv", "mpg", "mpeg", "3gp"}
SIDECAR_EXT = {"xmp", "pp3", "dop", "thm", "on1", "cos", "aae"}
KIND_BY_EXT = {
    ext.encode(): kind
    for kind, exts in (("raw", RAW_EXT), ("image", IMAGE_EXT), ("video", VIDEO_EXT),
                       ("sidecar", SIDECAR_EXT))
    for ext in exts
}


class DamagedList(ValueError):
    """A stored file list whose columns disagree."""


def pack_files(files: list[tuple[bytes, int, int, int, str]]) -> tuple:
    """Given (relpath, size, mtime_ns, inode, kind) tuples, return the stored columns (count,
    relpaths, sizes, mtimes, inodes, kinds), files sorted by relpath."""
    if not files:
        return (0, b"", b"", b"", b"", b"")
    rel, size, mtime, inode, kind = zip(*sorted(files), strict=True)
    return (len(rel), b"\0".join(rel), _blob("q", size), _blob("q", mtime), _blob("Q", inode),
            bytes(map(_KIND_CODES.__getitem__, kind)))


def unpack_files(count: int, relpaths: bytes, sizes: bytes, mtimes: bytes, inodes: bytes,
                 kinds: bytes) -> list[tuple[bytes, int, int, int, str]]:
    """The inverse of pack_files. Raises DamagedList if the columns disagree."""
    if not count:
        if any((relpaths, sizes, mtimes, inodes, kinds)):
            raise DamagedList("files stored, none counted")
        return []
    try:
        rows = list(zip(relpaths.split(b"\0"), _ints("q", sizes), _ints("q", mtimes),
                        _ints("Q", inodes), map(KINDS.__getitem__, kinds), strict=True))
    except (ValueError, IndexError) as exc:
        raise DamagedList(str(exc)) from exc
    if len(rows) != count:
        raise DamagedList(f"{len(rows)} files stored, {count} counted")
    return rows


def _blob(code: str, values) -> bytes:
    out = array(code, values)
    if sys.byteorder == "big":
        out.byteswap()
    return out.tobytes()


def _ints(code: str, blob: bytes) -> array:
    out = array(code)
    out.frombytes(blob)  # ValueError if not a whole number of items
    if sys.byteorder == "big":
        out.byteswap()
    return out
