"""The weekly report's model and renderings on a fixed plan (core planner, no I/O): every section
present with the right numbers, names with ä/ö, NFD and undecodable bytes shown correctly, a
customer named <script> shown and not run, the text within 80 columns."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser

import pytest

from archivekeeper.core import planner, policy
from archivekeeper.core import report as model
from archivekeeper.core.durations import Period
from archivekeeper.core.model import FileFact, Hold, Limits, Match, Rule, ShootFact
from archivekeeper.core.naming import normalize_customer
from archivekeeper.report import render

TODAY = date(2026, 12, 2)  # a Wednesday of ISO week 49
NOW = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)
RULES = (Rule("passport-photos", "delete", Period(6, "months")),  # every shoot here
         Rule("keep-recent", "keep", Period(1, "years"), match=Match(path="2026-1*")))
NFD = "Ma\u0308kinen Anna"  # as a Mac writes it
SCRIPT = "<script>alert(1)</script> Evil"
ODD_PATH = "2025-01-05 Odd\udcff Name"  # an undecodable byte in the folder name


def shoot(sid, customer, when, *, volume="studio", path=None, size=1000, state="online"):
    path = path or f"{when.isoformat()} {customer}"
    files = (FileFact(f"{path}/IMG_{sid}.jpg", size, 0), FileFact(f"{path}/IMG_{sid}.cr2", size, 0))
    return ShootFact(sid, volume, path, customer, normalize_customer(customer), when, "folder",
                     None, when, when, state=state, files=files)


SHOOTS = [
    shoot(1, NFD, date(2026, 5, 20)),  # due by passport-photos on 20 Nov, upcoming (notice)
    shoot(2, SCRIPT, date(2026, 5, 25), size=2500),
    shoot(3, "Ylönen Åsa", date(2026, 6, 10), path=ODD_PATH.replace("2025-01-05", "2026-06-10")),
    shoot(4, "Virtanen Matti", date(2026, 5, 1)),  # held
    shoot(5, "Offline Olli", date(2026, 5, 2), volume="backup-1", state="offline"),
    shoot(6, "Recent Rauha", date(2026, 11, 1)),  # inside its keep year, one copy only
    shoot(7, "Recent Rauha", date(2026, 11, 1), volume="backup-1", state="offline"),
    shoot(8, "Lone Lauri", date(2026, 10, 1)),
]
HOLDS = (Hold("cfg-1", "invoice", "open invoice 2024-113", date(2026, 12, 20),
              customer_key="virtanen matti"),)
HOLD_DOCS = [{"id": "cfg-1", "kind": "invoice", "reason": "open invoice 2024-113",
              "until": "2026-12-20", "source": "config", "customer": "Virtanen Matti"},
             {"id": "2", "kind": "legal-claim", "reason": "claim", "until": None,
              "source": "cli", "volume": "studio", "path": "x"}]


def make_doc(shoots=SHOOTS, steps=(), problems=(), trusted=True, approval=False):
    rules = RULES
    decisions = [policy.evaluate_shoot(s, rules, HOLDS, ()) for s in shoots]
    clock = planner.ClockCheck(NOW, NOW - timedelta(days=1)) if trusted else planner.ClockCheck(
        NOW, NOW + timedelta(days=3), ("the clock went back",))
    plan = planner.build_plan(shoots, decisions, today=TODAY, now=NOW,
                              notice=Period(14, "days"), require_approval=approval,
                              announcements={}, limits=Limits(max_fraction_per_volume=1.0),
                              volume_totals={"studio": (100, 10**9)}, clock=clock)
    copies = [model.CopyFact(s.id, s.volume, s.path, s.customer, s.customer_key, s.date,
                             s.type, sum(f.size for f in s.files),
                             policy.keep_until(s, rules)) for s in shoots]
    volumes = [model.VolumeFact("studio", "/srv/photos", True, False, "", TODAY),
               model.VolumeFact("backup-1", "/media/b1", False, True, "not mounted",
                                TODAY - timedelta(days=40))]
    return model.build(plan, today=TODAY, generated_at=NOW.isoformat(), rules=rules,
                       holds=HOLD_DOCS, copies=copies, volumes=volumes, steps=list(steps),
                       problems=list(problems), since="2026-11-23", audit_head=(41, "ab" * 32),
                       trusted=trusted)


@pytest.fixture(scope="module")
def doc():
    return make_doc(steps=[
        model.Activity("trashed", "2026-11-28T04:30:00+02:00", "studio", "2019-01-01 Old Oiva",
                       "Old Oiva", 3, 3_000_000),
        model.Activity("trashed", "2026-11-28T04:30:00+02:00", "studio", "2019-01-01 Old Oiva",
                       "Old Oiva", 2, 1_000_000),
        model.Activity("purged", "2026-11-29T04:30:00+02:00", "studio", "2018-01-01 Older",
                       "Older", 4, 500)])


def test_the_model_counts_upcoming_held_offline_coverage_storage_and_deleted(doc):
    upcoming = [i for g in doc["upcoming"]["groups"] for i in g["items"]]
    assert {i["shoot_id"] for i in upcoming} == {1, 2, 3}
    assert doc["upcoming"]["shoots"] == 3 and doc["upcoming"]["bytes"] == 2000 + 5000 + 2000
    # grouped by earliest deletion: never announced, so today + the notice period for all
    assert [g["date"] for g in doc["upcoming"]["groups"]] == ["2026-12-16"]
    assert [i["shoot_id"] for i in doc["holds"]["keeping"]] == [4]
    assert [h["id"] for h in doc["holds"]["ending_soon"]] == ["cfg-1"]  # 18 days; no end: not
    (drive,) = doc["offline"]
    assert (drive["name"], drive["days_unseen"], drive["shoots"], drive["waiting_items"]) == (
        "backup-1", 40, 2, 1)
    # shoot 6 has a copy on the offline drive; shoot 8 has none and is kept a year
    assert [s["shoot_id"] for s in doc["backup_coverage"]["single_copy"]] == [8]
    assert {v["name"]: v["bytes"] for v in doc["storage"]["volumes"]} == {
        "backup-1": 4000, "studio": 15000}
    assert doc["deleted"]["totals"]["trashed"] == {"items": 1, "files": 5, "bytes": 4_000_000}
    assert doc["audit"] == {"seq": 41, "hash": "ab" * 32}
    assert doc["summary"] == (
        "3 shoots (9.0 kB) will be deleted on or after 16 Dec 2026; 1 was deleted since the "
        "last report (4.0 MB); drive backup-1 has not been seen for 40 days.")
    assert model.subject(doc) == "archivekeeper: 3 shoots to be deleted (week 49)"


def test_upcoming_items_are_the_plans_own_items_with_a_reason_in_words(doc):
    item = next(i for g in doc["upcoming"]["groups"] for i in g["items"] if i["shoot_id"] == 1)
    assert item["rule"] == "passport-photos" and item["status"] == "upcoming"
    assert item["reason"] == ("rule passport-photos: deleted 6 months after the shoot date; "
                              "due, the notice period starts with this report")
    assert set(item) >= {"shoot_id", "volume", "path", "customer", "scope", "files", "bytes",
                         "date", "status", "blocked_by", "announced_at", "earliest_deletion"}


def test_awaiting_approval_names_the_exact_command():
    plan_doc = make_doc(approval=True)
    assert plan_doc["awaiting_approval"]["items"] == []  # nothing has had its notice yet
    shoots = [shoot(1, "Due Daavid", date(2025, 1, 1))]
    rules = (Rule("passport-photos", "delete", Period(6, "months")),)
    plan = planner.build_plan(
        shoots, [policy.evaluate_shoot(s, rules, (), ()) for s in shoots], today=TODAY,
        now=NOW, notice=Period(0, "days"), require_approval=True, announcements={},
        limits=Limits(max_fraction_per_volume=1.0), volume_totals={"studio": (100, 10**9)})
    doc = model.build(plan, today=TODAY, generated_at="x", rules=rules, holds=[], copies=[],
                      volumes=[], steps=[], problems=[], since="x", audit_head=None,
                      trusted=True)
    assert doc["awaiting_approval"]["command"] == "archivekeeper approve 1"
    assert doc["awaiting_approval"]["all_command"] == "archivekeeper approve --all"
    assert "1 item waits for your approval" in doc["summary"]
    assert "archivekeeper approve 1" in render.text(doc) and "approve 1" in render.html(doc)


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text, self.attrs = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data):
        self.text.append(data)


def test_html_is_self_contained_escaped_and_shows_every_section(doc):
    page = render.html(doc)
    parsed = _Collector()
    parsed.feed(page)
    assert "script" not in parsed.tags and "img" not in parsed.tags and "link" not in parsed.tags
    assert not any(k.startswith("on") or (v or "").startswith(("http", "//"))
                   for k, v in parsed.attrs if k != "xmlns")
    text = "".join(parsed.text)
    assert SCRIPT in text  # shown as text, not run
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert NFD in text and "Ylönen Åsa" in text
    assert "Odd\\xff Name" in text  # the undecodable byte as \xNN
    for heading in ("Upcoming deletions", "Awaiting your approval", "Deleted since the last "
                    "report", "Kept by holds", "Holds ending within 30 days", "Offline drives",
                    "Problems", "Backup coverage", "Storage", "Audit log"):
        assert heading in text, heading
    assert page.count("<svg") == 2 and page.count("<rect") == 2 + 1  # 2 volumes, 1 year
    assert "ab" * 32 in text and "record 41" in text


def test_text_is_within_80_columns_and_shows_names_escaped_where_they_must_be(doc):
    long = shoot(9, "Hyvin Pitkä Nimi " * 8, date(2026, 5, 3), path="x" * 150)
    out = render.text(make_doc(shoots=[*SHOOTS, long], problems=[
        {"kind": "unrecognised", "text": "unrecognised folder studio:Bad\x1b[2J\nname"}]))
    assert all(render.width(line) <= 80 for line in out.splitlines())
    assert "x" * 70 in out.replace("\n", "").replace(" ", "")  # cut, not lost
    assert "\x1b" not in out and "Bad\\x1b[2J\\nname" in out
    assert NFD in out and SCRIPT in out and "Odd\\xff Name" in out
    for heading in ("== Upcoming deletions", "== Awaiting your approval", "== Deleted since",
                    "== Kept by holds", "== Offline drives", "== Problems",
                    "== Backup coverage", "== Storage", "== Audit log"):
        assert heading in out, heading


def test_json_has_stable_keys_and_exact_names(doc):
    loaded = json.loads(render.json_text(doc))
    assert list(loaded)[:4] == ["format", "week", "period", "as_of"]
    assert {"summary", "upcoming", "awaiting_approval", "deleted", "holds", "offline",
            "problems", "backup_coverage", "storage", "audit"} <= set(loaded)
    paths = [i["path"] for g in loaded["upcoming"]["groups"] for i in g["items"]]
    assert "2026-06-10 Odd\\xff Name" in paths  # undecodable byte escaped, nothing else
    customers = {i["customer"] for g in loaded["upcoming"]["groups"] for i in g["items"]}
    assert NFD in customers and SCRIPT in customers  # exact text, NFD kept as written


def test_a_distrusted_clock_is_said_first_and_the_week_follows_iso():
    doc = make_doc(trusted=False)
    assert doc["summary"].startswith("The clock is not trusted, so nothing was announced")
    assert not doc["clock_trusted"]
    assert model.iso_week(date(2027, 1, 1)) == ("2026-W53", date(2026, 12, 28),
                                                 date(2027, 1, 3))


def test_listing_is_capped_and_the_rest_counted(monkeypatch):
    monkeypatch.setattr(render, "MAX_LISTED", 2)
    out = render.text(make_doc())
    assert "... and 1 more: see the JSON report" in out
    assert len(re.findall(r"^  - ", out.split("== Awaiting")[0], re.M)) == 2
