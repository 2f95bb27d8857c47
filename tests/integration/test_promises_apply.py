"""Promise 3 through the real `apply`, and the audit trail the commands leave (promise 6)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from datetime import date, datetime, timedelta

import pytest
from conftest import DUE_RULES, OLD, at

from archivekeeper.act.executor import Executor
from archivekeeper.clock import FixedClock
from archivekeeper.config import load_config
from archivekeeper.index.store import Store
from archivekeeper.ops import all_holds, compute_plan, erasure_records, open_audit

DUE = "2015-03-01 Mäkinen Anna"
FILES = {"JPEG/IMG_1.jpg": b"j" * 100, "RAW/IMG_1.CR2": b"r" * 300}

TODAY = date.today()  # the test studios' clock is pinned to noon today


def tree(studio) -> dict[str, bytes]:
    vol = studio.volumes["studio"]
    out = {}
    for dirpath, dirnames, filenames in os.walk(vol):
        dirnames[:] = [d for d in dirnames if d != ".archivekeeper"]
        for name in filenames:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, vol)] = open(path, "rb").read()
    return out


@pytest.fixture
def archive(studio):
    studio.write_config(DUE_RULES)
    studio.shoot("studio", DUE, FILES, mtime=OLD)
    studio.ok("scan")
    return studio


def test_apply_leaves_a_held_shoot_in_place(archive):
    archive.ok("hold", "add", "--customer", "Mäkinen Anna", "--kind", "collection",
               "--reason", "debt collection")
    before = tree(archive)
    assert "moved 0 files" in archive.ok("apply").stdout
    assert tree(archive) == before


def test_apply_leaves_items_not_announced_for_the_notice_period(archive):
    archive.write_config(DUE_RULES.replace("notice_period: 0 days", "notice_period: 14 days"))
    before = tree(archive)
    today = TODAY
    assert "moved 0 files" in archive.ok("apply", env=at(today)).stdout  # announces now
    assert "moved 0 files" in archive.ok("apply", env=at(today + timedelta(days=13))).stdout
    assert tree(archive) == before
    assert "moved 2 files" in archive.ok("apply", env=at(today + timedelta(days=14))).stdout


def test_apply_leaves_unapproved_items_when_approval_is_required(archive):
    archive.write_config(DUE_RULES + "  require_approval: true\n")
    before = tree(archive)
    assert "moved 0 files" in archive.ok("apply").stdout
    assert tree(archive) == before
    archive.ok("approve", "--all")
    assert "moved 2 files" in archive.ok("apply").stdout


def test_apply_leaves_files_inside_a_keep_period(archive):
    archive.write_config(DUE_RULES.replace(
        "rules:\n", "rules:\n  - {name: keep-long, keep_for: 20 years}\n"))
    before = tree(archive)
    assert "moved 0 files" in archive.ok("apply").stdout
    assert tree(archive) == before


def test_a_hold_added_after_planning_is_seen_before_the_files_move(archive):
    config = load_config(archive.config)
    store = Store(config.state_dir)
    now = datetime(TODAY.year, TODAY.month, TODAY.day, 12).astimezone()
    plan = compute_plan(config, store, now)
    assert [i.path for i in plan.actionable()] == [DUE]
    archive.ok("hold", "add", "--shoot", f"studio:{DUE}", "--kind", "legal-claim",
               "--reason", "claim arrived")
    audit = open_audit(config, FixedClock(now), store)
    executor = Executor(config, store, audit, now)
    try:
        result = executor.trash_items(plan, lambda: all_holds(config, store),
                                      erasure_records(config, store))
    finally:
        executor.close()
    assert result.moved_files == 0
    assert any("no longer due" in line for line in result.skipped)
    assert set(tree(archive)) == {f"{DUE}/{name}" for name in FILES}


def events(studio) -> list[dict]:
    return [json.loads(line) for line in
            (studio.state / "audit.jsonl").read_text().splitlines()]


def test_commands_leave_their_events_in_the_audit_log(archive):
    archive.write_config(DUE_RULES + "  require_approval: true\n")
    today = date.today()
    archive.ok("hold", "add", "--customer", "Mäkinen Anna", "--kind", "invoice", "--reason", "x")
    hold_id = archive.json("hold", "list")["holds"][0]["id"]
    archive.ok("hold", "release", hold_id)
    archive.ok("approve", "--all", env=at(today))
    archive.ok("apply", env=at(today))
    archive.ok("trash", "purge", env=at(today + timedelta(days=31)))
    archive.cli("apply", env=at(today - timedelta(days=2)))  # clock earlier: refused
    names = [e["event"] for e in events(archive)]
    for expected in ("config_change", "hold_add", "hold_release", "approve", "trash",
                     "trash_done", "purge", "purge_done", "refusal"):
        assert expected in names, expected
    assert names.index("trash") < names.index("trash_done") < names.index("purge")
    refusal = [e for e in events(archive) if e["event"] == "refusal"][-1]
    assert "clock" in refusal["reasons"][0]


def test_audit_verify_names_the_first_bad_record_and_show_reads_the_log(archive):
    archive.ok("apply")
    shown = archive.ok("audit", "show").stdout
    assert "trash_done" in shown and "config_change" in shown
    mine = archive.ok("audit", "show", "--customer", "mäkinen_anna").stdout
    assert f"shoot=studio:{DUE}" in mine and "trash" in mine  # resolved through the trash
    log = archive.state / "audit.jsonl"
    lines = log.read_text().splitlines()
    record = json.loads(lines[1])
    record["files"] = 999
    lines[1] = json.dumps(record, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    log.write_text("\n".join(lines) + "\n")
    result = archive.cli("audit", "verify")
    assert result.returncode == 1
    assert "line 2" in result.stderr


def test_the_index_is_wal_with_secure_delete_and_records_file_kinds(archive):
    archive.shoot("studio", "2016-01-01 Laine Tuula", {
        "a.CR2": b"r", "b.jpg": b"j", "c.mov": b"v", "c.xmp": b"x", "notes.txt": b"t"},
        mtime=OLD)
    archive.ok("scan")
    db = sqlite3.connect(archive.state / "index.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    (shoot_id,) = db.execute("SELECT id FROM shoots").fetchone()
    kinds = {f[0]: f[4] for f in Store(archive.state).file_tuples(shoot_id)}
    base = b"2016-01-01 Laine Tuula/"
    assert [kinds[base + n] for n in (b"a.CR2", b"b.jpg", b"c.mov", b"c.xmp", b"notes.txt")] == [
        "raw", "image", "video", "sidecar", "other"]
    db.close()
    # secure_delete is set on every connection the index opens
    store = Store(archive.state)
    assert store.db.execute("PRAGMA secure_delete").fetchone()[0] == 1


def test_a_restored_item_is_announced_again(archive):
    archive.write_config(DUE_RULES.replace("notice_period: 0 days", "notice_period: 3 days"))
    today = TODAY
    archive.ok("plan", env=at(today))
    assert "moved 2 files" in archive.ok("apply", env=at(today + timedelta(days=3))).stdout
    archive.ok("trash", "restore", "1", env=at(today + timedelta(days=4)))
    for dirpath, _, _ in os.walk(archive.volumes["studio"] / DUE):
        os.utime(dirpath, (OLD, OLD))
    archive.ok("scan", env=at(today + timedelta(days=4)))
    items = archive.json("plan", env=at(today + timedelta(days=4)))["items"]
    assert [i["status"] for i in items] == ["upcoming"]
    assert items[0]["announced_at"].startswith((today + timedelta(days=4)).isoformat())


def test_scan_does_not_enter_another_filesystem(studio, tmp_path):
    shoot = studio.shoot("studio", DUE, FILES, mtime=OLD)
    mount = shoot / "mounted"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        (mount / "other.jpg").write_bytes(b"o")
        result = studio.ok("scan", "--full")
        assert "scan_other_filesystem" in result.stderr
        shoots = studio.shoots()
        assert shoots[("studio", DUE)]["files"] == 2
    finally:
        subprocess.run(["umount", str(mount)])


def test_a_volume_mounted_somewhere_else_keeps_its_shoots(studio):
    studio.shoot("backup-1", DUE, FILES, mtime=OLD)
    studio.ok("scan")
    before = studio.shoots()[("backup-1", DUE)]
    moved = studio.root / "elsewhere"
    os.rename(studio.volumes["backup-1"], moved)
    studio.volumes["backup-1"] = moved
    studio.write_config()
    studio.ok("scan", "--full")
    after = studio.shoots()[("backup-1", DUE)]
    assert (after["id"], after["state"], after["files"]) == (before["id"], "online", 2)
