"""Shoot listing in walker processes gives the very index listing in-process gives, and a
failing worker costs nothing but time."""

from __future__ import annotations

import os
import sqlite3
import sys

import pytest
from conftest import OLD

from archivekeeper import walker
from archivekeeper.filelist import DamagedList, pack_files, unpack_files
from archivekeeper.store import Store
from archivekeeper.volumes import MARKER


def _long_chain(top: str, levels: int = 20) -> None:
    """Folders whose full path passes PATH_MAX (4096): the deepest cannot be listed."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    name = "x" * 250
    try:
        for _ in range(levels):
            os.mkdir(name, dir_fd=fd)
            nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        os.close(os.open("deep.jpg", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


@pytest.fixture
def archive(studio, tmp_path):
    """80 shoots in every layout, and one of every oddity a listing meets."""
    for i in range(80):
        layout = (f"2019-03-{i % 28 + 1:02d} Asiakas {i}", f"20190401_Lahti_{i}_wedding",
                  f"Korhonen Päivi {i}/12.05.2019 passport", f"Arkisto/Vanha {i}")[i % 4]
        files = {f"JPEG/IMG_{n}.jpg": b"j" * (n + i) for n in range(i % 5)}
        files.update({f"RAW/IMG_{n}.CR2": b"r" * 3 for n in range(2)})
        studio.shoot("studio", layout, files, mtime=OLD)
    odd = studio.shoot("studio", "2019-06-01 Outo Kansio", {
        b"line1\nline2.jpg": b"a", b"raw\xfe.CR2": b"bb", b"noext": b"c", b"jpg": b"d",
        "Ääkköset.JPEG": b"e"}, mtime=OLD)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"s" * 10)
    os.symlink(outside, odd / "link-out")
    os.symlink(odd, odd / "loop")
    nested = odd / "other-drive"
    (nested / MARKER).parent.mkdir(parents=True)
    (nested / MARKER).write_text("{}")
    (nested / "hidden.jpg").write_bytes(b"h")
    _long_chain(str(odd))
    studio.shoot("studio", "2019-06-02 Tyhjä", {})
    studio.shoot("studio", "Random stuff/notes", {"a.txt": b"t"})
    return studio


def _index(studio) -> dict:
    store = Store(studio.state)
    try:
        shoots = {}
        for row in store.shoots():
            shoot = {k: row[k] for k in row.keys() if k not in ("first_seen", "seen_gen")}
            shoot["file_list"] = store.files_of(row["id"])
            shoots[(row["volume"], row["path"])] = shoot
        dirs = sorted(map(tuple, store.db.execute("SELECT volume, relpath, mtime_ns FROM dirs")))
        return {"shoots": shoots, "dirs": dirs, "unrecognised": [tuple(r) for r in
                                                                  store.unrecognised()]}
    finally:
        store.close()


def test_workers_build_the_same_index_as_listing_in_process(archive, monkeypatch):
    listed_here = []
    in_process = walker.list_shoot

    def counting(*args):
        listed_here.append(args[1])
        return in_process(*args)

    monkeypatch.setattr(walker, "list_shoot", counting)
    monkeypatch.setattr(walker, "WORKERS_FROM", 10**9)
    first = archive.ok("scan").stdout
    alone = _index(archive)
    assert len(listed_here) == 82
    for path in (archive.state / "index.sqlite").parent.glob("index.sqlite*"):
        path.unlink()

    listed_here.clear()
    monkeypatch.setattr(walker, "WORKERS_FROM", 1)
    second = archive.ok("scan").stdout
    assert listed_here == []  # every shoot was listed by a worker
    assert _index(archive) == alone
    assert first == second

    odd = alone["shoots"][("studio", b"2019-06-01 Outo Kansio")]
    assert odd["incomplete"] == 1  # the folder past PATH_MAX could not be listed
    names = {f.relpath.rsplit(b"/", 1)[-1]: f.kind for f in odd["file_list"]}
    assert names[b"line1\nline2.jpg"] == "image"
    assert names[b"raw\xfe.CR2"] == "raw"
    assert (names[b"noext"], names[b"jpg"]) == ("other", "other")
    assert names["Ääkköset.JPEG".encode()] == "image"
    assert names[b"link-out"] == names[b"loop"] == "symlink"
    assert b"secret.jpg" not in names and b"hidden.jpg" not in names


@pytest.fixture
def warnings(monkeypatch) -> list:
    said: list = []
    monkeypatch.setattr(walker, "_warn", lambda event, **fields: said.append((event, fields)))
    return said


def _jobs(studio) -> tuple[walker.Walk, list[tuple[bytes, int]]]:
    root = os.fsencode(studio.volumes["studio"])
    jobs = []
    for i in range(70):
        rel = f"2019-03-{i % 28 + 1:02d} Asiakas {i}"
        studio.shoot("studio", rel, {f"IMG_{n}.jpg": b"x" * n for n in range(i % 7)})
        jobs.append((rel.encode(), os.lstat(root + b"/" + rel.encode()).st_mtime_ns))
    return walker.Walk(root, os.lstat(root).st_dev, 0, os.fsencode(MARKER)), jobs


@pytest.mark.parametrize("worker", [
    "import sys; sys.exit(3)",  # dies at once
    "import sys; sys.stdin.buffer.read(10); sys.stdout.buffer.write(b'garbage')",
    "import marshal, sys; marshal.load(sys.stdin.buffer); marshal.dump([(1, 2)], sys.stdout.buffer)",
])
def test_a_failing_worker_leaves_the_rest_to_this_process(studio, worker, warnings):
    walk, jobs = _jobs(studio)
    expected = [walker.list_shoot(walk, rel, mtime) for rel, mtime in jobs]
    got = list(walker.listings(walk, jobs, 2, command=[sys.executable, "-c", worker]))
    assert got == expected
    assert [w[0] for w in warnings] == ["scan_worker_failed"]


def test_a_worker_that_fails_halfway_loses_no_listing(studio, warnings):
    walk, jobs = _jobs(studio)
    expected = [walker.list_shoot(walk, rel, mtime) for rel, mtime in jobs]
    # answers its first request properly, then dies
    halfway = ("import marshal, sys\nfrom archivekeeper import walker\n"
               "w, jobs = marshal.load(sys.stdin.buffer)\n"
               "marshal.dump([tuple(walker.list_shoot(walker.Walk(*w), r, m)) for r, m in jobs],"
               " sys.stdout.buffer)\nsys.stdout.flush()\nsys.exit(1)\n")
    got = list(walker.listings(walk, jobs, 2, command=[sys.executable, "-c", halfway]))
    assert got == expected
    assert [w[0] for w in warnings] == ["scan_worker_failed"]


def test_file_lists_round_trip_and_damage_is_caught(studio):
    files = [(b"a/z\xff.jpg", 0, -5, 2**64 - 1, "image"), (b"a/b\nc", 2**62, 10**18, 0, "symlink"),
             (b"a/m.xmp", 7, 0, 1, "sidecar")]
    packed = pack_files(files)
    assert unpack_files(*packed) == sorted(files)
    assert unpack_files(*pack_files([])) == []
    count, rel, sizes, mtimes, inodes, kinds = packed
    for damaged in ((count + 1, rel, sizes, mtimes, inodes, kinds),
                    (count, rel + b"\0x", sizes, mtimes, inodes, kinds),
                    (count, rel, sizes[:-1], mtimes, inodes, kinds),
                    (count, rel, sizes, mtimes, inodes, kinds + b"\x09")):
        with pytest.raises(DamagedList):
            unpack_files(*damaged)

    studio.shoot("studio", "2019-06-01 Asiakas")
    studio.ok("scan")
    db = sqlite3.connect(studio.state / "index.sqlite")
    db.execute("UPDATE shoot_files SET sizes = x'00'")
    db.commit()
    db.close()
    result = studio.cli("plan")
    assert result.returncode == 1
    assert "damaged" in result.stderr and "scan --full" in result.stderr
    assert "Traceback" not in result.stderr
    studio.ok("scan", "--full")
    assert studio.run("plan").exit_code == 0


def test_an_index_with_a_row_per_file_is_listed_again(studio):
    studio.shoot("studio", "2019-06-01 Asiakas", mtime=OLD)
    studio.ok("scan")
    db = sqlite3.connect(studio.state / "index.sqlite")
    db.execute("DROP TABLE shoot_files")
    db.execute("CREATE TABLE files (shoot_id INTEGER, relpath BLOB)")
    db.commit()
    db.close()
    studio.ok("scan")  # a quick scan: it would trust the old folder mtimes
    store = Store(studio.state)
    (shoot_id,) = store.db.execute("SELECT id FROM shoots").fetchone()
    assert len(store.files_of(shoot_id)) == 2
    assert not store.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'files'").fetchone()
    store.close()


def test_workers_never_import_code_from_the_current_folder(studio, tmp_path, monkeypatch):
    """A scan started from a folder holding an `archivekeeper` package (a customer's files, say)
    runs this archivekeeper's workers, not that code."""
    trap = tmp_path / "trap"
    flag = tmp_path / "imported"
    for module in ("walker", "exif"):
        (trap / "archivekeeper").mkdir(parents=True, exist_ok=True)
        (trap / "archivekeeper" / "__init__.py").write_text(f"open({str(flag)!r}, 'w')\n")
        (trap / "archivekeeper" / f"{module}.py").write_text(f"open({str(flag)!r}, 'w')\n")
    monkeypatch.chdir(trap)
    monkeypatch.setattr(walker, "WORKERS_FROM", 1)
    listed_here = []
    monkeypatch.setattr(walker, "list_shoot", lambda *a: listed_here.append(a))
    studio.shoot("studio", "2019-06-01 Asiakas")
    studio.ok("scan")
    assert listed_here == []  # listed by a worker
    from archivekeeper.exif import ExifReader

    with ExifReader(workers=1) as reader:
        assert reader.read_dates([os.fsencode(studio.volumes["studio"] / "missing.jpg")])
    assert not flag.exists()
