"""Folder names are matched as written: only "/" at the ends of a configured path is ignored,
never a trailing space or letter, in rule `path:` globs and in hold paths."""

from __future__ import annotations

from datetime import date

import pytest

from archivekeeper.core.durations import parse_period
from archivekeeper.core.model import FileFact, Hold, Match, Rule, ShootFact
from archivekeeper.core.policy import evaluate_shoot

RULE_DATE = date(2025, 5, 12)


def shoot(path: str, names=("a.jpg", "b.jpg")) -> ShootFact:
    files = tuple(FileFact(f"{path}/{n}", 100, 1) for n in names)
    day = date(2024, 5, 12)
    return ShootFact(1, "studio", path, "Virtanen Matti", "virtanen matti", day, "folder", None,
                     day, day, files=files)


def dates(s: ShootFact, rules, holds=()) -> dict[str, date | None]:
    decision = evaluate_shoot(s, rules, holds, [])
    return {f.relpath.removeprefix(s.path + "/"): g.date for g in decision.groups for f in g.files}


@pytest.mark.parametrize(
    ("shoot_path", "glob", "applies"),
    [
        ("XMAS/2024-12-24 Party X", "XMAS/2024-12-24 Party X", True),
        ("XMAS/2024-12-24 Party X", "XMAS/*X", True),
        ("Party/2024-12-24 Matti ", "Party/2024-12-24 Matti ", True),
        ("Party/2024-12-24 Matti ", "Party/*Matti", False),  # the folder ends with a space
    ],
)
def test_a_path_rule_sees_the_folder_name_as_written(shoot_path, glob, applies):
    rule = Rule("r", "delete", parse_period("1 year"), match=Match(path=glob))
    assert set(dates(shoot(shoot_path), [rule]).values()) == ({RULE_DATE} if applies else {None})


ONE_YEAR = [Rule("one-year", "delete", parse_period("1 year"))]


@pytest.mark.parametrize("folder", ["Selects X", "Selects ", " Selects"])
def test_a_path_hold_on_a_folder_inside_a_shoot_holds_its_files_whatever_the_name_ends_with(
    folder,
):
    s = shoot("2024-05-12 Virtanen Matti", names=(f"{folder}/a.jpg", "b.jpg"))
    hold = Hold("1", "other", "x", None, volume="studio", path=f"{s.path}/{folder}",
                scope="path")
    assert dates(s, ONE_YEAR, [hold]) == {f"{folder}/a.jpg": None, "b.jpg": RULE_DATE}


def test_a_path_hold_on_a_file_whose_name_ends_in_a_capital_holds_that_file():
    s = shoot("2024-05-12 Virtanen Matti", names=("IMG_1.DNGX", "IMG_1.DNG"))
    hold = Hold("1", "other", "x", None, volume="studio", path=f"{s.path}/IMG_1.DNGX",
                scope="path")
    assert dates(s, ONE_YEAR, [hold]) == {"IMG_1.DNGX": None, "IMG_1.DNG": RULE_DATE}
