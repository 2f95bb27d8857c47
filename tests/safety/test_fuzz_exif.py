"""Promise 9 for camera files: a corrupt or hostile JPEG, TIFF or RAW never raises, never hangs
past the EXIF reader's timeout, and gives None or a date that is written in the file (and the
report's thumbnail of it is a small JPEG or nothing).

Mutants of the sample corpus (tests/safety/exif_mutations.py: bit flips, truncation, cyclic IFD
chains and sub-IFDs, huge entry and value counts, far offsets, empty files) are read one by one
in one ExifReader session, each call timed; Hypothesis drives the same mutations and builds
TIFF structures of its own, so a failure shrinks to a small file; and the CLI's `scan` dates
shoots (a pattern without {date}) from such files."""

from __future__ import annotations

import base64
import io
import json
import os
import random
import struct
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import OLD, Studio
from hypothesis import event, given
from hypothesis import strategies as st
from PIL import Image
from structlog.testing import capture_logs

from archivekeeper.index.exif import ExifReader
from archivekeeper.report import thumbs
from safety import fuzzing
from safety.exif_mutations import load_seeds, mutate, suffix_of, written_in

TIMEOUT = 2.0  # the reader's per-file timeout here (the scan's own is 5 s)
# What a call may take beyond the timeout: the start of a new worker after one was killed
# (Python and exifread imported: well under a second, several on a loaded machine).
STARTUP_SLACK = 15.0
TAGS = {"EXIF DateTimeOriginal", "Image DateTimeOriginal", "EXIF DateTimeDigitized"}
# exifread 3.5.1 loops forever on a HEIC box whose 64-bit size is 0 (tests/integration/test_exif.py)
HANGING_HEIC = b"\x00\x00\x00\x10ftypheic\x00\x00\x00\x00" + b"\x00\x00\x00\x01free" + b"\x00" * 8


@pytest.fixture(scope="module")
def seeds() -> dict[str, bytes]:
    found = load_seeds()
    assert len(found) >= 2  # the Pillow-made ones at least; the corpus adds about 80
    return found


@pytest.fixture(scope="module")
def reader():
    with ExifReader(timeout=TIMEOUT) as shared:
        yield shared


def write_mutants(folder: Path, seeds: dict[str, bytes], how_many: int, rng: random.Random):
    """Write `how_many` mutants into folder; return [(path, seed name, mutations, bytes)]."""
    names = sorted(seeds)
    made = []
    for n in range(how_many):
        seed_name = rng.choice(names)
        how, data = mutate(seeds[seed_name], rng)
        path = os.fsencode(folder / f"{n:05d}{suffix_of(seed_name)}")
        with open(path, "wb") as file:
            file.write(data)
        made.append((path, seed_name, how, data))
    return made


def check_answer(found, data: bytes) -> None:
    """None, or a date from one of the three tags that is written in the file."""
    if found is not None:
        assert found.tag in TAGS, found
        assert written_in(data, found.taken), found


def read_one_by_one(reader: ExifReader, mutants) -> tuple[list[float], list[dict]]:
    """Read each mutant in its own call; return the wall time of each and the reader's logs.
    Every answer is checked on the way."""
    times = []
    with capture_logs() as logs:
        for path, seed_name, how, data in mutants:
            started = time.monotonic()
            answer = reader.read_tagged_dates([path])
            times.append(time.monotonic() - started)
            assert list(answer) == [path], (seed_name, how)
            check_answer(answer[path], data)
    return times, logs


def run_bulk(tmp_path: Path, seeds: dict[str, bytes], how_many: int, seed: int) -> None:
    mutants = write_mutants(tmp_path, seeds, how_many, random.Random(seed))
    with ExifReader(timeout=TIMEOUT) as reader:
        reader.read_dates([mutants[0][0]])  # the worker's start-up is not a file's cost
        started = time.monotonic()
        times, logs = read_one_by_one(reader, mutants)
        total = time.monotonic() - started
    slowest = max(range(len(times)), key=times.__getitem__)
    timeouts = [entry for entry in logs if entry["event"] == "exif_timeout"]
    kinds = Counter(part for _, _, how, _ in mutants for part in how.split("+"))
    fuzzing.note(f"EXIF fuzz (seed {seed}): {len(mutants)} files from {len(seeds)} seeds in "
          f"{total:.1f} s; max {times[slowest]:.3f} s per file ({mutants[slowest][1]}, "
          f"{mutants[slowest][2]}); {len(timeouts)} timeouts; mutations {dict(kinds)}")
    assert times[slowest] < TIMEOUT + STARTUP_SLACK
    # a worker killed for a timeout was blamed on the file it was on; none died otherwise
    assert [entry["event"] for entry in logs if entry not in timeouts] == []
    assert all(entry["timeout"] == TIMEOUT for entry in timeouts)
    check_thumbnails(tmp_path, mutants, seed)


def check_thumbnails(folder: Path, mutants, seed: int) -> None:
    """The report's thumbnails (report.thumbnails: true) decode the same files with Pillow, in
    the reporting process: each gives a small JPEG or None, never an exception."""
    made, slowest = 0, 0.0
    for path, seed_name, how, _ in mutants:
        started = time.monotonic()
        uri = thumbs.data_uri(folder, os.fsdecode(os.path.basename(path)))
        slowest = max(slowest, time.monotonic() - started)
        if uri is not None:
            made += 1
            prefix = "data:image/jpeg;base64,"
            assert uri.startswith(prefix), (seed_name, how)
            with Image.open(io.BytesIO(base64.b64decode(uri[len(prefix):]))) as picture:
                assert picture.format == "JPEG" and max(picture.size) <= thumbs.MAX_SIDE
    fuzzing.note(f"thumbnails of the same files (seed {seed}): {made} made, the rest skipped; "
                 f"max {slowest:.3f} s per file")


# Pillow warns of every corrupt EXIF block it meets while making a thumbnail, and of a mutant
# that claims some 90 million pixels (DecompressionBombWarning; a JPEG, decoded at 1/8 scale)
PILLOW_WARNINGS = pytest.mark.filterwarnings("ignore::UserWarning:PIL",
                                             "ignore::PIL.Image.DecompressionBombWarning")


@PILLOW_WARNINGS
@pytest.mark.timeout(600)
def test_2000_mutated_camera_files_give_none_or_their_own_date_within_the_timeout(
        tmp_path, seeds):
    run_bulk(tmp_path, seeds, fuzzing.count(2000), fuzzing.seed())


@PILLOW_WARNINGS
@pytest.mark.slow
@pytest.mark.timeout(0)
def test_20000_mutated_camera_files_slow(tmp_path, seeds):
    run_bulk(tmp_path, seeds, fuzzing.count(2000, slow=True), fuzzing.seed(slow=True))


@pytest.mark.timeout(60)
def test_a_file_exifread_loops_on_costs_the_timeout_and_is_logged(tmp_path, reader, seeds):
    """The bulk run may draw no hanging file; this one hangs exifread for sure."""
    hanging = os.fsencode(tmp_path / "loop.heic")
    Path(os.fsdecode(hanging)).write_bytes(HANGING_HEIC)
    reader.read_dates([hanging + b".absent"])  # a started worker
    with capture_logs() as logs:
        started = time.monotonic()
        assert reader.read_dates([hanging]) == {hanging: None}
        elapsed = time.monotonic() - started
    assert TIMEOUT <= elapsed < TIMEOUT + STARTUP_SLACK
    assert [entry["event"] for entry in logs] == ["exif_timeout"]


# --- Hypothesis: the same mutations, shrinkable -------------------------------------------


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("exif-hypothesis")


def _read(reader: ExifReader, folder: Path, data: bytes, suffix: str) -> None:
    path = os.fsencode(folder / f"case{suffix}")
    with open(path, "wb") as file:
        file.write(data)
    started = time.monotonic()
    answer = reader.read_tagged_dates([path])[path]
    assert time.monotonic() - started < TIMEOUT + STARTUP_SLACK
    check_answer(answer, data)
    event("dated" if answer else "no date")


@pytest.mark.timeout(300)
@fuzzing.hypothesis_settings(100)
@given(data=st.data())
def test_mutations_of_any_seed_give_none_or_their_own_date(reader, seeds, scratch, data):
    name = data.draw(st.sampled_from(sorted(seeds)), label="seed")
    how, mutant = mutate(seeds[name], data.draw(st.randoms(use_true_random=False)))
    event(how)
    _read(reader, scratch, mutant, suffix_of(name))


# A TIFF built from drawn parts: IFDs whose entries have any tag, type, count and value, next
# pointers and sub-IFD pointers aimed anywhere (themselves, earlier IFDs, past the end), and a
# date string somewhere, bare or inside a JPEG's APP1 segment.
DATE = b"2019:05:12 14:03:59\0"
TAGS_OF_NOTE = [0x010F, 0x0132, 0x8769, 0x8825, 0xA005, 0x014A, 0x9003, 0x9004, 0x927C, 0x0201]


@st.composite
def tiff_files(draw) -> bytes:
    endian = draw(st.sampled_from("<>"))
    sizes = draw(st.lists(st.integers(0, 6), min_size=1, max_size=4))  # entries per IFD
    starts, at = [], 8
    for size in sizes:
        starts.append(at)
        at += 2 + 12 * size + 4
    date_at = at
    anywhere = st.one_of(st.sampled_from([*starts, date_at, 0]), st.integers(0, 2**32 - 1))
    body = b""
    for index, size in enumerate(sizes):
        stated = draw(st.one_of(st.just(size), st.integers(0, 0xFFFF)), label="entry count")
        body += struct.pack(endian + "H", stated)
        well_formed = st.sampled_from(
            [(0x9003, 2, len(DATE), date_at), (0x9004, 2, len(DATE), date_at)]
            + [(0x8769, 4, 1, start) for start in starts])  # a date, a sub-IFD anywhere
        for _ in range(size):
            if draw(st.booleans(), label="well-formed entry"):
                body += struct.pack(endian + "HHII", *draw(well_formed))
                continue
            tag = draw(st.one_of(st.sampled_from(TAGS_OF_NOTE), st.integers(0, 0xFFFF)))
            kind = draw(st.integers(0, 14))
            values = draw(st.one_of(st.integers(0, 64), st.sampled_from([20, 0xFFFFFFFF]),
                                    st.integers(0, 2**32 - 1)))
            body += struct.pack(endian + "HHII", tag, kind, values, draw(anywhere))
        nexts = st.one_of(st.just(0), st.sampled_from(starts[:index + 1]), anywhere)
        body += struct.pack(endian + "I", draw(nexts, label="next IFD"))
    header = (b"II*\0" if endian == "<" else b"MM\0*") + struct.pack(endian + "I", starts[0])
    tiff = header + body + DATE + draw(st.binary(max_size=64))
    if draw(st.booleans(), label="inside a JPEG"):
        app1 = b"Exif\0\0" + tiff
        return b"\xff\xd8\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + b"\xff\xd9"
    return tiff


@pytest.mark.timeout(300)
@fuzzing.hypothesis_settings(200)
@given(tiff=tiff_files())
def test_drawn_tiff_structures_give_none_or_their_own_date(reader, scratch, tiff):
    _read(reader, scratch, tiff, ".jpg" if tiff[:2] == b"\xff\xd8" else ".tif")


# --- through the scanner and the CLI ------------------------------------------------------


def run_scan_over_mutants(tmp_path: Path, seeds: dict[str, bytes], shoots: int,
                          seed: int) -> None:
    studio = Studio(tmp_path)  # its patterns include "Arkisto/{customer}": no {date}
    studio.init_volumes()
    rng = random.Random(seed)
    written: dict[str, list[bytes]] = {}
    for n in range(shoots):
        folder = f"Arkisto/Asiakas {n:04d}"
        files = {}
        for index in range(rng.randint(1, 9)):
            seed_name = rng.choice(sorted(seeds))
            _, data = mutate(seeds[seed_name], rng)
            files[f"IMG_{index:04d}{suffix_of(seed_name)}"] = data
        if n == 0:
            files["IMG_9999.heic"] = HANGING_HEIC
        studio.shoot("studio", folder, files, mtime=OLD)
        written[folder] = list(files.values())
    done = studio.cli("scan", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert fuzzing.no_traceback(done.stderr), done.stderr[-2000:]
    assert "exif_timeout" in done.stderr  # the looping HEIC cost the timeout, and was named
    listed = json.loads(studio.cli("shoots", "--json").stdout)["shoots"]
    assert sorted(s["path"] for s in listed) == sorted(written)
    tomorrow = date.today() + timedelta(days=1)
    sources = Counter()
    for shoot in listed:
        sources[shoot["date_source"]] += 1
        shown = date.fromisoformat(shoot["date"])
        assert date(1990, 1, 1) <= shown <= tomorrow, shoot
        if shoot["date_source"] == "exif":
            assert any(written_in(data, shown) for data in written[shoot["path"]]), shoot
        else:
            assert shoot["date_source"] == "mtime", shoot
    fuzzing.note(f"scan over mutants (seed {seed}): {len(listed)} shoots, "
          f"{sum(map(len, written.values()))} files, dates from {dict(sources)}")
    assert sources["exif"] > 0  # the scan really dated shoots from these files


@pytest.mark.timeout(600)
def test_scan_dates_shoots_of_mutated_files_without_a_traceback(tmp_path, seeds):
    run_scan_over_mutants(tmp_path, seeds, fuzzing.count(60), fuzzing.seed())


@pytest.mark.slow
@pytest.mark.timeout(0)
def test_scan_over_mutated_files_slow(tmp_path, seeds):
    run_scan_over_mutants(tmp_path, seeds, fuzzing.count(60, slow=True), fuzzing.seed(slow=True))
