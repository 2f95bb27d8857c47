"""The scanner and volume states on real temp trees and a real SQLite index."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from datetime import date, datetime

import pytest
from conftest import BIN

from archivekeeper.core import naming
from archivekeeper.index import scanner, walker
from archivekeeper.index.store import Store
from archivekeeper.index.volumes import probe

OLD = time.time() - 3 * 86400


@pytest.fixture(autouse=True, params=["in-process", "workers"])
def listing_mode(request, monkeypatch):
    """Every scan test runs twice: shoots listed in this process, and in walker processes."""
    monkeypatch.setattr(walker, "WORKERS_FROM", 1 if request.param == "workers" else 10**9)
    return request.param


def age_dirs(root) -> None:
    """Push folder mtimes into the past so a quick scan may trust them."""
    for dirpath, dirnames, _ in os.walk(root):
        for d in dirnames:
            os.utime(os.path.join(dirpath, d), (OLD, OLD), follow_symlinks=False)


def test_scan_indexes_shoots_by_customer_date_and_type(studio):
    studio.shoot("studio", "2024-05-12 Mäkinen Anna")
    studio.shoot("studio", "20240512_Virtanen_Matti_wedding")
    studio.shoot("studio", "Korhonen Päivi/12.05.2024 passport")
    studio.ok("scan")
    shoots = studio.shoots()
    anna = shoots[("studio", "2024-05-12 Mäkinen Anna")]
    assert (anna["customer"], anna["date"], anna["date_source"], anna["type"]) == (
        "Mäkinen Anna", "2024-05-12", "folder", None)
    assert (anna["files"], anna["bytes"], anna["state"], anna["incomplete"]) == (
        2, 400, "online", False)
    matti = shoots[("studio", "20240512_Virtanen_Matti_wedding")]
    assert (matti["customer"], matti["type"]) == ("Virtanen Matti", "wedding")  # as written
    paivi = shoots[("studio", "Korhonen Päivi/12.05.2024 passport")]
    assert (paivi["date"], paivi["type"]) == ("2024-05-12", "passport")
    assert len(shoots) == 3


def test_customer_filter_matches_normalised_names(studio):
    studio.shoot("studio", "2024-05-12 Mäkinen_Anna")
    nfd = "2024-06-01 Ma\u0308kinen  anna"
    studio.shoot("studio", nfd)
    studio.shoot("studio", "2024-06-02 Virtanen Matti")
    studio.ok("scan")
    found = studio.json("shoots", "--customer", "MÄKINEN ANNA")["shoots"]
    assert sorted(s["date"] for s in found) == ["2024-05-12", "2024-06-01"]


def test_unrecognised_and_implausible_folders_are_recorded_never_shoots(studio):
    studio.shoot("studio", "2023-02-30 Impossible Date")
    studio.shoot("studio", "1985-01-01 Too Old")
    studio.shoot("studio", "Random stuff")
    studio.shoot("studio", "2024-05-12 Good Customer")
    studio.ok("scan")
    assert list(studio.shoots()) == [("studio", "2024-05-12 Good Customer")]
    store = Store(studio.state)
    reasons = {r["relpath"]: r["reason"] for r in store.unrecognised()}
    assert "2023-02-30" in reasons[b"2023-02-30 Impossible Date"]
    assert "1990" in reasons[b"1985-01-01 Too Old"]
    # "Random stuff" may be a customer folder ("{customer}/{date} {type}"): a container, whose
    # subfolders match nothing and are reported.
    assert reasons[b"Random stuff/JPEG"] == "matches no shoot pattern"


def test_unplugged_drive_leaves_shoots_offline_not_missing(studio):
    studio.shoot("backup-1", "2024-05-12 Mäkinen Anna")
    studio.ok("scan")
    shutil.rmtree(studio.volumes["backup-1"])
    studio.volumes["backup-1"].mkdir()  # an empty mount point
    result = studio.ok("scan")
    assert "volume_offline" in result.stderr
    shoot = studio.shoots()[("backup-1", "2024-05-12 Mäkinen Anna")]
    assert shoot["state"] == "offline"
    vols = {v["name"]: v for v in studio.json("volume", "list")["volumes"]}
    assert vols["backup-1"]["state"] == "offline"
    assert vols["backup-1"]["shoots"] == 1


def test_fixed_volume_offline_is_a_problem(studio):
    studio.shoot("studio", "2024-05-12 Mäkinen Anna")
    studio.ok("scan")
    shutil.rmtree(studio.volumes["studio"])
    result = studio.run("scan")
    assert result.exit_code == 1
    assert studio.shoots()[("studio", "2024-05-12 Mäkinen Anna")]["state"] == "offline"


def test_foreign_drive_on_the_mount_point_is_offline(studio, tmp_path):
    studio.shoot("backup-1", "2024-05-12 Mäkinen Anna")
    studio.ok("scan")
    shutil.rmtree(studio.volumes["backup-1"])
    studio.volumes["backup-1"].mkdir()
    other = studio.ok("volume", "init", str(studio.volumes["backup-1"]), "--name", "backup-1")
    assert "initialised" in other.stdout
    studio.shoot("backup-1", "2030-01-01 Nobody")  # whatever the foreign drive holds
    studio.ok("scan")
    shoots = studio.shoots()
    assert shoots[("backup-1", "2024-05-12 Mäkinen Anna")]["state"] == "offline"
    assert ("backup-1", "2030-01-01 Nobody") not in shoots


def test_two_paths_with_the_same_marker_are_both_offline(studio):
    studio.shoot("studio", "2024-05-12 Mäkinen Anna")
    studio.ok("scan")
    marker = studio.volumes["studio"] / ".archivekeeper" / "volume.json"
    (studio.volumes["backup-1"] / ".archivekeeper" / "volume.json").write_bytes(
        marker.read_bytes())
    store = Store(studio.state)
    recorded = dict(store.db.execute("SELECT name, volume_id FROM volumes").fetchall())
    vols = [type("V", (), {"name": n, "path": p, "removable": False})
            for n, p in studio.volumes.items()]
    states = {s.name: s for s in probe(vols, recorded)}
    assert not states["studio"].online and not states["backup-1"].online


def test_volume_init_refuses_another_name(studio):
    result = studio.run("volume", "init", str(studio.volumes["studio"]), "--name", "backup-1")
    assert result.exit_code == 1
    assert "already a volume named 'studio'" in result.stderr


def test_volume_init_refuses_a_name_the_config_does_not_have(studio, tmp_path):
    blank = tmp_path / "blank"
    blank.mkdir()
    result = studio.run("volume", "init", str(blank), "--name", "backup-2")
    assert result.exit_code == 2
    assert "no volume named 'backup-2'" in result.stderr and "studio, backup-1" in result.stderr
    assert not (blank / ".archivekeeper").exists()


def test_a_missing_fixed_volume_is_an_error_in_the_summary_and_the_exit_code(studio):
    marker = studio.volumes["studio"] / ".archivekeeper" / "volume.json"
    marker.rename(marker.with_name("moved.json"))
    result = studio.cli("scan")
    assert result.returncode == 1
    assert "1 errors" in result.stdout and "1 offline volumes" in result.stdout


def test_no_config_at_the_default_path_says_how_to_give_one(tmp_path):
    result = subprocess.run([str(BIN), "--config", str(tmp_path / "none.yaml"), "plan"],
                            capture_output=True, text=True)
    assert result.returncode == 78
    assert "no configuration at" in result.stderr and "--config" in result.stderr
    assert "ARCHIVEKEEPER_CONFIG" in result.stderr and "archivekeeper demo" in result.stderr
    assert "Traceback" not in result.stderr


def _vanish_after_first(status, path):
    calls = []

    def progress(n):
        calls.append(n)
        if len(calls) == 1:
            shutil.rmtree(path)
    return progress


def test_volume_vanishing_mid_scan_changes_no_shoot(studio):
    for i in range(1, 6):
        studio.shoot("backup-1", f"2024-05-1{i} Customer {i}")
    studio.ok("scan")
    before = studio.shoots()
    # New content so the next scan has work to do; the drive is pulled after the first shoot.
    for i in range(6, 9):
        studio.shoot("backup-1", f"2024-05-1{i} Customer {i}")
    os.remove(studio.volumes["backup-1"] / "2024-05-11 Customer 1" / "JPEG" / "IMG_1.jpg")
    store = Store(studio.state)
    recorded = dict(store.db.execute("SELECT name, volume_id FROM volumes").fetchall())
    vol = type("V", (), {"name": "backup-1", "path": studio.volumes["backup-1"],
                         "removable": True})
    status = probe([vol], recorded)[0]
    assert status.online
    patterns = [naming.compile_pattern(p) for p in
                ("{date} {customer}", "{date}_{customer}_{type}")]
    summary = scanner.scan([status], store, patterns, full=True, today=date.today(),
                           now=datetime.now().astimezone(), exif_reader=None,
                           progress=_vanish_after_first(status, studio.volumes["backup-1"]))
    assert summary.aborted == ["backup-1"]
    store.close()
    assert studio.shoots() == before


def test_symlinks_are_recorded_never_followed(studio, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"s" * 1000)
    shoot = studio.shoot("studio", "2024-05-12 Mäkinen Anna")
    os.symlink(outside, shoot / "link-out")
    os.symlink(shoot, shoot / "JPEG" / "loop")
    os.symlink(outside / "secret.jpg", shoot / "secret.jpg")
    os.symlink(outside, studio.volumes["studio"] / "2024-05-13 Linked Customer")
    studio.ok("scan", "--full")
    shoots = studio.shoots()
    assert list(shoots) == [("studio", "2024-05-12 Mäkinen Anna")]
    store = Store(studio.state)
    files = {r[0]: r[4] for r in store.file_tuples(
        shoots[("studio", "2024-05-12 Mäkinen Anna")]["id"])}
    base = "2024-05-12 Mäkinen Anna".encode()
    assert files[base + b"/link-out"] == "symlink"
    assert files[base + b"/JPEG/loop"] == "symlink"
    assert files[base + b"/secret.jpg"] == "symlink"
    assert not any(b"secret.jpg" in k and k.count(b"/") > 1 for k in files)


def test_odd_names_are_kept_losslessly(studio):
    bad = b"2024-05-12 Bad \xff name"
    studio.shoot("studio", bad)
    shoot = studio.shoot("studio", "2024-05-13 Odd Files",
                         {b"line1\nline2.jpg": b"a", b"raw\xfe.CR2": b"bb"})
    result = studio.ok("scan")
    shoots = studio.shoots()
    assert list(shoots) == [("studio", "2024-05-13 Odd Files")]
    store = Store(studio.state)
    rel = [r[0] for r in store.file_tuples(shoots[("studio", "2024-05-13 Odd Files")]["id"])]
    assert b"2024-05-13 Odd Files/line1\nline2.jpg" in rel
    assert b"2024-05-13 Odd Files/raw\xfe.CR2" in rel
    reasons = {r["relpath"]: r["reason"] for r in store.unrecognised()}
    assert reasons[bad] == "folder name is not valid UTF-8"
    assert "\\xff" in result.stderr
    assert shoot.exists()


def test_exif_date_used_when_pattern_has_no_date(studio):
    from archivekeeper.demo import jpeg_with_exif

    studio.shoot("studio", "Arkisto/Ylönen Lauri", {
        "a.jpg": jpeg_with_exif(datetime(2021, 3, 4, 10, 0), 1),
        "b.jpg": jpeg_with_exif(datetime(2021, 3, 6, 10, 0), 2),
        "future.jpg": jpeg_with_exif(datetime(2099, 1, 1, 10, 0), 3),  # implausible: ignored
    })
    truncated = jpeg_with_exif(datetime(2020, 1, 1), 4)[:60]
    studio.shoot("studio", "Arkisto/Broken Exif", {"cut.jpg": truncated}, mtime=OLD)
    studio.ok("scan")
    shoots = studio.shoots()
    lauri = shoots[("studio", "Arkisto/Ylönen Lauri")]
    assert (lauri["date"], lauri["date_source"]) == ("2021-03-06", "exif")
    broken = shoots[("studio", "Arkisto/Broken Exif")]
    assert broken["date_source"] == "mtime"
    assert broken["date"] == datetime.fromtimestamp(OLD).date().isoformat()


def _deep_chain(top: str, depth: int) -> None:
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        with open(os.open("deep.jpg", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as fh:
            fh.write(b"deep")
    finally:
        os.close(fd)


def _remove_chain(top: str) -> None:
    """Remove a deep d/d/d... chain level by level (shutil.rmtree recurses and would crash)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        while "d" in os.listdir(fd):
            sub = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            try:
                for name in os.listdir(sub):
                    if name == "d":
                        os.rename("d", "next", src_dir_fd=sub, dst_dir_fd=fd)
                    else:
                        os.unlink(name, dir_fd=sub)
            finally:
                os.close(sub)
            os.rmdir("d", dir_fd=fd)
            if "next" in os.listdir(fd):
                os.rename("next", "d", src_dir_fd=fd, dst_dir_fd=fd)
    finally:
        os.close(fd)


@pytest.fixture
def deep_shoot(studio):
    shoot = studio.shoot("studio", "2024-05-12 Deep Customer")
    _deep_chain(str(shoot), 10_000)
    yield shoot
    _remove_chain(str(shoot))


def test_ten_thousand_deep_tree_marks_the_shoot_incomplete_without_crashing(studio, deep_shoot):
    result = studio.ok("scan")
    deep = studio.shoots()[("studio", "2024-05-12 Deep Customer")]
    assert deep["files"] >= 2
    assert deep["incomplete"] is True  # paths past PATH_MAX cannot be read: never deleted whole
    assert "scan_unreadable" in result.stderr


def test_missing_shoot_is_dropped_only_after_two_later_full_scans(studio):
    shoot = studio.shoot("studio", "2024-05-12 Mäkinen Anna")
    studio.ok("scan")
    shutil.rmtree(shoot)
    key = ("studio", "2024-05-12 Mäkinen Anna")
    studio.ok("scan")
    assert studio.shoots()[key]["state"] == "missing"
    studio.ok("scan")
    assert studio.shoots()[key]["state"] == "missing"
    studio.ok("scan", "--full")
    assert studio.shoots()[key]["state"] == "missing"
    studio.ok("scan", "--full")
    assert key not in studio.shoots()


def test_missing_shoot_that_returns_is_online_again(studio):
    shoot = studio.shoot("studio", "2024-05-12 Mäkinen Anna")
    studio.ok("scan")
    moved = shoot.with_name("elsewhere")
    shoot.rename(moved)
    studio.ok("scan", "--full")
    moved.rename(shoot)
    studio.ok("scan", "--full")
    studio.ok("scan", "--full")
    assert studio.shoots()[("studio", "2024-05-12 Mäkinen Anna")]["state"] == "online"


def test_nested_volume_and_other_filesystems_are_not_entered(studio):
    shoot = studio.shoot("studio", "2024-05-12 Mäkinen Anna")
    nested = shoot / "nested"
    nested.mkdir()
    (nested / ".archivekeeper").mkdir()
    (nested / ".archivekeeper" / "volume.json").write_text(json.dumps({"id": "x", "name": "n"}))
    (nested / "inner.jpg").write_bytes(b"i" * 50)
    top_nested = studio.volumes["studio"] / "2024-05-13 Nested Volume"
    top_nested.mkdir()
    (top_nested / ".archivekeeper").mkdir()
    (top_nested / ".archivekeeper" / "volume.json").write_text(json.dumps({"id": "y"}))
    studio.ok("scan")
    shoots = studio.shoots()
    assert list(shoots) == [("studio", "2024-05-12 Mäkinen Anna")]
    assert shoots[("studio", "2024-05-12 Mäkinen Anna")]["files"] == 2


def test_quick_scan_skips_unchanged_folders_and_full_scan_rechecks(studio):
    shoot = studio.shoot("studio", "2024-05-12 Mäkinen Anna", mtime=OLD)
    age_dirs(studio.volumes["studio"])
    studio.ok("scan")
    key = ("studio", "2024-05-12 Mäkinen Anna")
    assert studio.shoots()[key]["bytes"] == 400
    # An in-place rewrite keeps the folder mtime: quick scan trusts the index...
    (shoot / "JPEG" / "IMG_1.jpg").write_bytes(b"y" * 1000)
    age_dirs(studio.volumes["studio"])
    studio.ok("scan")
    assert studio.shoots()[key]["bytes"] == 400
    # ...a full scan re-checks every file.
    studio.ok("scan", "--full")
    assert studio.shoots()[key]["bytes"] == 1300
    # A new file changes the folder mtime: the quick scan sees it.
    (shoot / "JPEG" / "IMG_2.jpg").write_bytes(b"z" * 10)
    studio.ok("scan")
    assert studio.shoots()[key]["files"] == 3


def test_quick_scan_sees_files_added_or_removed_at_any_folder_of_a_shoot(studio):
    shoot = studio.shoot("studio", "2024-05-12 Mäkinen Anna", mtime=OLD)
    key = ("studio", "2024-05-12 Mäkinen Anna")
    age_dirs(studio.volumes["studio"])
    studio.ok("scan")
    for change, files in ((lambda: (shoot / "notes.txt").write_bytes(b"n"), 3),
                          (lambda: (shoot / "notes.txt").unlink(), 2),
                          (lambda: (shoot / "RAW" / "IMG_1.CR2").unlink(), 1)):
        age_dirs(studio.volumes["studio"])
        studio.ok("scan")  # every folder trusted again, with its aged mtime
        change()  # changes one folder's mtime
        studio.ok("scan")
        assert studio.shoots()[key]["files"] == files


def test_recently_changed_folders_are_never_trusted(studio):
    shoot = studio.shoot("studio", "2024-05-12 Mäkinen Anna")
    studio.ok("scan")  # folders are brand new: recorded as racy
    (shoot / "JPEG" / "IMG_1.jpg").write_bytes(b"y" * 1000)
    studio.ok("scan")
    assert studio.shoots()[("studio", "2024-05-12 Mäkinen Anna")]["bytes"] == 1300


@pytest.mark.parametrize("args", [["scan", "--volume", "nope"]])
def test_unknown_volume_is_a_usage_error(studio, args):
    result = studio.run(*args)
    assert result.exit_code == 2
    assert "no volume named 'nope'" in result.stderr
