"""archivekeeper.index.exif on real camera files (checked against ExifTool's reading), broken and hostile
files, odd paths, and real worker processes that hang, crash or cannot start."""

from __future__ import annotations

import csv
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from structlog.testing import capture_logs

from archivekeeper.index import exif
from archivekeeper.index.exif import ExifDate, ExifReader, parse_exif_datetime, read_date_inprocess

# The camera sample corpus: $ARCHIVEKEEPER_EXIF_SAMPLES, else ../shared/testdata/exif-samples
# beside the repository (where the project's CI lays it).
SAMPLES = Path(os.environ.get("ARCHIVEKEEPER_EXIF_SAMPLES") or (
    Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "exif-samples"))

# Sample files where read_dates does not give ExifTool's DateTimeOriginal, and why.
DISAGREEMENTS = {
    "jpg/Reconyx_HC500_Hyperfire.jpg": "the date is only in the Reconyx MakerNote, "
    "which exifread does not decode",
    "jpg/exif-org/olympus-d320l.jpg": "the EXIF block sits inside a JFXX APP0 segment, "
    "which exifread's JPEG segment walker does not look into",
    "jpg/exif-org/sony-powershota5.jpg": "Canon CIFF metadata (HEAPJPGM in APP0), "
    "a format exifread does not read",
    "jpg/tests/30-type_error.jpg": "its Exif IFD pointer is corrupt, so exifread finds no Exif "
    "IFD; ExifTool's value (ending in Z) comes from XMP",
}

# exifread 3.5.1 loops forever on this: a HEIC box whose 64-bit size is 0 ends where it starts,
# so its box walker seeks back to the same box again and again.
HANGING_HEIC = b"\x00\x00\x00\x10ftypheic\x00\x00\x00\x00" + b"\x00\x00\x00\x01free" + b"\x00" * 8


def make_jpeg(
    path: Path | bytes,
    original: str | None = None,
    digitized: str | None = None,
    modified: str | None = None,
) -> bytes:
    """Write a small JPEG with the given EXIF date strings; return its path as bytes."""
    image_exif = Image.Exif()
    image_exif[0x010F] = "Canon"
    if modified is not None:
        image_exif[0x0132] = modified
    exif_ifd = image_exif.get_ifd(0x8769)
    if original is not None:
        exif_ifd[0x9003] = original
    if digitized is not None:
        exif_ifd[0x9004] = digitized
    exif_ifd[0x8827] = 400
    path = os.fsencode(path)
    with open(path, "wb") as file:
        Image.new("RGB", (32, 24), (90, 60, 30)).save(
            file, format="JPEG", exif=image_exif.tobytes()
        )
    return path


def child_pids() -> set[int]:
    """Return the pids of this process's children (Linux /proc)."""
    pids: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        pids.update(int(pid) for pid in (task / "children").read_text().split())
    return pids


@pytest.fixture(scope="module")
def reader():
    with ExifReader(timeout=5.0) as shared:
        yield shared


@pytest.fixture(scope="module")
def samples() -> Path:
    if not (SAMPLES / "exiftool-dates.csv").is_file():
        pytest.skip(f"EXIF sample corpus not found at {SAMPLES} (set ARCHIVEKEEPER_EXIF_SAMPLES "
                    "to a folder holding exiftool-dates.csv)")
    return SAMPLES


@pytest.fixture(scope="module")
def oracle(samples) -> dict[str, str]:
    """Sample path (relative) -> ExifTool's DateTimeOriginal ('' when it found none)."""
    with open(samples / "exiftool-dates.csv", newline="", encoding="utf-8") as file:
        return {row["SourceFile"]: row["DateTimeOriginal"] for row in csv.DictReader(file)}


@pytest.fixture
def photo(tmp_path) -> bytes:
    return make_jpeg(tmp_path / "IMG_0001.jpg", original="2024:05:12 14:03:59")


# --- parse_exif_datetime -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024:05:12 14:03:59", datetime(2024, 5, 12, 14, 3, 59)),
        ("2024:05:12 14:03:59\x00\x00", datetime(2024, 5, 12, 14, 3, 59)),
        ("  2024:05:12 14:03:59  ", datetime(2024, 5, 12, 14, 3, 59)),
        ("2024-05-12 14:03:59", datetime(2024, 5, 12, 14, 3, 59)),
        ("2024-05-12T14:03:59", datetime(2024, 5, 12, 14, 3, 59)),
        ("2024:05:12 14:03", datetime(2024, 5, 12, 14, 3)),
        ("2024:05:12", datetime(2024, 5, 12)),
        ("2013:07:05 03:18:27Z", datetime(2013, 7, 5, 3, 18, 27)),
        ("2008:03:15 09:52:01-04:00", datetime(2008, 3, 15, 9, 52, 1)),
        ("2024:05:12 14:03:59.25", datetime(2024, 5, 12, 14, 3, 59)),
        ("0000:00:00 00:00:00", None),
        ("    :  :     :  :  ", None),
        ("", None),
        ("\x00" * 20, None),
        ("2024:13:01 10:00:00", None),
        ("2024:02:30 10:00:00", None),
        ("2024:05:12 25:00:00", None),
        ("2024:05:12 14:03:59 and more", None),
        ("not a date", None),
    ],
)
def test_parse_exif_datetime_reads_the_exif_format_and_refuses_junk(text, expected):
    assert parse_exif_datetime(text) == expected


def test_parse_exif_datetime_returns_none_for_non_text():
    assert parse_exif_datetime(b"2024:05:12 14:03:59") is None  # type: ignore[arg-type]
    assert parse_exif_datetime(None) is None  # type: ignore[arg-type]


@settings(max_examples=200)
@given(st.text())
def test_parse_exif_datetime_never_raises(text):
    assert parse_exif_datetime(text) is None or isinstance(parse_exif_datetime(text), datetime)


@settings(max_examples=200)
@given(st.datetimes(min_value=datetime(1, 1, 1)).map(lambda moment: moment.replace(microsecond=0)))
def test_parse_exif_datetime_round_trips_every_exif_formatted_moment(moment):
    text = (
        f"{moment.year:04d}:{moment.month:02d}:{moment.day:02d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    assert parse_exif_datetime(text) == moment


# --- against ExifTool on real camera files ---------------------------------------------------


def test_read_dates_agrees_with_exiftool_on_every_sample_file(samples, oracle, reader):
    found = reader.read_dates(os.fsencode(samples / rel) for rel in oracle)
    wrong = {}
    for rel, exiftool_says in oracle.items():
        expected = (
            datetime.strptime(exiftool_says[:19], "%Y:%m:%d %H:%M:%S") if exiftool_says else None
        )
        if found[os.fsencode(samples / rel)] != expected and rel not in DISAGREEMENTS:
            wrong[rel] = (exiftool_says, found[os.fsencode(samples / rel)])
    assert wrong == {}


def test_every_listed_disagreement_still_disagrees(samples, oracle, reader):
    found = reader.read_dates(os.fsencode(samples / rel) for rel in DISAGREEMENTS)
    for rel in DISAGREEMENTS:
        assert oracle[rel], rel
        assert found[os.fsencode(samples / rel)] is None, rel


def test_the_samples_cover_every_format_exifread_reads(samples, oracle, reader):
    dated = reader.read_dates(os.fsencode(samples / rel) for rel in oracle if oracle[rel])
    suffixes = {Path(os.fsdecode(path)).suffix.lower() for path, when in dated.items() if when}
    assert {".jpg", ".dng", ".arw", ".heic", ".avif", ".jxl"} <= suffixes


def test_read_dates_says_which_tag_the_date_came_from(samples, reader):
    path = os.fsencode(samples / "jpg" / "Canon_40D.jpg")
    assert reader.read_tagged_dates([path]) == {
        path: ExifDate(datetime(2008, 5, 30, 15, 56, 1), "EXIF DateTimeOriginal")
    }


def test_every_sample_file_including_broken_ones_gives_none_or_a_date_in_process(samples):
    paths = sorted(path for path in samples.rglob("*") if path.is_file())
    assert len(paths) > 70
    for path in paths:
        assert isinstance(read_date_inprocess(os.fsencode(path)), datetime | None), path


def test_every_sample_file_gives_none_or_a_date_through_the_worker(samples, reader):
    paths = [os.fsencode(path) for path in sorted(samples.rglob("*")) if path.is_file()]
    found = reader.read_dates(paths)
    assert list(found) == paths
    assert all(isinstance(when, datetime | None) for when in found.values())


# --- which tag ----------------------------------------------------------------------------------


def test_digitized_date_is_used_when_there_is_no_original(tmp_path, reader):
    path = make_jpeg(tmp_path / "scan.jpg", digitized="2019:01:02 03:04:05")
    assert reader.read_tagged_dates([path]) == {
        path: ExifDate(datetime(2019, 1, 2, 3, 4, 5), "EXIF DateTimeDigitized")
    }


def test_original_date_wins_over_digitized_and_modified(tmp_path, reader):
    path = make_jpeg(
        tmp_path / "a.jpg",
        original="2020:06:01 12:00:00",
        digitized="2021:01:01 00:00:00",
        modified="2022:01:01 00:00:00",
    )
    assert reader.read_tagged_dates([path])[path] == ExifDate(
        datetime(2020, 6, 1, 12), "EXIF DateTimeOriginal"
    )


def test_modified_date_alone_is_not_a_shoot_date(tmp_path, reader):
    path = make_jpeg(tmp_path / "edited.jpg", modified="2022:01:01 00:00:00")
    assert reader.read_dates([path]) == {path: None}


def test_zeroed_original_date_gives_none(tmp_path, reader):
    path = make_jpeg(tmp_path / "zero.jpg", original="0000:00:00 00:00:00")
    assert reader.read_dates([path]) == {path: None}


# --- broken files and odd paths ------------------------------------------------------------------


def test_truncated_jpeg_gives_none_or_its_real_date(samples, tmp_path, reader):
    original = samples / "jpg" / "Canon_40D.jpg"
    data = original.read_bytes()
    halves = [tmp_path / "first-half.jpg", tmp_path / "tiny.jpg"]
    halves[0].write_bytes(data[: len(data) // 2])
    halves[1].write_bytes(data[:300])
    found = reader.read_dates(os.fsencode(path) for path in halves)
    assert set(found.values()) <= {None, datetime(2008, 5, 30, 15, 56, 1)}


def test_random_bytes_and_empty_files_give_none(tmp_path, reader):
    noise = tmp_path / "noise.jpg"
    noise.write_bytes(random.Random(7).randbytes(200_000))
    jpeg_header_then_noise = tmp_path / "header.jpg"
    jpeg_header_then_noise.write_bytes(b"\xff\xd8\xff\xe1" + random.Random(8).randbytes(5000))
    empty = tmp_path / "empty.jpg"
    empty.touch()
    paths = [os.fsencode(path) for path in (noise, jpeg_header_then_noise, empty)]
    assert reader.read_dates(paths) == dict.fromkeys(paths)


def test_raw_formats_exifread_cannot_parse_give_none(tmp_path, photo, reader):
    jpeg = Path(os.fsdecode(photo)).read_bytes()
    cr3 = tmp_path / "IMG_0001.CR3"  # ISO-BMFF with brand "crx "
    cr3.write_bytes(b"\x00\x00\x00\x18ftypcrx \x00\x00\x00\x01crx isom" + b"\x00" * 64 + jpeg)
    raf = tmp_path / "DSCF0001.RAF"  # Fujifilm header, then the embedded JPEG preview
    raf.write_bytes(b"FUJIFILMCCD-RAW 0201FF383501" + b"\x00" * 72 + jpeg)
    paths = [os.fsencode(cr3), os.fsencode(raf), photo]
    assert reader.read_dates(paths) == {
        paths[0]: None,
        paths[1]: None,
        photo: datetime(2024, 5, 12, 14, 3, 59),
    }


def test_directory_gives_none(tmp_path, reader):
    inside = make_jpeg(tmp_path / "a.jpg", original="2020:01:01 00:00:00")
    assert reader.read_dates([os.fsencode(tmp_path), inside]) == {
        os.fsencode(tmp_path): None,
        inside: datetime(2020, 1, 1),
    }


def test_symlink_to_a_dated_photo_is_not_followed(tmp_path, photo, reader):
    link = os.fsencode(tmp_path / "link.jpg")
    os.symlink(photo, link)
    assert read_date_inprocess(link) is None
    assert reader.read_dates([link, photo]) == {link: None, photo: datetime(2024, 5, 12, 14, 3, 59)}


@pytest.mark.timeout(20)
def test_fifo_gives_none_without_blocking(tmp_path, photo):
    fifo = os.fsencode(tmp_path / "pipe.jpg")
    os.mkfifo(fifo)
    assert read_date_inprocess(fifo) is None
    started = time.monotonic()
    with ExifReader(timeout=5.0) as own:
        assert own.read_dates([fifo, photo]) == {
            fifo: None,
            photo: datetime(2024, 5, 12, 14, 3, 59),
        }
    assert time.monotonic() - started < 5.0  # answered, not killed at the timeout


def test_name_with_invalid_utf8_and_newline_is_read(tmp_path, photo, reader):
    odd = os.fsencode(tmp_path) + b"/bad\xff\xfe name\nwith newline.jpg"
    shutil.copyfile(photo, odd)
    assert reader.read_dates([odd]) == {odd: datetime(2024, 5, 12, 14, 3, 59)}


def test_missing_file_empty_path_and_nul_path_give_none(tmp_path, photo, reader):
    paths = [os.fsencode(tmp_path / "gone.jpg"), b"", b"a\0b.jpg", photo]
    assert reader.read_dates(paths) == {
        paths[0]: None,
        b"": None,
        b"a\0b.jpg": None,
        photo: datetime(2024, 5, 12, 14, 3, 59),
    }


def test_relative_paths_are_read_from_the_current_directory(tmp_path, photo, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with ExifReader() as own:
        assert own.read_dates([b"IMG_0001.jpg"]) == {
            b"IMG_0001.jpg": datetime(2024, 5, 12, 14, 3, 59)
        }


def test_duplicate_paths_are_answered_once_in_first_seen_order(tmp_path, photo, reader):
    other = make_jpeg(tmp_path / "b.jpg", original="2001:02:03 04:05:06")
    found = reader.read_dates([photo, other, photo])
    assert list(found) == [photo, other]
    assert found[other] == datetime(2001, 2, 3, 4, 5, 6)


# --- size cap -------------------------------------------------------------------------------------


def test_size_cap_hides_exif_beyond_it(photo):
    assert read_date_inprocess(photo, size_cap=100) is None
    assert read_date_inprocess(photo, size_cap=os.path.getsize(photo)) == datetime(
        2024, 5, 12, 14, 3, 59
    )


def test_file_bigger_than_the_cap_is_read_up_to_the_cap(tmp_path, photo):
    big = tmp_path / "big.jpg"
    big.write_bytes(Path(os.fsdecode(photo)).read_bytes() + b"\0" * 3_000_000)
    assert read_date_inprocess(os.fsencode(big), size_cap=1_000_000) == datetime(
        2024, 5, 12, 14, 3, 59
    )


def test_capped_reader_never_reads_past_the_cap(tmp_path):
    content = bytes(range(256)) * 40
    data = tmp_path / "data"
    data.write_bytes(content)
    with open(data, "rb") as file:
        capped = exif._CappedReader(file, 1000)
        assert capped.read() == content[:1000]
        capped.seek(990)
        assert capped.read(4_000_000_000) == content[990:1000]
        capped.seek(5000)
        assert capped.read(10) == b""
        assert capped.tell() == 5000


# --- workers: batching, hangs, crashes --------------------------------------------------------------


def test_two_workers_read_many_files_like_one(tmp_path):
    paths = [
        make_jpeg(
            tmp_path / f"IMG_{n:04d}.jpg", original=f"2023:03:04 10:{n // 60:02d}:{n % 60:02d}"
        )
        for n in range(600)
    ]
    with ExifReader(workers=2) as two:
        found = two.read_dates(paths)
    assert list(found) == paths
    assert [found[path] for path in paths] == [
        datetime(2023, 3, 4, 10, n // 60, n % 60) for n in range(600)
    ]


def test_reads_from_a_thread_of_a_threaded_process(photo):
    found: dict = {}
    stop = threading.Event()
    busy = threading.Thread(target=stop.wait)  # a daemon has other threads running
    busy.start()
    with ExifReader() as own:
        reading = threading.Thread(target=lambda: found.update(own.read_dates([photo])))
        reading.start()
        reading.join(30)
    stop.set()
    busy.join()
    assert found == {photo: datetime(2024, 5, 12, 14, 3, 59)}


def test_no_worker_runs_before_the_first_read_nor_after_close(photo):
    before = child_pids()
    own = ExifReader()
    assert child_pids() == before
    own.read_dates([photo])
    assert len(child_pids() - before) == 1
    own.close()
    assert child_pids() == before


@pytest.mark.timeout(60)
def test_hanging_file_costs_the_timeout_is_logged_and_the_rest_is_read(tmp_path):
    before = make_jpeg(tmp_path / "before.jpg", original="2010:01:01 10:00:00")
    hanging = os.fsencode(tmp_path) + b"/loop\xff\n.heic"
    with open(hanging, "wb") as file:
        file.write(HANGING_HEIC)
    after = [
        make_jpeg(tmp_path / f"after{n}.jpg", original=f"2011:01:01 10:00:0{n}") for n in range(3)
    ]
    with ExifReader(timeout=1.0) as own:
        own.read_dates([before])  # start-up is not part of the measured cost
        started = time.monotonic()
        with capture_logs() as logs:
            found = own.read_dates([before, hanging, *after])
        elapsed = time.monotonic() - started
    assert found == {
        before: datetime(2010, 1, 1, 10),
        hanging: None,
        **{path: datetime(2011, 1, 1, 10, 0, n) for n, path in enumerate(after)},
    }
    assert 1.0 <= elapsed < 4.0
    assert logs == [
        {
            "event": "exif_timeout",
            "path": os.fsdecode(tmp_path) + "/loop\\xff\n.heic",
            "timeout": 1.0,
            "log_level": "warning",
        }
    ]


def crash_on(name: bytes):
    """Return a _worker_command that runs the real worker, made to segfault on files called
    `name`."""

    def command(size_cap: int) -> list[str]:
        code = (
            "import os, signal, sys\n"
            "import archivekeeper.index.exif as worker\n"
            "real = worker._read_exif_date\n"
            "def read(path, cap):\n"
            f"    if os.path.basename(path) == {name!r}:\n"
            "        os.kill(os.getpid(), signal.SIGSEGV)\n"
            "    return real(path, cap)\n"
            "worker._read_exif_date = read\n"
            "worker._serve(int(sys.argv[1]))\n"
        )
        return [sys.executable, "-c", code, str(size_cap)]

    return command


def test_crashed_worker_is_logged_replaced_and_the_rest_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(exif, "_worker_command", crash_on(b"crash.jpg"))
    paths = [
        make_jpeg(tmp_path / name, original=f"2012:02:0{n + 1} 00:00:00")
        for n, name in enumerate(["a.jpg", "crash.jpg", "b.jpg", "crash.jpg2"])
    ]
    with ExifReader() as own, capture_logs() as logs:
        found = own.read_dates(paths)
    assert found == {
        paths[0]: datetime(2012, 2, 1),
        paths[1]: None,
        paths[2]: datetime(2012, 2, 3),
        paths[3]: datetime(2012, 2, 4),
    }
    assert logs == [
        {
            "event": "exif_worker_died",
            "path": os.fsdecode(paths[1]),
            "status": -signal.SIGSEGV,
            "log_level": "warning",
        }
    ]


def test_worker_that_cannot_start_gives_none_and_an_error(photo, monkeypatch):
    monkeypatch.setattr(exif, "_worker_command", lambda cap: [sys.executable, "-c", "exit(3)"])
    with ExifReader() as own, capture_logs() as logs:
        assert own.read_dates([photo]) == {photo: None}
    assert [(log["event"], log["status"]) for log in logs] == [("exif_worker_unavailable", 3)]


def test_worker_that_cannot_be_spawned_gives_none_and_an_error(photo, monkeypatch):
    monkeypatch.setattr(exif, "_worker_command", lambda cap: ["/nonexistent/python"])
    with ExifReader() as own, capture_logs() as logs:
        assert own.read_dates([photo]) == {photo: None}
    assert [log["event"] for log in logs] == ["exif_worker_unavailable"]


@pytest.mark.timeout(30)
def test_worker_stuck_in_a_loop_exits_when_its_parent_dies(tmp_path):
    hanging = tmp_path / "loop.heic"
    hanging.write_bytes(HANGING_HEIC)
    parent_code = (
        "import os, sys\n"
        "from archivekeeper.index.exif import _Worker\n"
        "worker = _Worker(1000)\n"
        "worker.send([sys.argv[1].encode()], b'/')\n"
        "assert os.read(worker.from_worker, 100) == b'ready\\n'\n"
        "print(worker.proc.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    parent = subprocess.run(
        [sys.executable, "-c", parent_code, str(hanging)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the orphan keeps its copy: don't wait for it to close
        check=True,
    )
    orphan = int(parent.stdout)
    try:
        pidfd = os.pidfd_open(orphan)
    except ProcessLookupError:
        return  # already gone
    try:
        exited = select.select([pidfd], [], [], 10.0)[0] == [pidfd]
        if not exited:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        assert exited, "the orphaned worker still runs"
    finally:
        os.close(pidfd)


def test_reader_refuses_nonsense_settings():
    for settings_ in ({"timeout": 0}, {"size_cap": 0}, {"workers": 0}):
        with pytest.raises(ValueError, match="ExifReader needs"):
            ExifReader(**settings_)
