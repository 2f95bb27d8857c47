"""`trash restore` re-verifies each trashed file against what was trashed (size, mtime, inode)
right before moving it back: a file changed or replaced in the trash stays there, reported."""

from __future__ import annotations

import os
import shutil

import pytest
from conftest import DUE_RULES, OLD

SHOOT = "2015-03-01 Mäkinen Anna"
FILES = {"JPEG/IMG_1.jpg": b"j" * 100, "RAW/IMG_1.CR2": b"r" * 300}


@pytest.fixture
def trashed(studio):
    studio.write_config(DUE_RULES)
    studio.shoot("studio", SHOOT, FILES, mtime=OLD)
    studio.ok("scan")
    assert "moved 2 files" in studio.ok("apply").stdout
    return studio


def in_trash(studio, rel: str):
    found = list((studio.volumes["studio"] / ".archivekeeper" / "trash").glob(f"*/{SHOOT}/{rel}"))
    assert len(found) == 1
    return found[0]


def grow(path):
    """One byte more, the mtime kept."""
    stat = path.stat()
    with open(path, "ab") as fh:
        fh.write(b"+")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def touch(path):
    """The mtime a second later, the content kept."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def replace(path):
    """Put another file (another inode) of the same size and mtime at path."""
    stat = path.stat()
    copy = path.with_name(path.name + ".copy")
    shutil.copyfile(path, copy)
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(copy, path)
    assert path.stat().st_ino != stat.st_ino


def test_an_untouched_trash_item_is_restored(trashed):
    result = trashed.ok("trash", "restore", "1")
    assert "restored 2 files" in result.stdout
    shoot = trashed.volumes["studio"] / SHOOT
    assert (shoot / "RAW" / "IMG_1.CR2").read_bytes() == b"r" * 300
    assert trashed.json("trash", "list")["items"] == []


@pytest.mark.parametrize(
    ("change", "why"),
    [(grow, "size changed from 300 to 301"),
     (touch, "modification time changed"),
     (replace, "replaced by another file")],
    ids=["size", "mtime", "inode"],
)
def test_a_trashed_file_changed_since_it_was_trashed_stays_in_trash(trashed, change, why):
    raw = in_trash(trashed, "RAW/IMG_1.CR2")
    change(raw)
    content = raw.read_bytes()
    result = trashed.run("trash", "restore", "1")
    assert result.exit_code == 1
    assert "restored 1 files" in result.stdout
    assert f"kept in trash: studio:{SHOOT}/RAW/IMG_1.CR2: changed ({why}" in result.stderr
    assert raw.read_bytes() == content  # left where it was, as it was
    shoot = trashed.volumes["studio"] / SHOOT
    assert not (shoot / "RAW" / "IMG_1.CR2").exists()
    assert (shoot / "JPEG" / "IMG_1.jpg").read_bytes() == b"j" * 100  # the unchanged one is back
    assert [(i["id"], i["files"]) for i in trashed.json("trash", "list")["items"]] == [(1, 1)]


def test_a_restored_shoot_is_indexed_at_once_so_a_use_recorded_next_keeps_it(trashed):
    """The owner restores a customer's old shoot and records the re-order with `touch
    --customer`: the use must reach the restored shoot, or the next apply moves it again (found
    by the model's long run: the restored shoot was indexed only by the next scan)."""
    trashed.write_config(DUE_RULES.replace("5 years}", "5 years, since: last_used}"))
    trashed.shoot("studio", "2026-11-01 Mäkinen Anna", {"IMG_9.jpg": b"n" * 10})
    trashed.ok("scan")
    assert "restored 2 files" in trashed.ok("trash", "restore", "1").stdout
    shoot = trashed.volumes["studio"] / SHOOT
    for folder in (shoot, shoot / "RAW", shoot / "JPEG"):  # a day later: folders settled
        os.utime(folder, (OLD, OLD))
    listed = {s["path"]: s["files"] for s in trashed.json("shoots")["shoots"]}
    assert listed.get(SHOOT) == 2
    trashed.ok("touch", "--customer", "Mäkinen Anna", "--reason", "re-order")
    trashed.ok("scan")  # the daemon's nightly cycle: scan, then apply
    trashed.ok("apply")
    assert (shoot / "RAW" / "IMG_1.CR2").read_bytes() == b"r" * 300
    assert (shoot / "JPEG" / "IMG_1.jpg").read_bytes() == b"j" * 100
