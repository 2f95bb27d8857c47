"""Mutated camera files for fuzzing the EXIF reader: seeds from the sample corpus (and a few
made here with Pillow, so a seed with a known date exists without it), mutated by bit flips,
truncation, and edits of the TIFF structure exifread walks: IFD chains and sub-IFD pointers
turned into cycles, huge entry counts, huge value counts (string lengths) and offsets.

Every mutation is a pure function of (seed bytes, random.Random): a seeded generator gives the
same files on every run, and Hypothesis drives the same functions through its own Random."""

from __future__ import annotations

import io
import os
import random
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

# The corpus: $ARCHIVEKEEPER_EXIF_SAMPLES, else ../shared/testdata/exif-samples beside the
# repository (as tests/integration/test_exif.py finds it).
SAMPLES = Path(os.environ.get("ARCHIVEKEEPER_EXIF_SAMPLES") or (
    Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "exif-samples"))
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".tif", ".tiff", ".arw", ".dng", ".heic", ".heif",
                  ".avif", ".jxl")
# A JPEG's EXIF is in its first segments: the rest of a big seed is pixels, which only make the
# temp tree bigger. TIFF and RAW keep their IFDs anywhere, so they are kept whole.
JPEG_PREFIX = 64 * 1024
# Sub-IFD pointers exifread follows: Exif, GPS, Interoperability, SubIFDs.
SUB_IFD_TAGS = (0x8769, 0x8825, 0xA005, 0x014A)
HUGE = (0xFFFF_FFFF, 0x7FFF_FFFF, 0x4000_0000, 0x0100_0000, 0x10000)
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}


def made_seeds() -> dict[str, bytes]:
    """A JPEG and a TIFF written by Pillow with IFD0, Exif IFD and GPS IFD and known dates."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0132] = "2022:01:01 00:00:00"  # DateTime: never a shoot date
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = "2019:05:12 14:03:59"
    sub[0x9004] = "2019:05:12 14:04:00"
    sub[0x8827] = 400
    exif.get_ifd(0x8825)[0x0001] = "N"
    seeds = {}
    for name, fmt in (("made.jpg", "JPEG"), ("made.tif", "TIFF")):
        out = io.BytesIO()
        Image.new("RGB", (16, 12), (90, 60, 30)).save(out, format=fmt, exif=exif.tobytes())
        seeds[name] = out.getvalue()
    return seeds


def load_seeds() -> dict[str, bytes]:
    """Seed name -> bytes: every image of the corpus (JPEGs cut to their first 64 kB), then the
    Pillow-made ones."""
    seeds = {}
    if SAMPLES.is_dir():
        for path in sorted(SAMPLES.rglob("*")):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                data = path.read_bytes()
                if path.suffix.lower() in (".jpg", ".jpeg"):
                    data = data[:JPEG_PREFIX]
                seeds[path.relative_to(SAMPLES).as_posix()] = data
    seeds.update(made_seeds())
    return seeds


# --- the TIFF structure -------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    at: int  # file offset of the 12-byte entry
    tag: int
    type: int
    count: int


@dataclass(frozen=True)
class Ifd:
    at: int  # file offset of its entry count
    entries: tuple[Entry, ...]
    next_at: int  # file offset of its next-IFD pointer


@dataclass(frozen=True)
class Tiff:
    base: int  # file offset of the TIFF header; IFD offsets count from here
    endian: str  # "<" or ">"
    ifds: tuple[Ifd, ...]


def find_tiff(data: bytes) -> Tiff | None:
    """Given a file, return the TIFF structure it carries (a TIFF or TIFF-based RAW at offset 0,
    else the first "Exif\\0\\0" block), with every IFD reachable from IFD0, or None."""
    if data[:4] in (b"II*\0", b"MM\0*"):
        base = 0
    else:
        found = re.search(rb"Exif\0\0(?:II\*\0|MM\0\*)", data)
        if found is None:
            return None
        base = found.start() + 6
    endian = "<" if data[base:base + 2] == b"II" else ">"

    def number(at: int, size: int) -> int | None:
        chunk = data[base + at:base + at + size]
        if len(chunk) != size:
            return None
        return struct.unpack(endian + ("H" if size == 2 else "I"), chunk)[0]

    ifds: list[Ifd] = []
    todo = [number(4, 4)]
    seen: set[int] = set()
    while todo and len(ifds) < 16:
        offset = todo.pop(0)
        if not offset or offset in seen:
            continue
        seen.add(offset)
        count = number(offset, 2)
        if count is None or count > 500:
            continue
        entries = []
        for i in range(count):
            at = offset + 2 + 12 * i
            tag, kind, values = number(at, 2), number(at + 2, 2), number(at + 4, 4)
            if values is None:
                break
            entries.append(Entry(base + at, tag, kind, values))
            if tag in SUB_IFD_TAGS and kind in (4, 13):
                todo.append(number(at + 8, 4))
        next_at = offset + 2 + 12 * count
        ifds.append(Ifd(base + offset, tuple(entries), base + next_at))
        todo.append(number(next_at, 4))
    return Tiff(base, endian, tuple(ifds)) if ifds else None


def _put(data: bytearray, at: int, value: int, size: int, endian: str) -> None:
    if 0 <= at and at + size <= len(data):
        data[at:at + size] = struct.pack(endian + ("H" if size == 2 else "I"), value)


# --- mutations ------------------------------------------------------------------------------


def bit_flips(data: bytes, rng: random.Random) -> bytes:
    """1 to 32 random bits flipped, mostly in the first 4 kB where the headers are."""
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.randint(1, 32)):
        span = len(out) if rng.random() < 0.3 else min(len(out), 4096)
        out[rng.randrange(span)] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncate(data: bytes, rng: random.Random) -> bytes:
    """Cut at a random offset, most often inside the headers."""
    if not data:
        return data
    end = len(data) if rng.random() < 0.3 else min(len(data), 4096)
    return data[:rng.randrange(end)]


def zero_length(_data: bytes, _rng: random.Random) -> bytes:
    return b""


def cyclic_ifd(data: bytes, rng: random.Random) -> bytes:
    """An IFD's next pointer, or a sub-IFD pointer, aimed at that IFD itself or an earlier one."""
    tiff = find_tiff(data)
    if tiff is None:
        return bit_flips(data, rng)
    out = bytearray(data)
    index = rng.randrange(len(tiff.ifds))
    ifd = tiff.ifds[index]
    target = tiff.ifds[rng.randrange(index + 1)].at - tiff.base  # itself or an earlier one
    pointers = [e.at + 8 for e in ifd.entries if e.tag in SUB_IFD_TAGS]
    if pointers and rng.random() < 0.5:
        _put(out, rng.choice(pointers), target, 4, tiff.endian)
    else:
        _put(out, ifd.next_at, target, 4, tiff.endian)
    return bytes(out)


def huge_entry_count(data: bytes, rng: random.Random) -> bytes:
    """An IFD that says it holds more entries than it does, up to 65,535 (rarely: exifread
    takes about half a second over one that big)."""
    tiff = find_tiff(data)
    if tiff is None:
        return bit_flips(data, rng)
    out = bytearray(data)
    ifd = rng.choice(tiff.ifds)
    _put(out, ifd.at, rng.choice((0xFFFF, 0x1000, 0x400, 0x100, len(ifd.entries) + 1)), 2, tiff.endian)
    return bytes(out)


def huge_value_count(data: bytes, rng: random.Random) -> bytes:
    """An entry (a string most often) that says it holds up to 4 G values."""
    tiff = find_tiff(data)
    entries = [e for ifd in tiff.ifds for e in ifd.entries] if tiff else []
    if not entries:
        return bit_flips(data, rng)
    strings = [e for e in entries if e.type in (2, 7)]
    entry = rng.choice(strings if strings and rng.random() < 0.7 else entries)
    out = bytearray(data)
    _put(out, entry.at + 4, rng.choice(HUGE), 4, tiff.endian)
    return bytes(out)


def huge_offset(data: bytes, rng: random.Random) -> bytes:
    """An entry's value offset (or a sub-IFD pointer) far past the end of the file."""
    tiff = find_tiff(data)
    entries = [e for ifd in tiff.ifds for e in ifd.entries] if tiff else []
    if not entries:
        return truncate(data, rng)
    out = bytearray(data)
    entry = rng.choice(entries)
    _put(out, entry.at + 8, rng.choice((0xFFFF_FFF0, 0x8000_0000, len(data) + 1)), 4,
         tiff.endian)
    return bytes(out)


MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "bit_flips": bit_flips, "truncate": truncate, "zero_length": zero_length,
    "cyclic_ifd": cyclic_ifd, "huge_entry_count": huge_entry_count,
    "huge_value_count": huge_value_count, "huge_offset": huge_offset,
}
# How often each is drawn: structure edits most, an empty file now and then.
WEIGHTS = {"bit_flips": 5, "truncate": 3, "zero_length": 1, "cyclic_ifd": 3,
           "huge_entry_count": 1, "huge_value_count": 3, "huge_offset": 2}


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One to three mutations in a row; return their names joined by '+' and the result."""
    names = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()), k=rng.choice((1, 1, 2, 3)))
    for name in names:
        data = MUTATIONS[name](data, rng)
    return "+".join(names), data


def suffix_of(seed_name: str) -> str:
    return os.path.splitext(seed_name)[1].lower() or ".jpg"


def written_in(data: bytes, when: datetime) -> bool:
    """Is `when` written in the file as a date the reader accepts (Y, M, D with : - / or .)?
    A date the reader returns must come from the file, never be made up."""
    pattern = rb"%04d[:\-/.]0?%d[:\-/.]0?%d" % (when.year, when.month, when.day)
    return re.search(pattern, data) is not None
