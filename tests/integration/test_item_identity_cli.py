"""An item is a shoot's files on one volume: approving or announcing a shoot on one drive says
nothing about its identical copy on another (the copy is announced, approved and moved on its
own)."""

from __future__ import annotations

from datetime import date, timedelta

from conftest import OLD, at

RULES = """\
rules:
  - {name: five-years, delete_after: 5 years}
safety:
  notice_period: 14 days
  max_fraction_per_volume: 1.0
"""
SHOOT = "2015-03-01 Mäkinen Anna"
FILES = {"JPEG/IMG_1.jpg": b"j" * 100, "RAW/IMG_1.CR2": b"r" * 300}
DAY = date.today()  # the test studios run on noon today: an earlier day is a clock gone back


def by_volume(studio, day: date) -> dict[str, dict]:
    items = studio.json("plan", env=at(day))["items"]
    assert all(i["path"] == SHOOT for i in items)
    return {i["volume"]: i for i in items}


def test_approving_the_shoot_on_one_volume_leaves_its_copy_awaiting_approval(studio):
    studio.write_config(RULES + "  require_approval: true\n")
    studio.shoot("studio", SHOOT, FILES, mtime=OLD)
    studio.shoot("backup-1", SHOOT, FILES, mtime=OLD)
    studio.ok("scan")
    first = by_volume(studio, DAY)
    assert first["studio"]["key"] != first["backup-1"]["key"]
    later = DAY + timedelta(days=15)
    waiting = by_volume(studio, later)
    assert {v: i["status"] for v, i in waiting.items()} == {
        "studio": "awaiting-approval", "backup-1": "awaiting-approval"}

    result = studio.ok("approve", str(waiting["studio"]["shoot_id"]), env=at(later))
    assert "1 items approved" in result.stdout
    assert {v: i["status"] for v, i in by_volume(studio, later).items()} == {
        "studio": "due", "backup-1": "awaiting-approval"}

    assert "moved 2 files" in studio.ok("apply", env=at(later)).stdout
    assert not (studio.volumes["studio"] / SHOOT).exists()
    copy = studio.volumes["backup-1"] / SHOOT
    assert (copy / "RAW" / "IMG_1.CR2").read_bytes() == b"r" * 300
    assert (copy / "JPEG" / "IMG_1.jpg").read_bytes() == b"j" * 100


def test_a_copy_indexed_later_gets_its_own_announcement_and_notice(studio):
    studio.write_config(RULES)
    studio.shoot("studio", SHOOT, FILES, mtime=OLD)
    studio.ok("scan")
    assert set(by_volume(studio, DAY)) == {"studio"}  # announced today

    # ten days later the same shoot, byte for byte and mtime for mtime, is copied to the backup
    studio.shoot("backup-1", SHOOT, FILES, mtime=OLD)
    studio.ok("scan")
    noticed = DAY + timedelta(days=14)
    items = by_volume(studio, noticed)
    assert items["studio"]["status"] == "due"
    assert items["studio"]["announced_at"].startswith(DAY.isoformat())
    assert items["backup-1"]["status"] == "upcoming"
    assert items["backup-1"]["announced_at"].startswith(noticed.isoformat())

    assert "moved 2 files" in studio.ok("apply", env=at(noticed)).stdout
    assert (studio.volumes["backup-1"] / SHOOT / "RAW" / "IMG_1.CR2").exists()
    assert not (studio.volumes["studio"] / SHOOT).exists()
