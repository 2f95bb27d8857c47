"""A scan writes in short transactions: other writers get the index within a second while a
scan walks; a volume going away mid-walk retires nothing; a scan killed part-way, stopped, or
limited to some folders leaves an index from which the next scan gives a clean scan's result."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from contextlib import contextmanager
from datetime import date, datetime

import pytest
from conftest import BIN

from archivekeeper.core import naming
from archivekeeper.index import scanner
from archivekeeper.index.store import Store
from archivekeeper.index.volumes import probe

OLD = time.time() - 3 * 86400
PATTERNS = ("{date} {customer}", "{date}_{customer}_{type}", "{customer}/{date} {type}")


def make_shoots(volume, count: int, files: int = 10, start: int = 0) -> list[str]:
    """`count` shoots of `files` empty files each, with folder mtimes a quick scan trusts."""
    names = []
    for n in range(start, start + count):
        rel = f"2020-{n % 12 + 1:02d}-{n % 28 + 1:02d} Customer {n}"
        base = volume / rel / "RAW"
        base.mkdir(parents=True)
        for i in range(files):
            (base / f"IMG_{i}.CR2").touch()
        for path in (base, base.parent):
            os.utime(path, (OLD, OLD))
        names.append(rel)
    return names


def volume_status(studio, name: str):
    store = Store(studio.state)
    recorded = dict(store.db.execute("SELECT name, volume_id FROM volumes").fetchall())
    store.close()
    vol = type("V", (), {"name": name, "path": studio.volumes[name], "removable": True})
    status = probe([vol], recorded)[0]
    assert status.online
    return status


def run_scan(studio, store, name="studio", full=False, **kwargs):
    patterns = [naming.compile_pattern(p) for p in PATTERNS]
    return scanner.scan([volume_status(studio, name)], store, patterns, full=full,
                        today=date.today(), now=datetime.now().astimezone(), **kwargs)


def index_rows(state) -> dict:
    """Every shoot as the index holds it (files included), with the unrecognised folders."""
    db = sqlite3.connect(state / "index.sqlite")
    shoots = {(r[0], r[1]): r[2:] for r in db.execute(
        "SELECT s.volume, s.path, s.customer, s.date, s.date_source, s.files, s.bytes, s.state, "
        "s.incomplete, s.missing_full_scans, s.first_seen, f.count, f.relpaths, f.sizes "
        "FROM shoots s LEFT JOIN shoot_files f ON f.shoot_id = s.id")}
    dirs = sorted(db.execute("SELECT d.volume, d.relpath, d.mtime_ns, s.path FROM dirs d "
                             "JOIN shoots s ON s.id = d.shoot_id"))
    unrecognised = sorted(db.execute("SELECT volume, relpath, reason FROM unrecognised"))
    db.close()
    return {"shoots": shoots, "dirs": dirs, "unrecognised": unrecognised}


def assert_every_listing_whole(state) -> None:
    """No shoot row says more or fewer files than its stored list holds."""
    db = sqlite3.connect(state / "index.sqlite")
    rows = db.execute("SELECT s.path, s.files, f.count FROM shoots s "
                      "LEFT JOIN shoot_files f ON f.shoot_id = s.id").fetchall()
    db.close()
    assert rows and all(files == count for _, files, count in rows), rows


@contextmanager
def timed_transactions(store: Store, spans: list[float]):
    """Record how long each of the store's transactions held the write lock."""
    original = store.transaction

    @contextmanager
    def timed():
        with original() as db:
            start = time.perf_counter()
            yield db
        spans.append(time.perf_counter() - start)
    store.transaction = timed
    try:
        yield spans
    finally:
        store.transaction = original


def test_another_process_writes_while_a_scan_walks(studio):
    """Between any two shoots a scan holds no lock: `hold add` from the installed CLI, run from
    the scan's own progress callback (so, mid-walk by construction), completes at once; and no
    transaction of the scan holds the lock for as long as a second."""
    studio.init_volumes()
    make_shoots(studio.volumes["studio"], 600)
    store = Store(studio.state)
    env = {**os.environ, **studio.clock_env, "ARCHIVEKEEPER_CONFIG": str(studio.config)}
    added, spans = [], []

    def progress(n):
        if len(added) < 3:
            result = subprocess.run(
                [str(BIN), "hold", "add", "--customer", "Customer 1", "--kind", "other",
                 "--reason", f"from a terminal {len(added)}", "--force"],
                capture_output=True, text=True, env=env, timeout=60)
            added.append((result.returncode, result.stderr))

    with timed_transactions(store, spans):
        summary = run_scan(studio, store, progress=progress)
    store.close()
    assert summary.shoots == 600 and not summary.aborted
    assert added == [(0, "")] * 3
    assert len(spans) > 3 and max(spans) < 1.0, (len(spans), max(spans))
    assert len(studio.json("hold", "list")["holds"]) == 3


def test_writers_with_a_one_second_busy_timeout_never_fail_during_a_scan(studio):
    """A writer on its own connection, busy timeout 1 s, inserting over and over while the scan
    runs in this thread: every attempt succeeds."""
    import threading

    studio.init_volumes()
    make_shoots(studio.volumes["studio"], 400)
    store = Store(studio.state)
    done, failures, writes = threading.Event(), [], []

    def writer():
        db = sqlite3.connect(studio.state / "index.sqlite", timeout=1, isolation_level=None)
        while not done.is_set():
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute("INSERT INTO uses (customer_key, shoot_date, shoot_type, at, reason) "
                           "VALUES ('x', '2020-01-01', NULL, '2020-01-01', 'test')")
                db.execute("COMMIT")
                writes.append(1)
            except sqlite3.OperationalError as exc:
                failures.append(str(exc))
                if db.in_transaction:
                    db.execute("ROLLBACK")
        db.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        summary = run_scan(studio, store, full=True)
    finally:
        done.set()
        thread.join()
    store.close()
    assert summary.shoots == 400
    assert failures == [] and writes


@pytest.mark.parametrize("when", ["listing", "unchanged"])
@pytest.mark.parametrize("how", ["marker removed", "another drive's marker"])
def test_a_volume_gone_mid_walk_retires_nothing(studio, how, when):
    """The marker goes after some batches were written (a full scan listing new shoots), or
    while a quick scan passes unchanged shoots (nothing to write but the retiring)."""
    studio.removable.add("studio")
    studio.write_config()
    studio.init_volumes()
    volume = studio.volumes["studio"]
    names = make_shoots(volume, 300)
    studio.ok("scan")
    before = {k: v["state"] for k, v in studio.shoots().items()}
    assert set(before.values()) == {"online"} and len(before) == 300
    # the next scan has shoots to retire (gone) and maybe to list (new); the marker goes mid-walk
    for rel in names[:20]:
        for dirpath, _, files in os.walk(volume / rel, topdown=False):
            for f in files:
                os.remove(os.path.join(dirpath, f))
            os.rmdir(dirpath)
    os.utime(volume, (OLD, OLD))
    if when == "listing":
        make_shoots(volume, 300, start=1000)
    marker = volume / ".archivekeeper" / "volume.json"
    calls = []
    at_call = 450 if when == "listing" else 100  # listing: after two batches were written

    def progress(n):
        calls.append(n)
        if len(calls) == at_call:
            if how == "marker removed":
                marker.unlink()
            else:
                marker.write_text(json.dumps({"id": "another-drive", "name": "studio"}))

    store = Store(studio.state)
    summary = run_scan(studio, store, full=when == "listing", progress=progress)
    store.close()
    assert summary.aborted == ["studio"] and len(calls) >= at_call
    db = sqlite3.connect(studio.state / "index.sqlite")
    states = dict(db.execute("SELECT path, state FROM shoots").fetchall())
    db.close()
    assert {n.encode() for n in names} <= set(states)
    assert set(states.values()) == {"online"}  # the 20 gone are not missing
    assert_every_listing_whole(studio.state)


def second_index(studio, name: str):
    """A config like the studio's with its own state_dir: the same volumes indexed apart."""
    config = studio.root / f"{name}.yaml"
    state = studio.root / name
    config.write_text(studio.config.read_text().replace(str(studio.state), str(state)))
    return config, state


def cli(config, *args, env=None):
    return subprocess.run([str(BIN), "--config", str(config), *args], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=300)


def test_a_scan_killed_part_way_then_rescanned_equals_a_clean_scan(studio):
    studio.init_volumes()
    volume = studio.volumes["studio"]
    names = make_shoots(volume, 100)
    clean_config, clean_state = second_index(studio, "clean")
    for config in (studio.config, clean_config):
        assert cli(config, "clock", "accept", env=studio.clock_env).returncode == 0
        assert cli(config, "scan", env=studio.clock_env).returncode == 0
    # work for the next scan: shoots gone (to retire), new ones, an unrecognised folder
    for rel in names[:5]:
        for dirpath, _, files in os.walk(volume / rel, topdown=False):
            for f in files:
                os.remove(os.path.join(dirpath, f))
            os.rmdir(dirpath)
    make_shoots(volume, 400, start=1000)
    (volume / "not a shoot").mkdir()
    killed = cli(studio.config, "scan",
                 env={**studio.clock_env, "ARCHIVEKEEPER_SCAN_CRASH_AFTER": "3"})
    assert killed.returncode == -9, killed.stderr
    after_kill = index_rows(studio.state)
    assert 100 < len(after_kill["shoots"]) < 500  # some batches written, not all
    assert_every_listing_whole(studio.state)
    assert all(row[5] == "online" for row in after_kill["shoots"].values())  # none retired yet
    assert cli(studio.config, "scan", env=studio.clock_env).returncode == 0
    assert cli(clean_config, "scan", env=studio.clock_env).returncode == 0
    assert index_rows(studio.state) == index_rows(clean_state)
    assert sum(row[5] == "missing" for row in index_rows(studio.state)["shoots"].values()) == 5


def shoot_rows(state) -> dict[str, tuple]:
    db = sqlite3.connect(state / "index.sqlite")
    rows = {r[0].decode(): r[1:] for r in db.execute("SELECT path, files, bytes, state FROM shoots")}
    db.close()
    return rows


def test_only_rescans_exactly_the_given_folders(studio):
    studio.init_volumes()
    volume = studio.volumes["studio"]
    a, b, c, d = make_shoots(volume, 4)
    for junk in ("Virtanen Matti/junk", "Korhonen Päivi/junk"):
        (volume / junk).mkdir(parents=True)
    studio.ok("scan")
    assert shoot_rows(studio.state)[a] == (10, 0, "online")
    # a file rewritten in place (no folder mtime changes), a shoot gone, one out of the set
    # changed and one gone, a new shoot in a known container, the unrecognised folder gone
    (volume / a / "RAW" / "IMG_0.CR2").write_bytes(b"x" * 7)
    os.utime(volume / a / "RAW", (OLD, OLD))
    for rel in (b, d):
        for dirpath, _, files in os.walk(volume / rel, topdown=False):
            for f in files:
                os.remove(os.path.join(dirpath, f))
            os.rmdir(dirpath)
    (volume / c / "RAW" / "IMG_new.CR2").write_bytes(b"y")
    new = volume / "Virtanen Matti" / "2024-01-02 wedding"
    new.mkdir()
    (new / "IMG_1.jpg").write_bytes(b"z" * 3)
    for junk in ("Virtanen Matti/junk", "Korhonen Päivi/junk"):
        (volume / junk).rmdir()
    store = Store(studio.state)
    summary = run_scan(studio, store, only={"studio": [f"{a}/RAW".encode(), b.encode(),
                                                        b"Virtanen Matti"]})
    store.close()
    rows = shoot_rows(studio.state)
    assert rows[a] == (10, 7, "online")  # re-listed although its folders kept their mtimes
    assert rows[b][2] == "missing"
    assert rows[c] == (10, 0, "online") and rows[d] == (10, 0, "online")  # not in the set
    assert rows["Virtanen Matti/2024-01-02 wedding"] == (1, 3, "online")
    assert (summary.shoots, summary.new, summary.changed, summary.missing) == (2, 1, 1, 1)
    store = Store(studio.state)
    assert [r["relpath"] for r in store.unrecognised()] == ["Korhonen Päivi/junk".encode()]
    store.close()
    studio.ok("scan")  # the whole volume: now c's new file and d's absence are seen
    rows = shoot_rows(studio.state)
    assert rows[c] == (11, 1, "online") and rows[d][2] == "missing"


def test_only_refuses_a_path_outside_the_volume(studio):
    studio.init_volumes()
    store = Store(studio.state)
    with pytest.raises(ValueError, match="not a folder path inside the volume"):
        run_scan(studio, store, only={"studio": [b"../elsewhere"]})
    store.close()


def test_should_stop_ends_the_scan_cleanly_and_retires_nothing(studio):
    studio.init_volumes()
    volume = studio.volumes["studio"]
    names = make_shoots(volume, 50)
    studio.ok("scan")
    for rel in names[:3]:
        for dirpath, _, files in os.walk(volume / rel, topdown=False):
            for f in files:
                os.remove(os.path.join(dirpath, f))
            os.rmdir(dirpath)
    make_shoots(volume, 250, start=1000)
    calls = []
    store = Store(studio.state)
    summary = run_scan(studio, store, full=True, progress=calls.append,
                       should_stop=lambda: len(calls) >= 150)
    store.close()
    assert summary.stopped and "stopped" in summary.line() and summary.missing == 0
    assert len(calls) == 150  # asked between shoots: none listed after it said stop
    rows = shoot_rows(studio.state)
    assert all(state == "online" for _, _, state in rows.values())
    assert 50 < len(rows) < 300
    assert_every_listing_whole(studio.state)
    studio.ok("scan")
    rows = shoot_rows(studio.state)
    assert len(rows) == 300 and sum(r[2] == "missing" for r in rows.values()) == 3
