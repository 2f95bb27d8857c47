"""The `explain --json` document (SPEC "JSON shapes") and the reasons `explain` gives, for a
shoot, one file of it and a folder inside it."""

from __future__ import annotations

from datetime import date

import pytest

from archivekeeper.core.durations import parse_period
from archivekeeper.core.model import Erasure, FileFact, Hold, Match, Rule, ShootFact
from archivekeeper.core.policy import explain_shoot

PATH = "Virtanen Matti/2024-05-12 wedding"
TODAY = date(2025, 6, 1)


def shoot(names_sizes=(("JPEG/a.jpg", 1000), ("RAW/a.cr2", 3000), ("RAW/b.cr2", 2000)),
          state="online", incomplete=False, volume="studio") -> ShootFact:
    files = tuple(FileFact(f"{PATH}/{n}", size, 1) for n, size in names_sizes)
    return ShootFact(7, volume, PATH, "Virtanen Matti", "virtanen matti", date(2024, 5, 12),
                     "folder", "wedding", date(2024, 5, 20), date(2024, 6, 1), state=state,
                     incomplete=incomplete, files=files)


RULES = [
    Rule("raw", "delete", parse_period("1 year"), match=Match(files="*.cr2")),
    Rule("nef", "delete", parse_period("6 months"), match=Match(files="*.nef")),
    Rule("passport", "delete", parse_period("6 months"), match=Match(type="passport")),
    Rule("unused", "delete", parse_period("5 years"), since="last_used"),
]
HOLD = Hold("12", "legal-claim", "dispute", date(2026, 1, 31), volume="studio",
            path=f"{PATH}/RAW/b.cr2", scope="path", source="cli")
HOLD_JSON = {"id": "12", "kind": "legal-claim", "scope": "path", "volume": "studio",
             "path": f"{PATH}/RAW/b.cr2", "reason": "dispute", "until": "2026-01-31",
             "active": True, "source": "cli"}


def rule_json(name, kind, matched, why_not, since, period, base, when, **extra):
    return {"name": name, "kind": kind, "matched": matched, "why_not": why_not, "since": since,
            "period": period, "base": base, "date": when, **extra}


RAW = rule_json("raw", "delete", True, None, "shoot_date", "1 year", "2024-05-12", "2025-05-12")
RAW_MISS = rule_json("raw", "delete", False, "files *.cr2 does not match", "shoot_date", "1 year",
                     "2024-05-12", "2025-05-12")
NEF = rule_json("nef", "delete", False, "files *.nef does not match", "shoot_date", "6 months",
                "2024-05-12", "2024-11-12")
PASSPORT = rule_json("passport", "delete", False, "type passport does not match", "shoot_date",
                     "6 months", "2024-05-12", "2024-11-12")
UNUSED = rule_json("unused", "delete", True, None, "last_used", "5 years", "2024-06-01",
                   "2029-06-01")
JPEG_DOC = {
    "path": f"{PATH}/JPEG/a.jpg", "size": 1000, "rules": [RAW_MISS, NEF, PASSPORT, UNUSED],
    "holds": [], "decision": "keep", "date": "2029-06-01", "rule": "unused",
    "reason": "Deletable from 2029-06-01 by rule unused (last used 2024-06-01).",
}
RAW_A_DOC = {
    "path": f"{PATH}/RAW/a.cr2", "size": 3000, "rules": [RAW, NEF, PASSPORT, UNUSED],
    "holds": [], "decision": "delete", "date": "2025-05-12", "rule": "raw",
    "reason": "Deletable from 2025-05-12 by rule raw (shot 2024-05-12).",
}
RAW_B_DOC = {
    "path": f"{PATH}/RAW/b.cr2", "size": 2000, "rules": [RAW, NEF, PASSPORT, UNUSED],
    "holds": [HOLD_JSON], "decision": "keep", "date": "2026-02-01", "rule": "raw",
    "reason": "Held: legal-claim hold 'dispute' until 2026-01-31. Deletable from 2026-02-01 by rule "
              "raw (shot 2024-05-12); kept until then by legal-claim hold 'dispute' until "
              "2026-01-31.",
}
SHOOT_JSON = {"id": 7, "volume": "studio", "path": PATH, "customer": "Virtanen Matti",
              "date": "2024-05-12", "date_source": "folder", "type": "wedding", "files": 3,
              "bytes": 6000, "modified": "2024-05-20", "last_used": "2024-06-01",
              "state": "online", "incomplete": False}


def explained(**kw):
    return explain_shoot(shoot(**kw), RULES, [HOLD], [], TODAY)


def test_the_shoot_document():
    assert explained().to_json() == {
        "path": PATH,
        "volume": "studio",
        "shoot": SHOOT_JSON,
        "rules": [
            {**RAW, "files_matched": 2},
            {**NEF, "matched": False, "why_not": "covers none of the shoot's files",
             "files_matched": 0},
            PASSPORT,
            UNUSED,
        ],
        "holds": [HOLD_JSON],
        "erasure": None,
        "blocked_by": [],
        "decision": "keep",
        "date": "2029-06-01",
        "reason": "Deletable as a whole from 2029-06-01, when the last of its files is (see files).",
        "files": [JPEG_DOC, RAW_A_DOC, RAW_B_DOC],
    }


@pytest.mark.parametrize("relpath", [PATH, f"/{PATH}/", None])
def test_the_shoot_folder_itself_gives_the_shoot_document(relpath):
    assert explained().to_json(relpath) == explained().to_json()


def test_one_file_gives_its_own_rules_holds_decision_and_reason():
    doc = explained().to_json(f"{PATH}/RAW/b.cr2")
    assert doc == {
        **explained().to_json(),
        "path": f"{PATH}/RAW/b.cr2",
        "rules": RAW_B_DOC["rules"],
        "holds": [HOLD_JSON],
        "decision": "keep",
        "date": "2026-02-01",
        "reason": RAW_B_DOC["reason"],
        "files": [RAW_B_DOC],
    }


def test_one_file_without_holds_shows_none_of_the_shoots_holds():
    doc = explained().to_json(f"{PATH}/RAW/a.cr2")
    assert (doc["holds"], doc["files"]) == ([], [RAW_A_DOC])
    assert explained().to_json()["holds"] == [HOLD_JSON]


def test_a_file_left_out_by_exclude_files_says_so():
    not_jpegs = Rule("not-jpegs", "delete", parse_period("1 year"),
                     exclude=Match(files="*.jpg"))
    doc = explain_shoot(shoot(), [not_jpegs], [], [], TODAY).to_json(f"{PATH}/JPEG/a.jpg")
    assert doc["rules"] == [rule_json("not-jpegs", "delete", False, "excluded by files",
                                      "shoot_date", "1 year", "2024-05-12", "2025-05-12")]
    assert doc["reason"] == "Never deleted: no delete rule matches."


@pytest.mark.parametrize("relpath", [f"{PATH}/RAW", f"{PATH}/RAW/", f"/{PATH}/RAW"])
def test_a_folder_gives_every_file_under_it_decided_by_the_last(relpath):
    doc = explained().to_json(relpath)
    assert doc == {
        **explained().to_json(),
        "path": relpath,
        "decision": "keep",
        "date": "2026-02-01",
        "reason": "Deletable as a whole from 2026-02-01, when the last of its files is (see files).",
        "files": [RAW_A_DOC, RAW_B_DOC],
    }
    on_the_day = explain_shoot(shoot(), RULES, [HOLD], [], date(2026, 2, 1)).to_json(relpath)
    assert (on_the_day["decision"], on_the_day["date"]) == ("delete", "2026-02-01")


def test_a_folder_whose_files_share_one_reason_gives_that_reason():
    doc = explain_shoot(shoot(), RULES, [], [], TODAY).to_json(f"{PATH}/RAW")
    assert doc["reason"] == "Deletable from 2025-05-12 by rule raw (shot 2024-05-12)."
    assert (doc["decision"], doc["date"]) == ("delete", "2025-05-12")


def test_a_folder_holding_no_file_is_never_deleted():
    doc = explained().to_json(f"{PATH}/EXPORT")
    assert (doc["decision"], doc["date"], doc["files"]) == ("keep", None, [])
    assert doc["reason"] == "Never deleted: no files."


def test_a_shoot_with_some_files_never_deleted_says_how_many():
    rules = [Rule("raw", "delete", parse_period("1 year"), match=Match(files="*.cr2"))]
    doc = explain_shoot(shoot(), rules, [], [], TODAY).to_json()
    assert (doc["decision"], doc["date"]) == ("keep", None)
    assert doc["reason"] == (
        "Never deleted as a whole: 1 of 3 files are never deleted (see files).")
    assert doc["files"][0]["reason"] == "Never deleted: no delete rule matches."
    assert doc["files"][0]["rule"] is None


@pytest.mark.parametrize(
    ("state", "incomplete", "blocked_by"),
    [
        ("offline", False, ["volume studio is offline"]),
        ("missing", False, ["shoot is missing from volume studio"]),
        ("online", True, ["shoot is incomplete (unreadable folder)"]),
        ("offline", True, ["volume studio is offline", "shoot is incomplete (unreadable folder)"]),
    ],
)
def test_a_blocked_shoot_says_why_nothing_is_deleted_now(state, incomplete, blocked_by):
    doc = explained(state=state, incomplete=incomplete).to_json()
    assert doc["blocked_by"] == blocked_by
    assert doc["reason"] == (
        "Deletable as a whole from 2029-06-01, when the last of its files is (see files). "
        f"Nothing is deleted now: {'; '.join(blocked_by)}.")
    assert doc["shoot"]["state"] == state and doc["shoot"]["incomplete"] is incomplete


# --- reasons ------------------------------------------------------------------------------------

ONE = (("RAW/a.cr2", 10),)


def reason(rules, holds=(), erasures=(), today=TODAY) -> str:
    return explain_shoot(shoot(ONE), rules, holds, erasures, today).files[0].reason


DELETE = Rule("delete", "delete", parse_period("1 year"))


def test_a_keep_rule_ending_on_the_delete_date_is_not_named_as_keeping_it():
    keep = Rule("keep", "keep", parse_period("12 months"))
    assert reason([DELETE, keep]) == "Deletable from 2025-05-12 by rule delete (shot 2024-05-12)."
    longer = Rule("keep-longer", "keep", parse_period("13 months"))
    assert reason([DELETE, longer]) == (
        "Deletable from 2025-06-12 by rule delete (shot 2024-05-12); kept until then by keep-longer.")


def test_of_two_keep_rules_ending_on_the_same_day_the_first_is_named():
    first = Rule("first", "keep", parse_period("2 years"))
    second = Rule("second", "keep", parse_period("24 months"))
    assert reason([DELETE, first, second]).endswith("; kept until then by first.")


def test_a_hold_ending_the_day_before_the_delete_date_is_not_named_as_keeping_it():
    ends = Hold("1", "invoice", "x", date(2025, 5, 11), customer_key="virtanen matti")
    assert reason([DELETE], [ends], today=date(2025, 1, 1)) == (
        "Held: invoice hold 'x' until 2025-05-11. "
        "Deletable from 2025-05-12 by rule delete (shot 2024-05-12).")


def test_two_active_holds_are_both_named_and_the_later_end_keeps():
    a = Hold("1", "invoice", "a", date(2026, 1, 1), customer_key="virtanen matti")
    b = Hold("2", "other", "b", date(2027, 1, 1), customer_key="virtanen matti")
    assert reason([DELETE], [a, b]) == (
        "Held: invoice hold 'a' until 2026-01-01; other hold 'b' until 2027-01-01. "
        "Deletable from 2027-01-02 by rule delete (shot 2024-05-12); kept until then by other hold "
        "'b' until 2027-01-01.")


def test_a_hold_with_no_end_keeps_forever_and_says_when_it_would_go_otherwise():
    forever = Hold("1", "restriction", "art. 18", None, customer_key="virtanen matti")
    assert reason([DELETE], [forever]) == (
        "Held: restriction hold 'art. 18' with no end date. Never deleted while held; otherwise "
        "due on 2025-05-12 by rule delete (shot 2024-05-12).")


def test_an_erasure_is_named_with_its_reason_or_without_one():
    with_reason = Erasure("virtanen matti", date(2025, 3, 1), "art. 17 request")
    assert reason([], erasures=[with_reason]) == (
        "Deletable from 2025-03-01 by erasure of 2025-03-01 (art. 17 request).")
    bare = Erasure("virtanen matti", date(2025, 3, 1))
    assert reason([], erasures=[bare]) == "Deletable from 2025-03-01 by erasure of 2025-03-01."


def test_the_earliest_erasure_record_decides():
    late = Erasure("virtanen matti", date(2025, 4, 1), "later")
    early = Erasure("virtanen matti", date(2025, 3, 1), "earlier")
    doc = explain_shoot(shoot(ONE), [], [], [late, early], TODAY).to_json()
    assert doc["erasure"] == {"on": "2025-03-01", "reason": "earlier"}
    assert doc["date"] == "2025-03-01"


@pytest.mark.parametrize("odd", ["Party X", "Party X "], ids=["capital", "space"])
def test_folder_names_are_matched_as_written_when_explaining_a_path(odd):
    # a shoot folder ending in a capital or a space, with a folder "RAW X" in it
    files = (FileFact(f"{odd}/RAW X/a.cr2", 10, 1), FileFact(f"{odd}/b.jpg", 20, 1))
    party = ShootFact(8, "studio", odd, "Party", "party", date(2024, 5, 12), "folder", None,
                      date(2024, 5, 12), date(2024, 5, 12), files=files)
    doc = explain_shoot(party, [DELETE], [], [], TODAY)
    assert doc.to_json()["path"] == odd
    assert doc.to_json(odd) == doc.to_json()
    assert doc.to_json(f"/{odd}/") == doc.to_json()
    assert [f["path"] for f in doc.to_json(f"{odd}/RAW X")["files"]] == [f"{odd}/RAW X/a.cr2"]
    assert doc.to_json("Party")["files"] == []  # another folder
