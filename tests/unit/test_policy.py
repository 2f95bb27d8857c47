from __future__ import annotations

from datetime import date

import pytest

from archivekeeper.core.durations import parse_period
from archivekeeper.core.model import Erasure, FileFact, Hold, Match, Rule, ShootFact
from archivekeeper.core.naming import normalize_customer
from archivekeeper.core.policy import evaluate_shoot, explain_shoot, unused_rules_and_holds


def make_shoot(
    *,
    id=1,
    volume="studio",
    path="2024-05-12 Virtanen Matti",
    customer="Virtanen Matti",
    shot=date(2024, 5, 12),
    type=None,
    modified=None,
    last_used=None,
    names=("JPEG/a.jpg", "RAW/a.CR2"),
    state="online",
    incomplete=False,
):
    files = tuple(
        FileFact(f"{path}/{name}", 1000 + i, 1_700_000_000_000_000_000 + i)
        for i, name in enumerate(names)
    )
    return ShootFact(
        id=id,
        volume=volume,
        path=path,
        customer=customer,
        customer_key=normalize_customer(customer),
        date=shot,
        date_source="folder",
        type=type,
        modified=modified or shot,
        last_used=last_used or modified or shot,
        state=state,
        incomplete=incomplete,
        files=files,
    )


def rule(name, kind, period, since="shoot_date", match=None, exclude=None):
    return Rule(name, kind, parse_period(period), since, match, exclude)


def dates(decision):
    """Return {base name: (date, rule)} for every file of a decision."""
    return {
        f.relpath.rsplit("/", 1)[-1]: (g.date, g.rule) for g in decision.groups for f in g.files
    }


def decide(shoot, rules, holds=(), erasures=()):
    return dates(evaluate_shoot(shoot, rules, holds, erasures))


# --- match keys -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("match", "applies"),
    [
        (None, True),
        (Match(), True),
        (Match(customer="Virtanen Matti"), True),
        (Match(customer="virtanen_matti"), True),
        (Match(customer="VIRTANEN   matti"), True),
        (Match(customer="Virtanen*"), True),
        (Match(customer="Mäkinen Anna"), False),
        (Match(type="wedding"), True),
        (Match(type="WEDDING"), True),
        (Match(type="wed*"), True),
        (Match(type="passport"), False),
        (Match(volume="studio"), True),
        (Match(volume="Studio"), False),
        (Match(path="2024-*"), True),
        (Match(path="2023-*"), False),
        (Match(path="*"), True),
        (Match(type="wedding", volume="backup-1"), False),
    ],
)
def test_rule_applies_when_every_match_key_matches(match, applies):
    shoot = make_shoot(type="wedding")
    result = decide(shoot, [rule("r", "delete", "1 year", match=match)])
    expected = (date(2025, 5, 12), "r") if applies else (None, None)
    assert set(result.values()) == {expected}


def test_customer_match_sees_nfd_names_as_the_same_customer():
    shoot = make_shoot(customer="Ma\u0308kinen_Anna", path="2024-05-12 Ma\u0308kinen_Anna")
    result = decide(shoot, [rule("r", "delete", "1 year", match=Match(customer="mäkinen anna"))])
    assert set(result.values()) == {(date(2025, 5, 12), "r")}


def test_type_rule_never_matches_a_shoot_without_type():
    shoot = make_shoot(type=None)
    assert set(decide(shoot, [rule("r", "delete", "1 day", match=Match(type="*"))]).values()) == {
        (None, None)
    }


def test_path_glob_star_stops_at_slash_and_double_star_crosses():
    shoot = make_shoot(path="Virtanen Matti/12.05.2024 passport")
    single = rule("single", "delete", "1 day", match=Match(path="Virtanen*"))
    double = rule("double", "delete", "2 days", match=Match(path="Virtanen*/**"))
    assert set(decide(shoot, [single, double]).values()) == {(date(2024, 5, 14), "double")}


@pytest.mark.parametrize(
    ("exclude", "applies"),
    [
        (Match(type="passport"), True),
        (Match(type="wedding"), False),
        (Match(customer="virtanen*"), False),
        (Match(volume="studio"), False),
        (Match(path="2024*"), False),
        (Match(type="passport", volume="studio"), False),  # any exclude key that matches excludes
    ],
)
def test_exclude_keys_leave_the_shoot_out(exclude, applies):
    shoot = make_shoot(type="wedding")
    result = decide(shoot, [rule("r", "delete", "1 year", exclude=exclude)])
    assert set(result.values()) == ({(date(2025, 5, 12), "r")} if applies else {(None, None)})


def test_exclude_with_only_files_excludes_those_files():
    shoot = make_shoot(names=("a.jpg", "a.cr2", "b.CR2"))
    result = decide(shoot, [rule("r", "delete", "1 year", exclude=Match(files="*.cr2"))])
    assert result == {
        "a.jpg": (date(2025, 5, 12), "r"),
        "a.cr2": (None, None),
        "b.CR2": (None, None),
    }


def test_files_rule_beside_a_shoot_rule():
    shoot = make_shoot(names=("JPEG/a.jpg", "RAW/a.CR2", "RAW/b.nef"))
    rules = [
        rule("raw-one-year", "delete", "1 year", match=Match(files="*.{cr2,nef}")),
        rule("all-five-years", "delete", "5 years"),
    ]
    assert decide(shoot, rules) == {
        "a.jpg": (date(2029, 5, 12), "all-five-years"),
        "a.CR2": (date(2025, 5, 12), "raw-one-year"),
        "b.nef": (date(2025, 5, 12), "raw-one-year"),
    }


def test_files_keep_rule_keeps_only_those_files():
    shoot = make_shoot(names=("a.jpg", "a.cr2"))
    rules = [
        rule("delete-all", "delete", "1 year"),
        rule("keep-jpegs", "keep", "3 years", match=Match(files="*.jpg")),
    ]
    assert decide(shoot, rules) == {
        "a.jpg": (date(2027, 5, 12), "delete-all"),
        "a.cr2": (date(2025, 5, 12), "delete-all"),
    }


# --- bases and periods --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("shoot_date", date(2025, 1, 10)),
        ("modified", date(2025, 2, 20)),
        ("last_used", date(2025, 3, 30)),
    ],
)
def test_base_dates_are_the_shoots(since, expected):
    shoot = make_shoot(
        shot=date(2024, 1, 10), modified=date(2024, 2, 20), last_used=date(2024, 3, 30)
    )
    rules = [rule("r", "delete", "1 year", since=since, match=Match(files="*.jpg"))]
    assert decide(shoot, rules)["a.jpg"] == (expected, "r")


@pytest.mark.parametrize(
    ("shot", "period", "expected"),
    [
        (date(2024, 2, 29), "1 year", date(2025, 2, 28)),
        (date(2024, 2, 29), "4 years", date(2028, 2, 29)),
        (date(2024, 1, 31), "1 month", date(2024, 2, 29)),
        (date(2023, 1, 31), "1 month", date(2023, 2, 28)),
        (date(2024, 5, 12), "6 months", date(2024, 11, 12)),
        (date(2024, 5, 12), "2 weeks", date(2024, 5, 26)),
        (date(2024, 5, 12), "10 days", date(2024, 5, 22)),
        (date(2024, 3, 30), "1 day", date(2024, 3, 31)),  # the EU spring DST night
        (date(2024, 10, 26), "1 day", date(2024, 10, 27)),  # the EU autumn DST night
        (date(9999, 6, 1), "1 year", date.max),
        (date(9999, 12, 30), "5 days", date.max),
    ],
)
def test_periods_are_calendar_arithmetic(shot, period, expected):
    shoot = make_shoot(shot=shot)
    assert set(decide(shoot, [rule("r", "delete", period)]).values()) == {(expected, "r")}


# --- precedence ---------------------------------------------------------------------------------


def test_earliest_delete_rule_decides():
    shoot = make_shoot(type="passport")
    rules = [
        rule("five-years", "delete", "5 years"),
        rule("passport", "delete", "6 months", match=Match(type="passport")),
    ]
    assert set(decide(shoot, rules).values()) == {(date(2024, 11, 12), "passport")}


def test_equal_delete_dates_name_the_first_rule():
    rules = [rule("first", "delete", "12 months"), rule("second", "delete", "1 year")]
    assert set(decide(make_shoot(), rules).values()) == {(date(2025, 5, 12), "first")}


def test_keep_wins_over_delete():
    rules = [rule("delete-fast", "delete", "1 month"), rule("keep-long", "keep", "2 years")]
    assert set(decide(make_shoot(), rules).values()) == {(date(2026, 5, 12), "delete-fast")}


def test_keep_alone_never_deletes():
    assert set(decide(make_shoot(), [rule("keep", "keep", "1 year")]).values()) == {(None, None)}


def test_shorter_keep_changes_nothing():
    rules = [rule("delete", "delete", "2 years"), rule("keep", "keep", "1 year")]
    assert set(decide(make_shoot(), rules).values()) == {(date(2026, 5, 12), "delete")}


# --- holds --------------------------------------------------------------------------------------


DELETE_ONE_YEAR = [rule("one-year", "delete", "1 year")]


def hold(scope="customer", until=None, **kw):
    return Hold(
        id="cfg-1", kind="invoice", reason="open invoice 2024-113", until=until, scope=scope, **kw
    )


def test_customer_hold_with_end_keeps_until_the_day_after_it():
    held = hold(customer_key="virtanen matti", until=date(2027, 1, 31))
    assert set(decide(make_shoot(), DELETE_ONE_YEAR, [held]).values()) == {
        (date(2027, 2, 1), "one-year")
    }


def test_hold_without_end_keeps_forever():
    held = hold(customer_key="virtanen matti")
    assert set(decide(make_shoot(), DELETE_ONE_YEAR, [held]).values()) == {(None, "one-year")}


def test_ended_hold_changes_nothing():
    held = hold(customer_key="virtanen matti", until=date(2024, 6, 1))
    assert set(decide(make_shoot(), DELETE_ONE_YEAR, [held]).values()) == {
        (date(2025, 5, 12), "one-year")
    }


def test_customer_hold_key_is_normalised():
    held = hold(customer_key="Virtanen_Matti")
    assert set(decide(make_shoot(), DELETE_ONE_YEAR, [held]).values()) == {(None, "one-year")}


def test_hold_of_another_customer_does_not_apply():
    held = hold(customer_key="mäkinen anna")
    assert set(decide(make_shoot(), DELETE_ONE_YEAR, [held]).values()) == {
        (date(2025, 5, 12), "one-year")
    }


def test_shoot_hold_applies_on_its_volume_only():
    held = hold(scope="shoot", volume="studio", path="2024-05-12 Virtanen Matti")
    here = make_shoot()
    copy = make_shoot(volume="backup-1")
    assert set(decide(here, DELETE_ONE_YEAR, [held]).values()) == {(None, "one-year")}
    assert set(decide(copy, DELETE_ONE_YEAR, [held]).values()) == {(date(2025, 5, 12), "one-year")}


def test_path_hold_on_a_subfolder_holds_only_files_under_it():
    held = hold(scope="path", volume="studio", path="2024-05-12 Virtanen Matti/RAW")
    result = decide(make_shoot(), DELETE_ONE_YEAR, [held])
    assert result == {"a.jpg": (date(2025, 5, 12), "one-year"), "a.CR2": (None, "one-year")}


def test_path_hold_on_a_single_file():
    held = hold(scope="path", volume="studio", path="2024-05-12 Virtanen Matti/JPEG/a.jpg")
    result = decide(make_shoot(), DELETE_ONE_YEAR, [held])
    assert result == {"a.jpg": (None, "one-year"), "a.CR2": (date(2025, 5, 12), "one-year")}


@pytest.mark.parametrize("path", ["", "Virtanen Matti", "Virtanen Matti/2024-05-12 wedding"])
def test_path_hold_on_the_shoot_or_above_holds_every_file(path):
    shoot = make_shoot(path="Virtanen Matti/2024-05-12 wedding")
    held = hold(scope="path", volume="studio", path=path)
    assert set(decide(shoot, DELETE_ONE_YEAR, [held]).values()) == {(None, "one-year")}


def test_path_hold_on_a_sibling_folder_does_not_apply():
    shoot = make_shoot(path="Virtanen Matti/2024-05-12 wedding")
    held = hold(scope="path", volume="studio", path="Virtanen Matti/2024-05-1")
    assert set(decide(shoot, DELETE_ONE_YEAR, [held]).values()) == {(date(2025, 5, 12), "one-year")}


def test_decision_lists_the_holds_that_apply():
    held = hold(customer_key="virtanen matti", until=date(2027, 1, 31))
    other = hold(customer_key="someone else")
    decision = evaluate_shoot(make_shoot(), DELETE_ONE_YEAR, [held, other], [])
    assert decision.holds == (held,)
    assert all(g.holds == (held,) for g in decision.groups)


# --- erasure ------------------------------------------------------------------------------------


def test_erasure_makes_an_older_shoot_due_on_its_date_despite_keep_rules():
    rules = [rule("keep-ten", "keep", "10 years"), rule("delete-late", "delete", "20 years")]
    erased = Erasure("virtanen matti", date(2025, 3, 1), "art. 17 request")
    decision = evaluate_shoot(make_shoot(), rules, [], [erased])
    assert [(g.date, g.rule, g.erasure) for g in decision.groups] == [
        (date(2025, 3, 1), "erasure", True)
    ]


def test_erasure_does_not_reach_a_shoot_dated_after_it():
    erased = Erasure("virtanen matti", date(2024, 5, 11))
    assert set(decide(make_shoot(), [], [], [erased]).values()) == {(None, None)}


def test_erasure_reaches_a_shoot_dated_on_its_day():
    erased = Erasure("Virtanen_Matti", date(2024, 5, 12))
    assert set(decide(make_shoot(), [], [], [erased]).values()) == {(date(2024, 5, 12), "erasure")}


def test_hold_wins_over_erasure():
    erased = Erasure("virtanen matti", date(2025, 3, 1))
    held = hold(customer_key="virtanen matti", until=date(2026, 1, 31))
    assert set(decide(make_shoot(), [], [held], [erased]).values()) == {
        (date(2026, 2, 1), "erasure")
    }


def test_a_rule_named_erasure_is_not_an_erasure():
    decision = evaluate_shoot(make_shoot(), [rule("erasure", "delete", "1 year")], [], [])
    assert [g.erasure for g in decision.groups] == [False]


def test_unknown_since_is_a_value_error():
    with pytest.raises(ValueError, match="since"):
        evaluate_shoot(make_shoot(), [rule("r", "delete", "1 year", since="birthday")], [], [])


# --- explain ------------------------------------------------------------------------------------


def test_explain_names_every_rule_with_why_not():
    shoot = make_shoot(type="wedding", last_used=date(2022, 5, 12), shot=date(2022, 5, 12))
    rules = [
        rule("passport-photos", "delete", "6 months", match=Match(type="passport")),
        rule("keep-backups-one-year", "keep", "1 year", exclude=Match(type="wedding")),
        rule("unused-five-years", "delete", "5 years", since="last_used"),
    ]
    exp = explain_shoot(shoot, rules, [], [], today=date(2025, 1, 1))
    doc = exp.to_json()
    assert [(r["name"], r["matched"], r["why_not"]) for r in doc["rules"]] == [
        ("passport-photos", False, "type passport does not match"),
        ("keep-backups-one-year", False, "excluded by type"),
        ("unused-five-years", True, None),
    ]
    assert doc["rules"][2]["base"] == "2022-05-12"
    assert doc["rules"][2]["date"] == "2027-05-12"
    assert doc["rules"][2]["kind"] == "delete"
    assert doc["decision"] == "keep"
    assert doc["date"] == "2027-05-12"
    assert (
        doc["reason"] == "Deletable from 2027-05-12 by rule unused-five-years (last used 2022-05-12)."
    )


def test_explain_reason_names_the_keeping_rule():
    shoot = make_shoot(shot=date(2022, 5, 12))
    rules = [rule("unused", "delete", "1 year"), rule("keep-backups", "keep", "2 years")]
    doc = explain_shoot(shoot, rules, [], [], today=date(2025, 1, 1)).to_json()
    assert doc["reason"] == (
        "Deletable from 2024-05-12 by rule unused (shot 2022-05-12); kept until then by keep-backups."
    )
    assert doc["decision"] == "delete"


def test_explain_without_delete_rule_says_never():
    doc = explain_shoot(make_shoot(), [], [], [], today=date(2025, 1, 1)).to_json()
    assert (doc["decision"], doc["date"]) == ("keep", None)
    assert doc["reason"] == "Never deleted: no delete rule matches."


def test_explain_an_active_hold():
    held = hold(customer_key="virtanen matti", until=date(2027, 1, 31))
    doc = explain_shoot(make_shoot(), DELETE_ONE_YEAR, [held], [], today=date(2026, 1, 1)).to_json()
    assert doc["reason"].startswith("Held: invoice hold 'open invoice 2024-113' until 2027-01-31.")
    assert doc["date"] == "2027-02-01"
    assert doc["holds"] == [
        {
            "id": "cfg-1",
            "kind": "invoice",
            "scope": "customer",
            "customer": "virtanen matti",
            "reason": "open invoice 2024-113",
            "until": "2027-01-31",
            "active": True,
            "source": "config",
        }
    ]


def test_explain_a_file_and_a_subfolder():
    shoot = make_shoot(names=("JPEG/a.jpg", "RAW/a.CR2", "RAW/b.CR2"))
    rules = [
        rule("raw", "delete", "1 year", match=Match(files="*.cr2")),
        rule("all", "delete", "5 years"),
    ]
    exp = explain_shoot(shoot, rules, [], [], today=date(2026, 1, 1))
    assert (exp.decision, exp.date) == ("keep", date(2029, 5, 12))
    raw_folder = exp.to_json("2024-05-12 Virtanen Matti/RAW")
    assert (raw_folder["decision"], raw_folder["date"]) == ("delete", "2025-05-12")
    assert len(raw_folder["files"]) == 2
    jpeg = exp.to_json("2024-05-12 Virtanen Matti/JPEG/a.jpg")
    assert (jpeg["decision"], jpeg["date"]) == ("keep", "2029-05-12")
    assert [(r["name"], r["matched"], r["why_not"]) for r in jpeg["rules"]] == [
        ("raw", False, "files *.cr2 does not match"),
        ("all", True, None),
    ]


def test_explain_shows_offline_volume_as_blocking():
    doc = explain_shoot(make_shoot(state="offline"), DELETE_ONE_YEAR, [], [], date(2026, 1, 1))
    assert doc.blocked_by == ("volume studio is offline",)
    assert "volume studio is offline" in doc.reason


# --- warnings -----------------------------------------------------------------------------------


def test_unused_rules_and_holds_are_warned():
    shoots = [make_shoot(type="wedding")]
    rules = [
        rule("passport-photos", "delete", "6 months", match=Match(type="pasport")),
        rule("raw", "delete", "1 year", match=Match(files="*.nef")),
        rule("used", "delete", "1 year", match=Match(files="*.cr2")),
    ]
    holds = [
        hold(customer_key="virtanen mati"),
        hold(customer_key="virtanen matti"),
        hold(scope="path", volume="studio", path="2024-05-12 Virtanen Matti/RAW"),
        hold(scope="path", volume="studio", path="2024-05-12 Virtanen Matti/EXPORT"),
    ]
    warnings = unused_rules_and_holds(shoots, rules, holds)
    assert warnings == [
        "rule 'passport-photos' matches no indexed shoot (a typo protects nothing)",
        "rule 'raw' matches no indexed shoot (a typo protects nothing)",
        "hold cfg-1 (invoice: open invoice 2024-113) matches no indexed shoot "
        "(a typo protects nothing)",
        "hold cfg-1 (invoice: open invoice 2024-113) matches no indexed shoot "
        "(a typo protects nothing)",
    ]


def test_explain_an_erasure_held_until_a_date():
    erased = Erasure("virtanen matti", date(2025, 3, 1), "art. 17 request")
    held = hold(customer_key="virtanen matti", until=date(2025, 6, 30))
    doc = explain_shoot(make_shoot(), [], [held], [erased], today=date(2025, 7, 1)).to_json()
    assert doc["reason"] == (
        "Deletable from 2025-07-01 by erasure of 2025-03-01 (art. 17 request); kept until then by "
        "invoice hold 'open invoice 2024-113' until 2025-06-30."
    )
    assert doc["decision"] == "delete"
    assert doc["erasure"] == {"on": "2025-03-01", "reason": "art. 17 request"}


def test_explain_a_folder_whose_files_differ_keeps_it_until_the_last():
    shoot = make_shoot(names=("a.jpg", "a.cr2"))
    rules = [
        rule("raw", "delete", "1 year", match=Match(files="*.cr2")),
        rule("keep-jpegs", "keep", "9 years", match=Match(files="*.jpg")),
    ]
    doc = explain_shoot(shoot, rules, [], [], today=date(2026, 1, 1)).to_json()
    assert (doc["decision"], doc["date"]) == ("keep", None)
    assert doc["reason"] == "Never deleted as a whole: 1 of 2 files are never deleted (see files)."
    assert [(f["decision"], f["date"]) for f in doc["files"]] == [
        ("keep", None),
        ("delete", "2025-05-12"),
    ]
