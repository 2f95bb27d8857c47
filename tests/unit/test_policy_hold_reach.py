"""Which shoots a hold reaches: a shoot hold exactly its shoot, a path hold what lies under its
path, a customer hold every shoot of the customer, and a malformed hold everything (a hold
keeps rather than misses). `hold_reaches` (the executor's question for trash) answers as
planning does."""

from __future__ import annotations

from datetime import date

import pytest

from archivekeeper.core.durations import parse_period
from archivekeeper.core.model import FileFact, Hold, Rule, ShootFact
from archivekeeper.core.policy import evaluate_shoot, hold_active, hold_reaches

ONE_YEAR = [Rule("one-year", "delete", parse_period("1 year"))]
RULE_DATE = date(2025, 5, 12)


def shoot(path="Virtanen Matti/2024-05-12 wedding", volume="studio",
          customer="Virtanen Matti", names=("JPEG/a.jpg", "RAW/a.cr2")) -> ShootFact:
    files = tuple(FileFact(f"{path}/{n}" if path else n, 100, 1) for n in names)
    day = date(2024, 5, 12)
    return ShootFact(1, volume, path, customer, customer.lower(), day, "folder", None, day, day,
                     files=files)


def hold(scope, until=None, **kw) -> Hold:
    return Hold("cfg-1", "legal-claim", "dispute", until, scope=scope, **kw)


def held_files(s: ShootFact, h: Hold) -> dict[str, date | None]:
    """Each file's base name -> its date under the one-year rule and this hold."""
    decision = evaluate_shoot(s, ONE_YEAR, [h], [])
    return {f.name: g.date for g in decision.groups for f in g.files}


def held(s: ShootFact, h: Hold) -> bool:
    """Whether the hold keeps every file of the shoot (forever: these holds have no end)."""
    dates = set(held_files(s, h).values())
    assert dates in ({None}, {RULE_DATE}), dates  # all or nothing for these holds
    return dates == {None}


# --- shoot scope ------------------------------------------------------------------------------

SHOOT_HOLD = hold("shoot", volume="studio", path="Virtanen Matti/2024-05-12 wedding")


@pytest.mark.parametrize(
    ("volume", "path", "is_held"),
    [
        ("studio", "Virtanen Matti/2024-05-12 wedding", True),
        ("studio", "/Virtanen Matti/2024-05-12 wedding/", True),  # slashes do not matter
        ("studio", "VIRTANEN MATTI/2024-05-12 Wedding", True),  # nor case (exFAT folds it)
        ("backup-1", "Virtanen Matti/2024-05-12 wedding", False),  # the copy on another drive
        ("studio", "Virtanen Matti/2024-05-13 wedding", False),  # a sibling
        ("studio", "Virtanen Matti/2024-05-12 wedding 2", False),  # same prefix, another shoot
        ("studio", "Virtanen Matti/2024-05-12 wedding/extra", False),  # a shoot inside it
        ("studio", "Virtanen Matti", False),  # a shoot above it
        ("studio", "", False),
    ],
)
def test_a_shoot_hold_holds_its_shoot_and_no_other(volume, path, is_held):
    assert held(shoot(path, volume), SHOOT_HOLD) is is_held
    assert hold_reaches(SHOOT_HOLD, volume, path, "virtanen matti") is is_held


def test_a_shoot_hold_on_a_shoot_above_holds_none_of_the_files_below():
    # a path hold on the parent folder would hold the files under it; a shoot hold does not
    parent = shoot("Virtanen Matti", names=("2024-05-12 wedding/a.jpg", "b.jpg"))
    inner = hold("shoot", volume="studio", path="Virtanen Matti/2024-05-12 wedding")
    assert held_files(parent, inner) == {"a.jpg": RULE_DATE, "b.jpg": RULE_DATE}


def test_a_shoot_hold_without_a_volume_holds_the_shoot_on_every_volume():
    anywhere = hold("shoot", path="Virtanen Matti/2024-05-12 wedding")
    assert held(shoot(volume="studio"), anywhere)
    assert held(shoot(volume="backup-1"), anywhere)
    assert not held(shoot("Virtanen Matti/2024-05-13 wedding"), anywhere)


# --- path scope -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", {"a.jpg": None, "a.cr2": None}),  # the whole volume
        ("Virtanen Matti", {"a.jpg": None, "a.cr2": None}),
        ("virtanen matti/2024-05-12 WEDDING", {"a.jpg": None, "a.cr2": None}),
        ("Virtanen Matti/2024-05-12 wedding/RAW", {"a.jpg": RULE_DATE, "a.cr2": None}),
        ("Virtanen Matti/2024-05-12 wedding/RAW/", {"a.jpg": RULE_DATE, "a.cr2": None}),
        ("Virtanen Matti/2024-05-12 wedding/JPEG/a.jpg", {"a.jpg": None, "a.cr2": RULE_DATE}),
        ("Virtanen Matti/2024-05-12 wedding/RA", {"a.jpg": RULE_DATE, "a.cr2": RULE_DATE}),
        ("Virtanen Matti/2024-05-12 wedding 2", {"a.jpg": RULE_DATE, "a.cr2": RULE_DATE}),
        ("Virtanen Matt", {"a.jpg": RULE_DATE, "a.cr2": RULE_DATE}),
    ],
)
def test_a_path_hold_holds_what_lies_under_its_path(path, expected):
    assert held_files(shoot(), hold("path", volume="studio", path=path)) == expected


def test_a_path_hold_on_another_volume_holds_nothing_here():
    h = hold("path", volume="backup-1", path="Virtanen Matti")
    assert not held(shoot(), h)


def test_a_path_hold_inside_a_shoot_at_the_volume_root_holds_only_its_files():
    # a shoot whose folder is the volume root itself (path "")
    root_shoot = shoot("", names=("RAW/a.cr2", "b.jpg"))
    h = hold("path", volume="studio", path="RAW")
    assert held_files(root_shoot, h) == {"a.cr2": None, "b.jpg": RULE_DATE}


# --- customer scope and malformed holds -------------------------------------------------------


def test_a_customer_hold_holds_every_shoot_of_that_customer_only():
    h = hold("customer", customer_key="Virtanen_Matti")  # normalised before comparing
    assert held(shoot(), h)
    assert held(shoot("2020-01-01 Virtanen Matti", "backup-1"), h)
    assert not held(shoot("2024-05-12 Mäkinen Anna", customer="Mäkinen Anna"), h)


@pytest.mark.parametrize(
    "malformed",
    [
        hold("customer"),  # a customer hold with no customer
        hold("volume", volume="backup-1", path="elsewhere"),  # a scope this version does not know
        hold("", customer_key="someone else"),
    ],
    ids=["customer-without-key", "unknown-scope", "empty-scope"],
)
def test_a_malformed_hold_keeps_every_shoot_rather_than_missing_one(malformed):
    for s in (shoot(), shoot("2024-05-12 Mäkinen Anna", "backup-1", customer="Mäkinen Anna")):
        assert held(s, malformed)
        assert hold_reaches(malformed, s.volume, s.path, s.customer_key)


# was a bug: a shoot hold whose path is missing (a NULL holds.path row) compared '' with the
# shoot's path and held nothing, where a path hold without a path holds everything
def test_a_shoot_hold_without_a_path_keeps_the_shoots_of_its_volume_rather_than_none():
    pathless = hold("shoot", volume="studio")
    assert held(shoot(), pathless)
    assert hold_reaches(pathless, "studio", "Virtanen Matti/2024-05-12 wedding", "x")


# --- hold_reaches, as the executor asks it for a trashed shoot --------------------------------


@pytest.mark.parametrize(
    ("h", "volume", "path", "customer_key", "reaches"),
    [
        (hold("customer", customer_key="mäkinen anna"), "studio", "x", "Mäkinen_Anna", True),
        (hold("customer", customer_key="MÄKINEN  ANNA"), "studio", "x", "mäkinen anna", True),
        (hold("customer", customer_key="mäkinen anna"), "studio", "x", "mäkinen ann", False),
        (hold("shoot", volume="studio", path="a/b"), "studio", "a/b", "c", True),
        (hold("shoot", volume="studio", path="a/b"), "backup-1", "a/b", "c", False),
        (hold("shoot", volume="studio", path="a/b"), "studio", "a/b/c", "c", False),
        (hold("shoot", volume="studio", path="a/b"), "studio", "a", "c", False),
        (hold("path", volume="studio", path="a"), "studio", "a/b", "c", True),
        (hold("path", volume="studio", path="a/b/RAW"), "studio", "a/b", "c", True),  # some files
        (hold("path", volume="studio", path="a/bc"), "studio", "a/b", "c", False),
        (hold("path", volume="studio", path="a/b"), "studio", "a/bc", "c", False),
        (hold("path", volume="studio", path="a"), "backup-1", "a/b", "c", False),
        (hold("path", volume="studio", path=""), "studio", "a/b", "c", True),
        (hold("path", path="a"), "backup-1", "a/b", "c", True),  # no volume: every volume
        (hold("customer"), "studio", "a/b", "c", True),
        (hold("unknown"), "studio", "a/b", "c", True),
    ],
)
def test_hold_reaches_answers_for_a_shoot_known_by_volume_path_and_customer(
    h, volume, path, customer_key, reaches
):
    assert hold_reaches(h, volume, path, customer_key) is reaches


# --- end dates --------------------------------------------------------------------------------


def test_a_hold_keeps_through_its_until_day_inclusive():
    h = hold("customer", until=date(2026, 3, 31), customer_key="virtanen matti")
    assert set(held_files(shoot(), h).values()) == {date(2026, 4, 1)}
    assert hold_active(h, date(2026, 3, 31))
    assert not hold_active(h, date(2026, 4, 1))
    assert hold_active(hold("customer", customer_key="x"), date.max)


def test_a_hold_until_the_last_representable_day_never_ends():
    h = hold("customer", until=date.max, customer_key="virtanen matti")
    assert set(held_files(shoot(), h).values()) == {None}


def test_a_hold_ended_before_the_rule_date_changes_nothing():
    h = hold("customer", until=date(2025, 5, 10), customer_key="virtanen matti")
    assert set(held_files(shoot(), h).values()) == {RULE_DATE}
    h = hold("customer", until=date(2025, 5, 11), customer_key="virtanen matti")
    assert set(held_files(shoot(), h).values()) == {RULE_DATE}  # ends the day before it
    h = hold("customer", until=date(2025, 5, 12), customer_key="virtanen matti")
    assert set(held_files(shoot(), h).values()) == {date(2025, 5, 13)}
