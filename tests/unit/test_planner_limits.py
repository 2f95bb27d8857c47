"""The max_* limits are checked on the whole due set: every due item counts, per run and per
volume, and a set at a limit exactly is allowed."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from archivekeeper.core.durations import parse_period
from archivekeeper.core.model import FileFact, Limits, Rule, ShootFact
from archivekeeper.core.planner import build_plan
from archivekeeper.core.policy import evaluate_all

TZ = timezone(timedelta(hours=3))
TODAY = date(2025, 6, 1)
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=TZ)
DELETE_AFTER_A_YEAR = [Rule("one-year", "delete", parse_period("1 year"))]


def shoot(id: int, volume: str = "studio", sizes=(100, 200)) -> ShootFact:
    """A shoot of 2024-05-12 (due 2025-05-12) with one file per size."""
    path = f"2024-05-12 Customer {id}"
    files = tuple(FileFact(f"{path}/{i}.jpg", size, 1_700_000_000_000_000_000)
                  for i, size in enumerate(sizes))
    day = date(2024, 5, 12)
    return ShootFact(id, volume, path, f"Customer {id}", f"customer {id}", day, "folder", None,
                     day, day, files=files)


def due_plan(shoots, limits: Limits, volume_totals):
    """The plan with every item due (no notice), limits applied."""
    return build_plan(
        shoots, evaluate_all(shoots, DELETE_AFTER_A_YEAR, [], []),
        today=TODAY, now=NOW, notice=parse_period("0 days"), require_approval=False,
        announcements={}, limits=limits, volume_totals=volume_totals,
    )


def refused_for(plan) -> list[str]:
    """Which limits refused the plan, as short tags."""
    tags = []
    for text in plan.refusals:
        if "max_fraction_per_volume" in text:
            volume = text.split(":", 1)[0].removeprefix("volume ")
            tags.append(f"{volume} {'bytes' if 'bytes due' in text else 'files'}")
        elif "max_files_per_run" in text:
            tags.append("files per run")
        elif "max_bytes_per_run" in text:
            tags.append("bytes per run")
    return tags


THREE_SHOOTS = [shoot(1), shoot(2), shoot(3)]  # 6 files, 900 bytes on studio, 2 / 300 each


def test_the_fraction_of_files_counts_every_due_item_of_the_volume():
    # each shoot alone is 2 of 50 files (4 %), all three together 6 of 50 (12 %)
    plan = due_plan(THREE_SHOOTS, Limits(), {"studio": (50, 10**9)})
    assert len(plan.due_items()) == 3
    assert refused_for(plan) == ["studio files"]
    assert plan.refusals == (
        "volume studio: 6 files due of 50 files is 12.0%, more than max_fraction_per_volume 0.1",
    )
    assert plan.actionable() == []


def test_the_fraction_of_bytes_counts_every_due_item_of_the_volume():
    # each shoot alone is 300 of 5000 bytes (6 %), all three together 900 (18 %)
    plan = due_plan(THREE_SHOOTS, Limits(), {"studio": (1000, 5000)})
    assert refused_for(plan) == ["studio bytes"]
    assert plan.refusals == (
        "volume studio: 900 bytes due of 5.0 kB (5000 bytes) is 18.0%, more than "
        "max_fraction_per_volume 0.1",
    )
    assert plan.actionable() == []


def test_each_volume_is_measured_against_its_own_totals():
    # 6 of 60 files on each volume is 10 %: allowed; pooled, backup-1's 6 would be 12 of 60
    shoots = [shoot(1), shoot(2), shoot(3),
              shoot(4, "backup-1"), shoot(5, "backup-1"), shoot(6, "backup-1")]
    totals = {"studio": (60, 9000), "backup-1": (60, 9000)}
    assert refused_for(due_plan(shoots, Limits(), totals)) == []
    small_backup = {"studio": (60, 9000), "backup-1": (59, 9000)}
    assert refused_for(due_plan(shoots, Limits(), small_backup)) == ["backup-1 files"]


def test_a_volume_with_nothing_due_is_not_measured():
    # backup-1's totals are unknown, which would refuse; nothing of it is due, so it is not asked
    totals = {"studio": (60, 9000), "backup-1": (0, 0)}
    assert refused_for(due_plan(THREE_SHOOTS, Limits(), totals)) == []


@pytest.mark.parametrize(
    ("totals", "refused"),
    [
        ((60, 9000), []),  # exactly 10 % of the files and of the bytes: allowed
        ((59, 9000), ["studio files"]),
        ((60, 8999), ["studio bytes"]),
        ((5, 9000), ["studio files"]),  # more due than the index says the volume holds
        ((60, 0), ["studio bytes"]),  # totals unknown
    ],
)
def test_the_fraction_limit_is_inclusive_and_refuses_what_it_cannot_measure(totals, refused):
    assert refused_for(due_plan(THREE_SHOOTS, Limits(), {"studio": totals})) == refused


def test_an_unknown_volume_share_is_named_so():
    plan = due_plan(THREE_SHOOTS, Limits(), {"studio": (0, 9000)})
    assert plan.refusals == (
        "volume studio: 6 files due of 0 files is an unknown share, more than "
        "max_fraction_per_volume 0.1",
    )


def test_a_custom_fraction_cap_is_used_and_named():
    limits = Limits(max_fraction_per_volume=0.5)
    assert refused_for(due_plan(THREE_SHOOTS, limits, {"studio": (12, 1800)})) == []
    plan = due_plan(THREE_SHOOTS, limits, {"studio": (11, 1800)})
    assert plan.refusals == (
        "volume studio: 6 files due of 11 files is 54.5%, more than max_fraction_per_volume 0.5",
    )


@pytest.mark.parametrize(
    ("limits", "refused"),
    [
        (Limits(max_files_per_run=6, max_bytes_per_run=900), []),
        (Limits(max_files_per_run=5, max_bytes_per_run=900), ["files per run"]),
        (Limits(max_files_per_run=6, max_bytes_per_run=899), ["bytes per run"]),
    ],
)
def test_run_limits_count_every_due_item_and_allow_the_limit_itself(limits, refused):
    # one item is 2 files / 300 bytes, far under each limit; the three together are at it
    big = {"studio": (10**6, 10**12)}
    assert refused_for(due_plan(THREE_SHOOTS, limits, big)) == refused


@pytest.mark.parametrize(
    ("size", "limit", "text"),
    [
        (1000, 999, "1.0 kB (1000 bytes) are due, more than max_bytes_per_run 999 bytes"),
        (2_500_000, 10**6, "2.5 MB (2500000 bytes) are due, more than max_bytes_per_run "
                           "1.0 MB (1000000 bytes)"),
        (3 * 10**9, 10**9, "3.0 GB (3000000000 bytes) are due, more than max_bytes_per_run "
                           "1.0 GB (1000000000 bytes)"),
        (4 * 10**12, 10**12, "4.0 TB (4000000000000 bytes) are due, more than "
                             "max_bytes_per_run 1.0 TB (1000000000000 bytes)"),
    ],
)
def test_byte_refusals_show_the_size_in_units_and_exactly(size, limit, text):
    plan = due_plan([shoot(1, sizes=(size,))],
                    Limits(max_bytes_per_run=limit, max_fraction_per_volume=1.0),
                    {"studio": (1, size)})
    assert plan.refusals == (text,)


def test_a_volume_the_index_has_no_totals_for_is_refused_for_files_and_bytes():
    plan = due_plan(THREE_SHOOTS, Limits(max_fraction_per_volume=1.0), {"backup-1": (60, 9000)})
    assert plan.refusals == (
        "volume studio: 6 files due of 0 files is an unknown share, more than "
        "max_fraction_per_volume 1",
        "volume studio: 900 bytes due of 0 bytes is an unknown share, more than "
        "max_fraction_per_volume 1",
    )


def test_a_single_due_file_counts():
    plan = due_plan([shoot(1, sizes=(100,))], Limits(max_fraction_per_volume=0.4),
                    {"studio": (2, 1000)})
    assert plan.refusals == (
        "volume studio: 1 files due of 2 files is 50.0%, more than max_fraction_per_volume 0.4",
    )
    whole = due_plan([shoot(1, sizes=(100,))], Limits(max_fraction_per_volume=0.4),
                     {"studio": (1, 100)})
    assert whole.refusals == (
        "volume studio: 1 files due of 1 files is 100.0%, more than max_fraction_per_volume 0.4",
        "volume studio: 100 bytes due of 100 bytes is 100.0%, more than "
        "max_fraction_per_volume 0.4",
    )


def test_empty_files_due_are_no_share_of_the_bytes():
    # a volume holding only empty files: 0 of 0 bytes due is nothing, not an unknown share
    plan = due_plan([shoot(1, sizes=(0, 0))], Limits(), {"studio": (20, 0)})
    assert plan.refusals == ()
    assert len(plan.actionable()) == 1
