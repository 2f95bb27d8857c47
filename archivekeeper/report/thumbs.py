"""report.thumbnails: one small picture (<= 96 px, EXIF orientation applied, inline JPEG data)
per upcoming shoot, for owners who recognise shoots by sight. Off by default: customer images
go into mailboxes only when chosen. The file is opened one folder at a time from the volume
root, never through a symlink; a file Pillow cannot read is skipped, never fatal."""

from __future__ import annotations

import base64
import io
import os
import stat
from pathlib import Path

MAX_SIDE = 96
MAX_PICTURES = 100  # ~4 kB each: a week of thousands of shoots stays a mail one can open
MAX_FILE = 64 * 2**20  # a bigger "image" is not worth decoding for a thumbnail
EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp")


def pick(relpaths) -> str | None:
    """The picture to show of a shoot's files: the first JPEG by name, else another image."""
    images = sorted(r for r in relpaths if r.lower().endswith(EXTENSIONS))
    jpegs = [r for r in images if r.lower().endswith((".jpg", ".jpeg"))]
    return (jpegs or images or [None])[0]


def data_uri(root: Path, relpath: str) -> str | None:
    """Given a volume root and a file's path relative to it, return its thumbnail as a data:
    URI, or None if it cannot be read as an image."""
    from PIL import Image, ImageOps

    fd = _open_nofollow(root, relpath)
    if fd is None:
        return None
    with os.fdopen(fd, "rb") as src:
        st = os.fstat(src.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE:
            return None
        try:
            with Image.open(src) as image:
                image.draft("RGB", (MAX_SIDE * 2, MAX_SIDE * 2))  # JPEG: decode small
                shown = ImageOps.exif_transpose(image).convert("RGB")
                shown.thumbnail((MAX_SIDE, MAX_SIDE))
                out = io.BytesIO()
                shown.save(out, "JPEG", quality=70)
        except Exception:  # a hostile or broken file: skipped, never fatal
            return None
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _open_nofollow(root: Path, relpath: str) -> int | None:
    parts = relpath.encode("utf-8", "surrogateescape").split(b"/")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(root, flags | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        for part in parts[:-1]:
            if part in (b"", b".", b".."):
                return None
            next_fd = os.open(part, flags | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        return os.open(parts[-1], flags | os.O_NONBLOCK, dir_fd=fd)
    except OSError:
        return None
    finally:
        os.close(fd)


def thumbnails(config, items) -> dict[str, str]:
    """Given the config and the report's upcoming plan items, return {shoot id: data URI} for
    up to MAX_PICTURES shoots on volumes the config names."""
    out: dict[str, str] = {}
    tried: set[int] = set()
    for item in items:
        if len(out) >= MAX_PICTURES or item.shoot_id in tried:
            continue
        tried.add(item.shoot_id)
        volume = config.volume(item.volume)
        chosen = pick(item.files)
        if volume is None or chosen is None:
            continue
        uri = data_uri(volume.path, chosen)
        if uri is not None:
            out[str(item.shoot_id)] = uri
    return out
