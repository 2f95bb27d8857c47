"""Shoot listing in walker processes gives the very index listing in-process gives, and a
failing worker costs nothing but time."""

from __future__ import annotations

import os
import sqlite3
import sys

import pytest
from conftest import DUE_RULES, OLD

from archivekeeper.index import walker
from archivekeeper.index.filelist import DamagedList, pack_files, unpack_files
from archivekeeper.index.store import Store
from archivekeeper.index.volumes import MARKER


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
            shoot["file_list"] = store.file_tuples(row["id"])
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
    names = {f[0].rsplit(b"/", 1)[-1]: f[4] for f in odd["file_list"]}
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
                    (0, rel, sizes, mtimes, inodes, kinds),
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


def test_an_index_with_a_row_per_file_is_packed_on_opening(studio):
    studio.shoot("studio", "2019-06-01 Asiakas", mtime=OLD)
    studio.ok("scan")
    store = Store(studio.state)
    (shoot_id,) = store.db.execute("SELECT id FROM shoots").fetchone()
    before = store.file_tuples(shoot_id)
    plan_before = studio.ok("plan").stdout
    store.db.execute("CREATE TABLE files (shoot_id INTEGER NOT NULL, relpath BLOB NOT NULL, "
                     "size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, "
                     "kind TEXT NOT NULL)")
    store.db.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?)",
                         [(shoot_id, *f) for f in before])
    store.db.execute("DELETE FROM shoot_files")
    store.close()
    assert Store(studio.state).file_tuples(shoot_id) == before
    assert studio.ok("plan").stdout == plan_before
    db = sqlite3.connect(studio.state / "index.sqlite")
    assert not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'files'").fetchone()
    db.close()


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
    from archivekeeper.index.exif import ExifReader

    with ExifReader(workers=1) as reader:
        assert reader.read_dates([os.fsencode(studio.volumes["studio"] / "missing.jpg")])
    assert not flag.exists()


@pytest.mark.timeout(120)
def test_long_paths_and_big_answers_never_deadlock_the_pipes(studio):
    """Requests of ~40 KB and answers of ~60 KB each: more than a pipe holds either way."""
    root = os.fsencode(studio.volumes["studio"])
    prefix = b"/".join([b"c" * 250] * 10)
    jobs = []
    for i in range(200):
        rel = prefix + b"/2019-01-01 Shoot %03d" % i
        os.makedirs(root + b"/" + rel)
        for n in range(20):
            open(root + b"/" + rel + b"/IMG_%02d.jpg" % n, "wb").close()
        jobs.append((rel, os.lstat(root + b"/" + rel).st_mtime_ns))
    walk = walker.Walk(root, os.lstat(root).st_dev, 0, os.fsencode(MARKER))
    got = list(walker.listings(walk, jobs, 2))
    assert [listing.dirs[0][0] for listing in got] == [rel for rel, _ in jobs]
    assert all(listing.files[0] == 20 for listing in got)


def test_a_worker_that_cannot_start_leaves_the_listing_here_and_no_process(studio, warnings,
                                                                           monkeypatch):
    walk, jobs = _jobs(studio)
    started = []
    real_popen = walker.subprocess.Popen

    def popen(*args, **kwargs):
        if started:
            raise OSError(11, "Resource temporarily unavailable")
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(walker.subprocess, "Popen", popen)
    expected = [walker.list_shoot(walk, rel, mtime) for rel, mtime in jobs]
    assert list(walker.listings(walk, jobs, 2)) == expected
    assert [w[0] for w in warnings] == ["scan_worker_failed"]
    assert started[0].poll() is not None  # the one that did start was stopped and reaped


@pytest.mark.parametrize("mangle", ["ans[1:]", "ans[::-1]", "[ans[0]] * len(ans)"])
def test_an_answer_for_other_shoots_is_never_stored(studio, warnings, mangle):
    walk, jobs = _jobs(studio)
    expected = [walker.list_shoot(walk, rel, mtime) for rel, mtime in jobs]
    liar = ("import marshal, sys\nfrom archivekeeper import walker\n"
            "w, jobs = marshal.load(sys.stdin.buffer)\n"
            "ans = [tuple(walker.list_shoot(walker.Walk(*w), r, m)) for r, m in jobs]\n"
            f"marshal.dump({mangle}, sys.stdout.buffer)\nsys.stdout.flush()\n")
    got = list(walker.listings(walk, jobs, 2, command=[sys.executable, "-c", liar]))
    assert got == expected
    assert [w[0] for w in warnings] == ["scan_worker_failed"]


def test_workers_import_what_the_scanner_imports(studio, tmp_path, monkeypatch):
    """PYTHONPATH or a package folder must not put anything before the standard library."""
    trap = tmp_path / "site"
    trap.mkdir()
    flag = tmp_path / "imported"
    for module in ("typing", "json", "marshal", "threading"):
        (trap / f"{module}.py").write_text(f"open({str(flag)!r}, 'w')\n")
    monkeypatch.setenv("PYTHONPATH", str(trap))
    monkeypatch.setattr(sys, "path", [*sys.path, str(trap)])
    walk, jobs = _jobs(studio)
    listed_here = []
    monkeypatch.setattr(walker, "list_shoot", lambda *a: listed_here.append(a))
    got = list(walker.listings(walk, jobs, 2))
    assert len(got) == len(jobs) and listed_here == []
    assert not flag.exists()


def test_an_mtime_past_2262_is_indexed_clamped_and_never_moved(studio):
    studio.write_config(DUE_RULES)
    base = studio.shoot("studio", "2015-03-01 Mäkinen Anna", {"a.jpg": b"j", "b.jpg": b"k"},
                        mtime=OLD)
    year_2300 = 10_413_792_000 * 10**9
    os.utime(base / "a.jpg", ns=(year_2300, year_2300))
    os.utime(base, (OLD, OLD))
    empty = studio.shoot("studio", "2015-03-02 Tyhjä", {})
    os.utime(empty, ns=(year_2300, year_2300))  # an empty shoot: its folder's mtime counts
    result = studio.ok("scan")
    assert "scan_mtime_out_of_range" in result.stderr
    shoot = studio.shoots()[("studio", "2015-03-01 Mäkinen Anna")]
    assert shoot["files"] == 2
    assert studio.json("plan")["items"]  # due by its shoot date
    result = studio.ok("apply")
    # the file's real mtime is not the one recorded: the whole shoot counts as changed, kept
    assert "changed since the last scan" in result.stdout + result.stderr
    assert (base / "a.jpg").exists() and (base / "b.jpg").exists()


def test_inodes_past_2_63_survive_apply_and_restore(studio, monkeypatch):
    """FUSE filesystems and some NAS use all 64 bits of an inode number."""
    from archivekeeper.act import fsops

    studio.write_config(DUE_RULES)
    due = "2015-03-01 Mäkinen Anna"
    base = studio.shoot("studio", due, {"a.jpg": b"j" * 10, "b.CR2": b"r" * 5}, mtime=OLD)
    studio.ok("scan")
    db = sqlite3.connect(studio.state / "index.sqlite")
    sid, *cols = db.execute("SELECT shoot_id, count, relpaths, sizes, mtimes, inodes, kinds "
                            "FROM shoot_files").fetchone()
    files = [(r, s, m, i + 2**63, k) for r, s, m, i, k in unpack_files(*cols)]
    db.execute("UPDATE shoot_files SET inodes = ? WHERE shoot_id = ?",
               (pack_files(files)[4], sid))
    db.commit()
    db.close()
    # such filesystems are ones whose inodes are not compared
    monkeypatch.setattr(fsops, "_root_fs_type", lambda fd, dev: "fuseblk")
    studio.ok("apply")
    assert not (base / "a.jpg").exists()
    trashed = studio.json("trash", "list")["items"]
    assert trashed
    studio.ok("trash", "restore", str(trashed[0]["id"]))
    assert (base / "a.jpg").read_bytes() == b"j" * 10
    studio.ok("audit", "verify")


def test_a_damaged_list_with_a_move_cut_short_is_mended_by_a_scan(studio):
    studio.write_config(DUE_RULES)
    due = "2015-03-01 Mäkinen Anna"
    base = studio.shoot("studio", due, {"a.jpg": b"j" * 10, "b.CR2": b"r" * 5}, mtime=OLD)
    studio.ok("scan")
    st = os.lstat(base / "a.jpg")
    batch = "20250101T000000-abcdef"
    trash = studio.volumes["studio"] / ".archivekeeper" / "trash" / batch / due
    trash.mkdir(parents=True)
    os.rename(base / "a.jpg", trash / "a.jpg")  # a move cut short after the rename
    db = sqlite3.connect(studio.state / "index.sqlite")
    gid = db.execute("INSERT INTO trash_groups (batch, volume, shoot_path, customer_key, item_key,"
                     " rule, trashed_at, purge_after) VALUES (?, 'studio', ?, 'k', 'i', 'r', "
                     "'2025-01-01', '2025-02-01')", (batch, due.encode())).lastrowid
    db.execute("INSERT INTO trash_files VALUES (?, ?, ?, ?, ?, 'moving')",
               (gid, f"{due}/a.jpg".encode(), st.st_size, st.st_mtime_ns, st.st_ino))
    db.execute("UPDATE shoot_files SET sizes = x'00'")  # the damage
    db.commit()
    db.close()
    result = studio.cli("scan", "--full")
    assert result.returncode == 0, result.stderr
    shoot = studio.shoots()[("studio", due)]
    assert (shoot["files"], shoot["incomplete"]) == (1, False)
    assert studio.cli("plan").returncode == 0
