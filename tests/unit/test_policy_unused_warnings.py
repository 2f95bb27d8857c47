"""A rule or config hold that applies to no indexed shoot is warned about (a typo protects
nothing); one that applies to some shoot, or to some file of it, is not."""

from __future__ import annotations

from datetime import date

import pytest

from archivekeeper.core.durations import parse_period
from archivekeeper.core.model import FileFact, Hold, Match, Rule, ShootFact
from archivekeeper.core.policy import unused_rules_and_holds

WEDDING = "Virtanen Matti/2024-05-12 wedding"


def shoot(path=WEDDING, volume="studio", customer="Virtanen Matti", type="wedding",
          names=("JPEG/a.jpg", "RAW/a.cr2")) -> ShootFact:
    files = tuple(FileFact(f"{path}/{n}", 100, 1) for n in names)
    day = date(2024, 5, 12)
    return ShootFact(1, volume, path, customer, customer.lower(), day, "folder", type, day, day,
                     files=files)


SHOOTS = [shoot(), shoot("2023-01-02 Mäkinen Anna", "backup-1", "Mäkinen Anna", None)]


def rule(match=None, exclude=None, name="r") -> Rule:
    return Rule(name, "delete", parse_period("1 year"), match=match, exclude=exclude)


def hold(**kw) -> Hold:
    return Hold("cfg-3", "invoice", "open invoice", **kw)


def rule_warned(r: Rule, shoots=SHOOTS) -> bool:
    warnings = unused_rules_and_holds(shoots, [r], [])
    assert warnings in ([], [f"rule '{r.name}' matches no indexed shoot (a typo protects nothing)"])
    return bool(warnings)


def hold_warned(h: Hold, shoots=SHOOTS) -> bool:
    warnings = unused_rules_and_holds(shoots, [], [h])
    assert warnings in ([], ["hold cfg-3 (invoice: open invoice) matches no indexed shoot "
                             "(a typo protects nothing)"])
    return bool(warnings)


@pytest.mark.parametrize(
    ("r", "warned"),
    [
        (rule(), False),
        (rule(Match(type="wedding")), False),
        (rule(Match(type="weding")), True),
        (rule(Match(customer="mäkinen_anna")), False),  # only the second shoot matches
        (rule(Match(customer="Mäkinen Ana")), True),
        (rule(Match(volume="backup-1")), False),
        (rule(Match(volume="backup-2")), True),
        (rule(Match(path="Virtanen Matti/*")), False),
        (rule(Match(path="Virtanen Mati/*")), True),
        (rule(Match(files="*.CR2")), False),  # covers some file of a shoot
        (rule(Match(files="*.nef")), True),
        (rule(Match(type="wedding", files="*.nef")), True),
        (rule(exclude=Match(files="*.cr2")), False),  # the jpegs are still covered
        (rule(exclude=Match(files="a.*")), True),  # every file is excluded
        (rule(Match(files="*.jpg"), Match(files="a.*")), True),
        (rule(exclude=Match(volume="studio")), False),
        (rule(exclude=Match(customer="*")), True),
    ],
)
def test_a_rule_is_warned_about_only_when_it_applies_to_no_shoot(r, warned):
    assert rule_warned(r) is warned


@pytest.mark.parametrize(
    ("h", "warned"),
    [
        (hold(customer_key="virtanen matti"), False),
        (hold(customer_key="Mäkinen_Anna"), False),
        (hold(customer_key="virtanen mati"), True),
        (hold(scope="shoot", volume="studio", path=WEDDING), False),
        (hold(scope="shoot", volume="backup-1", path=WEDDING), True),
        (hold(scope="shoot", volume="studio", path="Virtanen Matti"), True),  # not a shoot
        (hold(scope="path", volume="studio", path="Virtanen Matti"), False),  # holds a shoot
        (hold(scope="path", volume="studio", path=f"{WEDDING}/RAW"), False),  # holds a file
        (hold(scope="path", volume="studio", path=f"{WEDDING}/raw/A.CR2"), False),
        (hold(scope="path", volume="studio", path=f"{WEDDING}/RAW/a"), True),  # no such file
        (hold(scope="path", volume="studio", path=f"{WEDDING}/EXPORT"), True),
        (hold(scope="path", volume="backup-1", path=f"{WEDDING}/RAW"), True),
        (hold(scope="path", volume="studio", path="Virtanen Matti/2024"), True),
    ],
)
def test_a_hold_is_warned_about_only_when_it_reaches_no_shoot_or_file(h, warned):
    assert hold_warned(h) is warned


def test_with_no_shoot_indexed_every_rule_and_hold_is_warned_about_in_order():
    rules = [rule(name="first"), rule(Match(type="passport"), name="second")]
    holds = [hold(customer_key="x"), Hold("cfg-4", "other", "why", scope="path", path="p")]
    assert unused_rules_and_holds([], rules, holds) == [
        "rule 'first' matches no indexed shoot (a typo protects nothing)",
        "rule 'second' matches no indexed shoot (a typo protects nothing)",
        "hold cfg-3 (invoice: open invoice) matches no indexed shoot (a typo protects nothing)",
        "hold cfg-4 (other: why) matches no indexed shoot (a typo protects nothing)",
    ]


def test_a_rule_with_an_unknown_base_date_is_a_value_error():
    bad = Rule("r", "delete", parse_period("1 year"), since="birthday")
    with pytest.raises(ValueError, match="since must be one of shoot_date, last_used, modified"):
        unused_rules_and_holds(SHOOTS, [bad], [])
