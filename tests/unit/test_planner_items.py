"""What a plan item is: one shoot's files that share a date, on one volume. Every date group of a
shoot within the notice window is listed, and an item's identity includes its volume."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from archivekeeper.core.durations import parse_period
from archivekeeper.core.model import Announcement, FileFact, Hold, Limits, Match, Rule, ShootFact
from archivekeeper.core.planner import build_plan, item_key
from archivekeeper.core.policy import evaluate_all

TZ = timezone(timedelta(hours=3))
TODAY = date(2025, 6, 1)
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=TZ)
PATH = "2024-05-12 Virtanen Matti"
TOTALS = {"studio": (100, 10**6), "backup-1": (100, 10**6)}


def shoot(id=1, volume="studio", names=("a.jpg", "b.cr2")) -> ShootFact:
    files = tuple(FileFact(f"{PATH}/{n}", 100 * (i + 1), 1_700_000_000_000_000_000 + i)
                  for i, n in enumerate(names))
    day = date(2024, 5, 12)
    return ShootFact(id, volume, PATH, "Virtanen Matti", "virtanen matti", day, "folder", None,
                     day, day, files=files)


def plan(shoots, rules, announcements=None, notice="14 days", holds=()):
    return build_plan(
        shoots, evaluate_all(shoots, rules, holds, []), today=TODAY, now=NOW,
        notice=parse_period(notice), require_approval=False,
        announcements=announcements or {}, limits=Limits(max_fraction_per_volume=1.0),
        volume_totals=TOTALS,
    )


def listed(p) -> list[tuple]:
    return sorted((i.volume, i.date, i.rule, i.files, i.scope) for i in p.items)


# --- several date groups ----------------------------------------------------------------------

RAW_AFTER_A_MONTH = Rule("raw", "delete", parse_period("1 month"), match=Match(files="*.cr2"))


def test_a_group_that_is_never_deleted_does_not_hide_a_later_group():
    # a.jpg comes first and no rule deletes it; b.cr2 is due
    p = plan([shoot()], [RAW_AFTER_A_MONTH])
    assert listed(p) == [("studio", date(2024, 6, 12), "raw", (f"{PATH}/b.cr2",), "files")]


def test_a_group_beyond_the_notice_window_does_not_hide_a_later_group():
    rules = [Rule("jpegs", "delete", parse_period("5 years"), match=Match(files="*.jpg")),
             RAW_AFTER_A_MONTH]
    p = plan([shoot()], rules)
    assert listed(p) == [("studio", date(2024, 6, 12), "raw", (f"{PATH}/b.cr2",), "files")]


def test_every_group_within_the_window_is_its_own_item():
    rules = [Rule("jpegs", "delete", parse_period("1 year"), match=Match(files="*.jpg")),
             RAW_AFTER_A_MONTH]
    p = plan([shoot(names=("a.jpg", "b.cr2", "c.jpg", "d.cr2"))], rules)
    assert listed(p) == [
        ("studio", date(2024, 6, 12), "raw", (f"{PATH}/b.cr2", f"{PATH}/d.cr2"), "files"),
        ("studio", date(2025, 5, 12), "jpegs", (f"{PATH}/a.jpg", f"{PATH}/c.jpg"), "files"),
    ]
    assert [i.bytes for i in sorted(p.items, key=lambda i: i.date)] == [200 + 400, 100 + 300]


def test_groups_of_different_rules_on_the_same_date_are_one_item_naming_both_rules():
    rules = [Rule("raw", "delete", parse_period("1 year"), match=Match(files="*.cr2")),
             Rule("jpegs", "delete", parse_period("12 months"), match=Match(files="*.jpg"))]
    p = plan([shoot()], rules)
    assert [(i.date, i.scope, i.rule, len(i.files), i.bytes) for i in p.items] == [
        (date(2025, 5, 12), "shoot", "jpegs, raw", 2, 300)
    ]


def test_a_held_group_and_a_free_group_on_the_same_date_are_separate_items():
    held = Hold("cfg-1", "invoice", "x", None, volume="studio", path=f"{PATH}/b.cr2",
                scope="path")
    p = plan([shoot()], [Rule("all", "delete", parse_period("1 year"))], holds=[held])
    assert sorted((i.files, i.status, i.blocked_by) for i in p.items) == [
        ((f"{PATH}/a.jpg",), "upcoming", ()),
        ((f"{PATH}/b.cr2",), "blocked", ("hold invoice: x (until no end date)",)),
    ]


# --- identity includes the volume -------------------------------------------------------------

ONE_YEAR = [Rule("one-year", "delete", parse_period("1 year"))]


def test_identical_copies_on_two_volumes_are_two_items_with_different_keys():
    studio, backup = shoot(1, "studio"), shoot(2, "backup-1")
    p = plan([studio, backup], ONE_YEAR)
    assert sorted(i.volume for i in p.items) == ["backup-1", "studio"]
    keys = {i.volume: i.key for i in p.items}
    assert keys["studio"] != keys["backup-1"]
    assert keys["studio"] == item_key("studio", PATH, date(2025, 5, 12), studio.files)
    assert keys["backup-1"] == item_key("backup-1", PATH, date(2025, 5, 12), backup.files)


def test_announcing_or_approving_one_copy_does_not_announce_the_other():
    studio, backup = shoot(1, "studio"), shoot(2, "backup-1")
    first = plan([studio, backup], ONE_YEAR)
    studio_key = next(i.key for i in first.items if i.volume == "studio")
    anns = {studio_key: Announcement(studio_key, NOW - timedelta(days=20), NOW)}
    p = plan([studio, backup], ONE_YEAR, anns)
    assert {i.volume: (i.status, i.announced_at) for i in p.items} == {
        "studio": ("due", NOW - timedelta(days=20)),
        "backup-1": ("upcoming", None),
    }
    assert p.to_announce == (next(i.key for i in p.items if i.volume == "backup-1"),)


def test_the_key_depends_on_every_part_of_the_item():
    files = shoot().files
    key = item_key("studio", PATH, date(2025, 5, 12), files)
    assert len(key) == 64 and int(key, 16) >= 0
    moved = FileFact(files[0].relpath, files[0].size, files[0].mtime_ns + 1)
    renamed = FileFact(files[0].relpath + "x", files[0].size, files[0].mtime_ns)
    assert len({
        key,
        item_key("backup-1", PATH, date(2025, 5, 12), files),
        item_key("studio", PATH + " ", date(2025, 5, 12), files),
        item_key("studio", PATH, date(2025, 5, 12), (moved, files[1])),
        item_key("studio", PATH, date(2025, 5, 12), (renamed, files[1])),
    }) == 5
    # fields are separated: moving text from one field to the next gives another key
    assert item_key("ab", "c", date(2025, 5, 12), ()) != item_key("a", "bc", date(2025, 5, 12), ())


def test_a_name_with_undecodable_bytes_still_gets_a_key_of_its_own():
    # surrogate-escaped text, as os.fsdecode gives for a non-UTF-8 folder name
    odd = "2024-05-12 Virtanen \udce4"
    odd_files = (FileFact(f"{odd}/\udcff.jpg", 1, 1),)
    key = item_key("studio", odd, date(2025, 5, 12), odd_files)
    shown = item_key("studio", "2024-05-12 Virtanen \\xe4", date(2025, 5, 12),
                     (FileFact("2024-05-12 Virtanen \\xe4/\\xff.jpg", 1, 1),))
    assert key != shown
    assert key == item_key("studio", odd, date(2025, 5, 12), odd_files)


# --- plan shape -------------------------------------------------------------------------------


def test_shoots_and_decisions_of_different_lengths_are_a_value_error():
    shoots = [shoot(1), shoot(2)]
    decisions = evaluate_all(shoots[:1], ONE_YEAR, [], [])
    with pytest.raises(ValueError):
        build_plan(shoots, decisions, today=TODAY, now=NOW, notice=parse_period("14 days"),
                   require_approval=False, announcements={}, limits=Limits(),
                   volume_totals=TOTALS)


def test_plan_json_says_whether_the_plan_is_refused():
    doc = plan([shoot()], ONE_YEAR).to_json()
    assert (doc["refused"], doc["refusals"]) == (False, [])
    refused = build_plan(
        [shoot()], evaluate_all([shoot()], ONE_YEAR, [], []), today=TODAY, now=NOW,
        notice=parse_period("0 days"), require_approval=False, announcements={},
        limits=Limits(max_files_per_run=1), volume_totals=TOTALS,
    ).to_json()
    assert (refused["refused"], refused["refusals"]) == (
        True, ["2 files are due, more than max_files_per_run 1"])
