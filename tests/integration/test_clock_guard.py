"""The clock guard through the installed commands: a wrong clock (ahead, behind, a fresh install
on a clock decades ahead) deletes nothing, announces nothing, and cannot finish a half-done purge
or shorten a notice period; `clock accept` is the one way to trust a clock after a real gap."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import date, timedelta

from conftest import DUE_RULES, OLD, Studio, at

DUE = "2015-03-01 Mäkinen Anna"
FILES = {"JPEG/IMG_1.jpg": b"j" * 100, "RAW/IMG_1.CR2": b"r" * 300}
TODAY = date.today()  # the studio's clock is pinned to noon today unless a test pins another
NOTICE_RULES = DUE_RULES.replace("notice_period: 0 days", "notice_period: 14 days")


def files_in_place(studio: Studio, rel: str = DUE) -> set[str]:
    base = studio.volumes["studio"] / rel
    return {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()}


def trashed(studio: Studio) -> list[str]:
    trash = studio.volumes["studio"] / ".archivekeeper" / "trash"
    return sorted(str(p.relative_to(trash)) for p in trash.rglob("*") if p.is_file())


def announcements(studio: Studio) -> list[str]:
    db = sqlite3.connect(studio.state / "index.sqlite")
    try:
        return [r[0] for r in db.execute("SELECT announced_at FROM announcements")]
    finally:
        db.close()


def audit_events(studio: Studio) -> list[dict]:
    return [json.loads(line) for line in
            (studio.state / "audit.jsonl").read_text().splitlines()]


def new_install(tmp_path, rules: str = NOTICE_RULES, newest: float | None = None) -> Studio:
    """A studio whose index is fresh (no clock accepted): a 2015 shoot due under the 5-year
    rule, and a shoot modified `newest` (default: 10 days ago, a working studio)."""
    studio = Studio(tmp_path, volumes=("studio",), extra=rules)
    studio.init_volumes(accept_clock=False)
    studio.shoot("studio", DUE, FILES, mtime=OLD)
    recent = time.time() - 10 * 86400 if newest is None else newest
    studio.shoot("studio", "2026-11-20 Laine Tuula", FILES, mtime=recent)
    return studio


def test_a_new_install_on_a_clock_decades_ahead_announces_moves_and_purges_nothing(tmp_path):
    studio = new_install(tmp_path)
    year_2061 = date(2061, 3, 1)
    studio.clock_env = at(year_2061)
    studio.ok("scan")
    plan = studio.json("plan")
    assert plan["items"], "the plan still shows what is due"
    assert any("nothing was announced" in w and "clock accept" in w for w in plan["warnings"])
    assert announcements(studio) == []
    result = studio.cli("apply", env=at(year_2061 + timedelta(days=15)))
    assert result.returncode == 3 and "safety.max_clock_jump" in result.stderr
    assert studio.cli("trash", "purge", env=at(year_2061 + timedelta(days=45))).returncode == 3
    assert files_in_place(studio) == set(FILES) and trashed(studio) == []
    refusals = [e for e in audit_events(studio) if e["event"] == "refusal"]
    assert refusals and "the newest file or folder" in refusals[0]["reasons"][0]
    # the owner is told where the newest file is; the audit log never holds a name or path
    assert "Laine Tuula" in result.stderr
    log = (studio.state / "audit.jsonl").read_text()
    assert "Laine" not in log and "Mäkinen" not in log and "2026-11-20" not in log


def test_a_new_install_on_a_right_clock_starts_the_mark_with_its_first_scan(tmp_path):
    studio = new_install(tmp_path, rules=DUE_RULES)
    assert studio.cli("apply").returncode == 0  # nothing indexed yet: nothing to judge or do
    studio.ok("scan")
    assert "moved 2 files" in studio.ok("apply").stdout
    later = studio.cli("apply", env=at(TODAY - timedelta(days=1)))
    assert later.returncode == 3 and "the clock went back" in later.stderr


def test_an_archive_of_only_old_files_needs_clock_accept_once(tmp_path):
    studio = new_install(tmp_path, rules=DUE_RULES, newest=OLD)
    studio.ok("scan")
    refused = studio.cli("apply")
    assert refused.returncode == 3 and "clock accept" in refused.stderr
    assert files_in_place(studio) == set(FILES)
    accepted = studio.ok("clock", "accept").stdout
    assert accepted.startswith("clock accepted:")
    assert "moved 2 files" in studio.ok("apply").stdout
    assert any(e["event"] == "clock_accept" for e in audit_events(studio))


def test_a_jump_after_an_apply_cannot_purge_trash_made_the_same_real_day(studio):
    studio.write_config(DUE_RULES)
    studio.shoot("studio", DUE, FILES, mtime=OLD)
    studio.ok("scan")
    assert "moved 2 files" in studio.ok("apply").stdout
    for jump in (61, 399):
        result = studio.cli("trash", "purge", env=at(TODAY + timedelta(days=jump)))
        assert result.returncode == 3, jump
    assert len(trashed(studio)) == 2
    assert studio.json("trash", "list")["items"][0]["files"] == 2
    # a real gap, accepted: the trash is purged when its retention has passed
    studio.ok("clock", "accept", env=at(TODAY + timedelta(days=61)))
    studio.ok("trash", "purge", env=at(TODAY + timedelta(days=61)))
    assert trashed(studio) == []


def test_recovery_on_a_distrusted_clock_never_finishes_a_purge(studio):
    studio.write_config(DUE_RULES)
    studio.shoot("studio", DUE, FILES, mtime=OLD)
    studio.ok("scan")
    assert studio.cli("apply").returncode == 0
    month = TODAY + timedelta(days=31)  # a trusted month later: the trash expired
    killed = studio.cli("trash", "purge", env=at(month, ARCHIVEKEEPER_CRASH_AFTER=1))
    assert killed.returncode < 0  # one file purged, the other's intent left half-done
    assert len(trashed(studio)) == 1
    studio.ok("hold", "add", "--customer", "Mäkinen Anna", "--kind", "legal-claim",
              "--reason", "claim", "--until", (month + timedelta(days=365)).isoformat(),
              env=at(month))
    for command in (["apply"], ["scan"], ["touch", "--customer", "Mäkinen Anna", "--reason", "r"]):
        studio.cli(*command, env=at(date(2061, 3, 1)))
        assert len(trashed(studio)) == 1, command  # the held file is still in trash
    studio.ok("apply", env=at(month))  # on the right clock: the hold keeps it too
    assert len(trashed(studio)) == 1


def test_a_clock_behind_the_mark_announces_nothing_and_cannot_cut_the_notice(studio):
    studio.write_config(NOTICE_RULES)
    studio.ok("plan")  # the mark: noon today
    studio.shoot("studio", DUE, FILES, mtime=OLD)
    studio.ok("scan")
    behind = at(TODAY - timedelta(days=20))
    plan = studio.json("plan", env=behind)
    assert plan["items"] and announcements(studio) == []
    assert any("the clock went back" in w for w in plan["warnings"])
    assert studio.cli("apply", env=behind).returncode == 3
    assert announcements(studio) == []  # a refused apply announces nothing either
    studio.ok("plan")  # announced now, on the right clock
    result = studio.ok("apply", env=at(TODAY + timedelta(days=13)))
    assert "moved 0 files" in result.stdout
    assert "moved 2 files" in studio.ok("apply", env=at(TODAY + timedelta(days=14))).stdout


def test_a_clock_ahead_stores_no_announcement_and_one_in_the_future_is_made_again(studio):
    studio.write_config(NOTICE_RULES)
    studio.shoot("studio", DUE, FILES, mtime=OLD)
    studio.ok("scan")
    assert studio.json("plan", env=at(date(2061, 3, 1)))["items"]
    assert announcements(studio) == []
    # a jump within max_clock_jump is believed; when the clock is set right and accepted, the
    # announcement made 50 days "ahead" must not hold deletion back until then
    studio.ok("plan", env=at(TODAY + timedelta(days=50)))
    assert announcements(studio)[0].startswith((TODAY + timedelta(days=50)).isoformat())
    assert studio.cli("plan").returncode == 0
    assert studio.cli("apply").returncode == 3  # the clock went back 50 days: distrusted
    studio.ok("clock", "accept")
    plan = studio.json("plan")
    assert plan["items"][0]["announced_at"].startswith(TODAY.isoformat())
    assert announcements(studio)[0].startswith(TODAY.isoformat())
    assert plan["items"][0]["earliest_deletion"] == (TODAY + timedelta(days=14)).isoformat()
    assert "moved 2 files" in studio.ok("apply", env=at(TODAY + timedelta(days=14))).stdout


def test_a_shoot_first_seen_is_dated_by_the_commands_clock(studio):
    studio.write_config(DUE_RULES)
    later = TODAY + timedelta(days=10)
    studio.shoot("studio", "Arkisto/Unset Camera", {"a.jpg": b"x"}, mtime=0)  # implausible
    studio.ok("scan", env=at(later))
    studio.ok("scan", "--full", env=at(later))  # from now on the stored first_seen counts
    shoot = studio.shoots()[("studio", "Arkisto/Unset Camera")]
    assert (shoot["date_source"], shoot["date"]) == ("mtime", later.isoformat())


def test_plan_and_explain_say_deletable_from_and_earliest_deletion(studio):
    studio.write_config(NOTICE_RULES)
    studio.shoot("studio", DUE, FILES, mtime=OLD)
    studio.ok("scan")
    item = studio.json("plan")["items"][0]
    assert item["date"] == "2020-03-01" and item["status"] == "upcoming"
    assert item["earliest_deletion"] == (TODAY + timedelta(days=14)).isoformat()
    text = studio.ok("plan").stdout
    assert "deletable from" in text and "earliest deletion" in text
    assert "(after notice)" in text
    explained = studio.ok("explain", f"studio:{DUE}").stdout
    assert "Deletable from 2020-03-01 by rule old-shoots" in explained
    assert f"Earliest deletion: {(TODAY + timedelta(days=14)).isoformat()} (after notice)" \
        in explained
    assert "Deleted on" not in explained
    doc = studio.json("explain", f"studio:{DUE}")
    assert doc["earliest_deletion"] == (TODAY + timedelta(days=14)).isoformat()
    assert {f["earliest_deletion"] for f in doc["files"]} == {doc["earliest_deletion"]}
