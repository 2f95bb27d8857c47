"""Attempts to break `archivekeeper daemon` (docs/daemon.md) as a real subprocess. Each test
that fails on the product as it is is marked xfail(strict=True) with the defect it shows; those
found so far are fixed, each test saying what it was."""

from __future__ import annotations

import json
import sqlite3

import pytest
import test_daemon
from conftest import DUE_RULES, OLD, Studio
from test_daemon import TEST_CONFIG, cli_shoots, poll_until

run_daemon = test_daemon.run_daemon


@pytest.fixture
def studio(tmp_path):
    s = Studio(tmp_path, volumes=("studio", "backup-1"), removable=("backup-1",),
               extra=TEST_CONFIG + DUE_RULES)
    s.init_volumes()
    return s


def test_sigkill_mid_apply_then_restart_every_file_in_place_or_in_trash(studio, run_daemon):
    files = {f"IMG_{i:03d}.jpg": b"x" * (i + 1) for i in range(40)}
    shoot = studio.shoot("studio", "2015-01-01 Vanha Asiakas", files, mtime=OLD)
    first = run_daemon(studio, env={"ARCHIVEKEEPER_CRASH_AT": "10"})
    assert first.proc.wait(60) == -9  # killed at its 10th file operation (the catch-up apply)
    second = run_daemon(studio)
    second.notes.wait_idle(60)
    finished = second.wait("job_finished", job="apply", why="catch_up", timeout=60)
    trash = studio.volumes["studio"] / ".archivekeeper" / "trash"
    left = {p.name for p in shoot.iterdir()} if shoot.exists() else set()
    trashed = [p.name for p in trash.rglob("*") if p.is_file()]
    assert sorted(left | set(trashed)) == sorted(files) and left.isdisjoint(trashed)
    assert finished["moved_files"] + 9 >= len(files) - len(left)
    db = sqlite3.connect(studio.state / "index.sqlite")
    states = dict(db.execute("SELECT state, COUNT(*) FROM trash_files GROUP BY state"))
    db.close()
    assert states == {"trashed": len(trashed)}
    listed = json.loads(studio.cli("trash", "list", "--json").stdout)["items"]
    assert sum(item["files"] for item in listed) == len(trashed)
    verify = studio.cli("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert second.stop() == 0


# was (failed before the fix): a folder volume replaced by a copy of itself (same marker id, same
# st_dev) was no change to Presence, so the watcher kept watching the moved-away folder
def test_a_volume_folder_replaced_by_its_copy_is_watched_again(studio, run_daemon, tmp_path):
    import shutil

    daemon = run_daemon(studio)
    daemon.notes.wait_idle(60)
    path = studio.volumes["studio"]
    old = tmp_path / "studio.old"
    path.rename(old)  # restored from a copy: `mv studio studio.old; cp -a studio.old studio`
    shutil.copytree(old, path, symlinks=True)
    studio.shoot("studio", "2026-11-30 Uusi Asiakas")
    poll_until(lambda: ("studio", "2026-11-30 Uusi Asiakas") in cli_shoots(studio), 1 + 10,
               "the new shoot indexed from file events")
    assert daemon.stop() == 0
