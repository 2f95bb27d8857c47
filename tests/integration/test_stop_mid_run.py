"""A stop asked for in the middle of apply or purge (the daemon's SIGTERM): the file operation
under way finishes, no new one starts, nothing is half-moved, the index and the audit agree with
the disk, and the next run finishes the rest.

In-process: ops.apply / ops.purge_trash with a should_stop that says stop once fsops has made N
moves (or unlinks), on a real temp archive of 300 files in 20 shoots.
"""

from __future__ import annotations

import os
import time
from datetime import date, datetime, timedelta

import pytest
from conftest import DUE_RULES, OLD, Studio, at

from archivekeeper import ops
from archivekeeper.act import fsops
from archivekeeper.act.executor import Executor
from archivekeeper.clock import FixedClock
from archivekeeper.index.store import Store
from archivekeeper.session import Session

DUE = [f"2015-03-{day:02d} Asiakas {day}" for day in range(1, 21)]
KEPT = "2025-06-01 Virtanen Matti"
FILES = {f"{kind}/IMG_{n}.{ext}": bytes([n]) * (10 + n)
         for n in range(5) for kind, ext in (("JPEG", "jpg"), ("RAW", "CR2"), ("RAW/sub", "DNG"))}
TOTAL = len(DUE) * len(FILES)  # 300
DAY = date.today()


def noon(day: date) -> FixedClock:
    return FixedClock(datetime(day.year, day.month, day.day, 12).astimezone())


@pytest.fixture
def studio(tmp_path) -> Studio:
    s = Studio(tmp_path, volumes=("studio",), extra=DUE_RULES)
    s.init_volumes()
    for rel in DUE:
        s.shoot("studio", rel, FILES, mtime=OLD)
    s.shoot("studio", KEPT, FILES, mtime=time.time())
    s.ok("scan")
    return s


class CountOps:
    """Counts fsops' moves and unlinks; should_stop says stop once `limit` were made."""

    def __init__(self, monkeypatch, limit: int):
        self.limit, self.made = limit, 0
        for name in ("move_to_trash", "unlink_trash"):
            real = getattr(fsops.VolumeRoot, name)
            monkeypatch.setattr(fsops.VolumeRoot, name, self._counted(real))

    def _counted(self, real):
        def counted(root, *args, **kwargs):
            assert self.made < self.limit, "a file operation started after the stop"
            self.made += 1
            return real(root, *args, **kwargs)
        return counted

    def should_stop(self) -> bool:
        return self.made >= self.limit


def run(studio: Studio, op, day: date, **kwargs):
    session = Session(str(studio.config), clock=noon(day))
    try:
        session.lock()
        return op(session.config, session.store, session.audit, session.clock, **kwargs)
    finally:
        session.close()


def where(studio: Studio) -> dict[str, list[str]]:
    """Every due file of the archive -> where it is: 'place' and/or the trash batches."""
    vol = studio.volumes["studio"]
    trash = vol / ".archivekeeper" / "trash"
    batches = sorted(trash.iterdir()) if trash.is_dir() else []
    return {f"{shoot}/{name}": (["place"] if (vol / shoot / name).is_file() else [])
            + [b.name for b in batches if (b / shoot / name).is_file()]
            for shoot in DUE for name in FILES}


def index_view(studio: Studio) -> tuple[set[str], dict[str, tuple[str, str]]]:
    """(files the index has at their place, {trashed file: (batch, state)}), paths relative to
    the volume."""
    store = Store(studio.state)
    try:
        indexed = set()
        for shoot in DUE:
            row = store.shoot_by_path("studio", shoot.encode())
            if row is not None:  # a shoot wholly trashed is gone from the index after a scan
                indexed |= {os.fsdecode(rel) for rel, *_ in store.file_tuples(row["id"])}
        trashed = {os.fsdecode(rel): (batch, state) for batch, rel, state in store.db.execute(
            "SELECT g.batch, f.relpath, f.state FROM trash_files f "
            "JOIN trash_groups g ON g.id = f.group_id")}
        return indexed, trashed
    finally:
        store.close()


def trash_docs(studio: Studio) -> list[dict]:
    store = Store(studio.state)
    try:
        return ops.trash_docs(store)
    finally:
        store.close()


def assert_disk_and_index_agree(studio: Studio) -> None:
    indexed, trashed = index_view(studio)
    for rel, found in where(studio).items():
        assert len(found) == 1, (rel, found)  # never both in place and in trash, nor neither
        if found == ["place"]:
            assert rel in indexed and rel not in trashed, rel
        else:
            assert rel not in indexed and trashed.get(rel) == (found[0], "trashed"), rel


def audit_events(studio: Studio, event: str) -> list[dict]:
    session = Session(str(studio.config), clock=noon(DAY))
    try:
        return [r for r in session.audit.records() if r["event"] == event]
    finally:
        session.close()


def assert_audit_verifies(studio: Studio) -> None:
    result = studio.cli("audit", "verify")
    assert result.returncode == 0, result.stdout + result.stderr


def age_folders(studio: Studio) -> None:
    """Time passes: the folders the stopped run changed are no longer too fresh to trust."""
    for dirpath, dirnames, _ in os.walk(studio.volumes["studio"]):
        dirnames[:] = [d for d in dirnames if d != ".archivekeeper"]
        os.utime(dirpath, (OLD, OLD))


# 1: the first file; 7: inside the first shoot; 15: a shoot's last file; 152: mid-way, in the
# 11th shoot; 299: the last shoot's second-to-last file
@pytest.mark.parametrize("limit", [1, 7, 15, 152, 299])
def test_apply_stopped_mid_run_leaves_nothing_half_moved_and_the_next_apply_finishes(
        studio, monkeypatch, limit):
    counter = CountOps(monkeypatch, limit)
    verified = []
    real_verify = Executor._shoot_changed
    monkeypatch.setattr(Executor, "_shoot_changed",
                        lambda self, item, root: verified.append(item) or real_verify(
                            self, item, root))
    _, result = run(studio, ops.apply, DAY, dry_run=False, should_stop=counter.should_stop)
    assert result.stopped
    assert (counter.made, result.moved_files) == (limit, limit)
    # prompt: no shoot after the one the stop came in is even checked (a big one takes long)
    assert len(verified) == limit // len(FILES) + 1
    assert result.purged_files == 0
    assert sum(found != ["place"] for found in where(studio).values()) == limit
    assert_disk_and_index_agree(studio)
    assert_audit_verifies(studio)
    [stopped] = audit_events(studio, "run_stopped")
    assert (stopped["step"], stopped["files"]) == ("trash", limit)
    # the audit's trash_done records account for exactly the files moved
    assert sum(r["files"] for r in audit_events(studio, "trash_done")) == limit

    # the next apply (the daemon scans first) finishes the rest
    monkeypatch.undo()
    age_folders(studio)
    studio.ok("scan")
    _, rest = run(studio, ops.apply, DAY, dry_run=False)
    assert not rest.stopped
    assert rest.moved_files == TOTAL - limit, rest.skipped
    assert all(found and found != ["place"] for found in where(studio).values())
    assert_disk_and_index_agree(studio)
    for name, data in FILES.items():
        assert (studio.volumes["studio"] / KEPT / name).read_bytes() == data
    assert_audit_verifies(studio)


def test_a_group_stopped_part_way_restores(studio, monkeypatch):
    counter = CountOps(monkeypatch, 7)  # the first shoot: 7 of its 15 files moved
    run(studio, ops.apply, DAY, dry_run=False, should_stop=counter.should_stop)
    monkeypatch.undo()
    [doc] = trash_docs(studio)
    assert (doc["path"], doc["files"]) == (DUE[0], 7)
    result = run(studio, ops.restore_trash, DAY, group_id=doc["id"])
    assert result.restored_files == 7 and not result.skipped
    for name, data in FILES.items():
        assert (studio.volumes["studio"] / DUE[0] / name).read_bytes() == data
    assert not (studio.volumes["studio"] / ".archivekeeper" / "trash" / DUE[0]).exists()
    assert_audit_verifies(studio)


@pytest.mark.parametrize("limit", [1, 8, 151])
def test_purge_stopped_mid_run_keeps_the_rest_in_trash_and_the_next_purge_finishes(
        studio, monkeypatch, limit):
    _, applied = run(studio, ops.apply, DAY, dry_run=False)
    assert applied.moved_files == TOTAL
    later = DAY + timedelta(days=31)
    studio.clock_env = at(later)
    counter = CountOps(monkeypatch, limit)
    result = run(studio, ops.purge_trash, later, should_stop=counter.should_stop)
    assert result.stopped
    assert (counter.made, result.purged_files) == (limit, limit)
    found = where(studio)
    assert sum(not f for f in found.values()) == limit  # purged for good
    assert all(len(f) <= 1 and f != ["place"] for f in found.values())
    _, trashed = index_view(studio)
    assert sum(state == "purged" for _, state in trashed.values()) == limit
    for rel, places in found.items():  # what is still in trash is listed as trashed
        assert (trashed[rel][1] == "trashed") == bool(places), rel
    assert_audit_verifies(studio)
    [stopped] = audit_events(studio, "run_stopped")
    assert (stopped["step"], stopped["files"]) == ("purge", limit)

    monkeypatch.undo()
    rest = run(studio, ops.purge_trash, later)
    assert not rest.stopped
    assert rest.purged_files == TOTAL - limit
    assert not any(where(studio).values())
    assert trash_docs(studio) == []
    assert_audit_verifies(studio)


def test_a_stop_during_the_moves_skips_the_purge(studio, monkeypatch):
    run(studio, ops.apply, DAY, dry_run=False)
    age_folders(studio)
    studio.shoot("studio", "2015-04-01 Uusi Asiakas", FILES, mtime=OLD)
    later = DAY + timedelta(days=31)
    studio.clock_env = at(later)
    studio.ok("scan")
    counter = CountOps(monkeypatch, 3)
    _, result = run(studio, ops.apply, later, dry_run=False, should_stop=counter.should_stop)
    assert result.stopped
    assert (result.moved_files, result.purged_files, counter.made) == (3, 0, 3)
    assert all(where(studio).values())  # the expired trash is still there
    [stopped] = audit_events(studio, "run_stopped")
    assert (stopped["step"], stopped["files"]) == ("trash", 3)
