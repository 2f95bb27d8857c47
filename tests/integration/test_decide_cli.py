"""The decide commands on a real index: notice period, approval, holds, touch, explain."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta

OLD = time.time() - 10 * 365 * 86400

RULES = """\
rules:
  - {name: passport-photos, match: {type: passport}, delete_after: 6 months}
  - {name: unused-five-years, delete_after: 5 years, since: last_used}
safety:
  notice_period: 14 days
  max_fraction_per_volume: 1.0
"""

TODAY = date.today()  # the test studios' clock is pinned to noon today


def at(day: date, hour: int = 12) -> dict:
    """Env pinning the CLI's clock to `day` at `hour` local time."""
    return {"ARCHIVEKEEPER_FAKE_NOW": datetime(day.year, day.month, day.day, hour)
            .astimezone().isoformat()}


def setup(studio, extra: str = RULES):
    studio.write_config(extra)
    studio.shoot("studio", "2015-03-01 Mäkinen Anna", mtime=OLD)
    studio.shoot("studio", "Virtanen Matti/01.02.2016 passport", mtime=OLD)
    studio.shoot("backup-1", "2015-03-01 Mäkinen Anna", mtime=OLD)
    studio.ok("scan")


def items(studio, env=None, *args):
    return studio.json("plan", *args, env=env)["items"]


def test_notice_period_announced_today_upcoming_until_it_passes(studio):
    setup(studio)
    today = TODAY
    first = items(studio, at(today))
    assert first and {i["status"] for i in first} == {"upcoming"}
    assert all(i["announced_at"] for i in first)
    announced = first[0]["announced_at"]
    assert items(studio, at(today + timedelta(days=13)))[0]["status"] == "upcoming"
    later = items(studio, at(today + timedelta(days=14)))
    assert {i["status"] for i in later} == {"due"}
    assert later[0]["announced_at"] == announced  # the first announcement counts


def test_plan_as_of_announces_nothing(studio):
    setup(studio)
    doc = studio.json("plan", "--as-of", "2030-01-01")
    assert doc["as_of"] == "2030-01-01"
    assert doc["items"] and all(i["announced_at"] is None for i in doc["items"])
    assert all(i["announced_at"] is None for i in studio.json("plan", "--as-of",
                                                              "2030-01-01")["items"])


def test_approval_required_and_a_change_cancels_it(studio):
    setup(studio, RULES + "  require_approval: true\n")
    today = TODAY
    items(studio, at(today))
    later = at(today + timedelta(days=15))
    assert {i["status"] for i in items(studio, later)} == {"awaiting-approval"}
    result = studio.ok("approve", "--all", env=later)
    assert "items approved" in result.stdout
    assert {i["status"] for i in items(studio, later)} == {"due"}
    # the Mäkinen shoot changes: it is a new item, announced anew, and needs approving again
    (studio.volumes["studio"] / "2015-03-01 Mäkinen Anna" / "extra.jpg").write_bytes(b"n")
    import os
    os.utime(studio.volumes["studio"] / "2015-03-01 Mäkinen Anna" / "extra.jpg", (OLD, OLD))
    studio.ok("scan", "--full")
    statuses = {i["path"]: i["status"] for i in items(studio, later) if i["volume"] == "studio"}
    assert statuses["2015-03-01 Mäkinen Anna"] == "upcoming"
    assert statuses["Virtanen Matti/01.02.2016 passport"] == "due"


def test_approve_when_not_required_is_refused(studio):
    setup(studio)
    result = studio.run("approve", "--all")
    assert result.exit_code == 2
    assert "require_approval" in result.stderr


def test_hold_added_by_cli_blocks_at_once_and_release_unblocks(studio):
    setup(studio, RULES.replace("14 days", "0 days"))
    due = items(studio)
    assert {i["status"] for i in due} == {"due"}
    studio.ok("hold", "add", "--customer", "mäkinen_anna", "--kind", "invoice",
              "--reason", "open invoice 2026-7")
    held = items(studio)
    anna = [i for i in held if i["customer"] == "Mäkinen Anna"]
    assert len(anna) == 2 and {i["status"] for i in anna} == {"blocked"}
    assert any("open invoice 2026-7" in b for b in anna[0]["blocked_by"])
    holds = studio.json("hold", "list")["holds"]
    assert holds[0]["customer"] == "mäkinen_anna" and holds[0]["kind"] == "invoice"
    studio.ok("hold", "release", holds[0]["id"])
    assert {i["status"] for i in items(studio)} == {"due"}


def test_shoot_hold_by_volume_path_and_hold_end_date(studio):
    setup(studio, RULES.replace("14 days", "0 days"))
    studio.ok("hold", "add", "--shoot", "studio:2015-03-01 Mäkinen Anna", "--kind", "other",
              "--reason", "customer asked to wait", "--until", (TODAY + timedelta(days=30)).isoformat())
    now = items(studio, at(TODAY))
    status = {(i["volume"], i["path"]): i["status"] for i in now}
    assert status[("studio", "2015-03-01 Mäkinen Anna")] == "blocked"
    assert status[("backup-1", "2015-03-01 Mäkinen Anna")] == "due"  # another copy, not held
    after = items(studio, at(TODAY + timedelta(days=40)))
    status = {(i["volume"], i["path"]): i["status"] for i in after}
    assert status[("studio", "2015-03-01 Mäkinen Anna")] in ("upcoming", "due")


def test_unknown_customer_or_path_refused_without_force(studio):
    setup(studio)
    result = studio.run("hold", "add", "--customer", "Mäkinen Ana", "--kind", "invoice",
                        "--reason", "x")
    assert result.exit_code == 1 and "not in the index" in result.stderr
    result = studio.run("hold", "add", "--path", "studio:nowhere/at all", "--kind", "other",
                        "--reason", "x")
    assert result.exit_code == 1 and "--force" in result.stderr
    studio.ok("hold", "add", "--customer", "Mäkinen Ana", "--kind", "invoice", "--reason", "x",
              "--force")
    assert len(studio.json("hold", "list")["holds"]) == 1


def test_touch_moves_last_used_on_every_copy(studio):
    setup(studio)
    before = {(s["volume"], s["path"]): s["last_used"] for s in
              studio.json("shoots")["shoots"]}
    assert before[("studio", "2015-03-01 Mäkinen Anna")] < "2020-01-01"
    studio.ok("touch", "--shoot", "studio:2015-03-01 Mäkinen Anna", "--reason", "re-order",
              env=at(TODAY))
    after = {(s["volume"], s["path"]): s["last_used"] for s in studio.json("shoots")["shoots"]}
    assert after[("studio", "2015-03-01 Mäkinen Anna")] == TODAY.isoformat()
    assert after[("backup-1", "2015-03-01 Mäkinen Anna")] == TODAY.isoformat()
    assert after[("studio", "Virtanen Matti/01.02.2016 passport")] == before[
        ("studio", "Virtanen Matti/01.02.2016 passport")]
    # the five-year rule now counts from the touch: nothing of Anna's is listed any more
    assert not [i for i in items(studio) if i["customer"] == "Mäkinen Anna"]


def test_explain_folder_file_and_outside_path(studio):
    setup(studio)
    shoot = studio.volumes["studio"] / "Virtanen Matti" / "01.02.2016 passport"
    doc = studio.json("explain", str(shoot))
    assert doc["decision"] == "delete"
    assert doc["date"] == "2016-08-01"
    names = {r["name"]: r for r in doc["rules"]}
    assert names["passport-photos"]["matched"] is True
    assert "passport-photos" in doc["reason"]
    one = studio.json("explain", str(shoot / "RAW" / "IMG_1.CR2"))
    assert one["decision"] == "delete" and len(one["files"]) == 1
    outside = studio.run("explain", str(studio.volumes["studio"] / "loose.txt"))
    assert outside.exit_code == 1
    assert "not in any shoot: never deleted" in outside.stderr
    text = studio.ok("explain", "studio:2015-03-01 Mäkinen Anna")
    assert "unused-five-years" in text.stdout


def test_plan_and_explain_agree_for_every_shoot(studio):
    setup(studio)
    plan = studio.json("plan", "--as-of", "2030-01-01")
    assert len(plan["items"]) >= 3
    for item in plan["items"]:
        doc = studio.json("explain", f"{item['volume']}:{item['path']}")
        dated = [f for f in doc["files"] if f["date"] == item["date"]]
        assert len(dated) == item["files"]


def test_warnings_for_rules_that_match_nothing(studio):
    setup(studio, RULES.replace("type: passport", "type: pasport"))
    warnings = studio.json("plan")["warnings"]
    assert any("passport-photos" in w for w in warnings)


def test_plan_json_shape(studio):
    setup(studio)
    doc = studio.json("plan", "--as-of", "2030-01-01")
    assert set(doc) >= {"as_of", "items", "refusals", "warnings"}
    assert set(doc["items"][0]) >= {"shoot_id", "volume", "path", "customer", "scope", "files",
                                    "bytes", "rule", "date", "status", "blocked_by",
                                    "announced_at"}
    assert isinstance(doc["items"][0]["files"], int) and doc["refusals"] == []


def test_touch_by_customer_moves_every_shoot_of_theirs(studio):
    setup(studio)
    studio.ok("touch", "--customer", "MÄKINEN anna", "--reason", "re-delivery",
              env=at(TODAY))
    used = {(s["volume"], s["path"]): s["last_used"] for s in studio.json("shoots")["shoots"]}
    assert used[("studio", "2015-03-01 Mäkinen Anna")] == TODAY.isoformat()
    assert used[("backup-1", "2015-03-01 Mäkinen Anna")] == TODAY.isoformat()
    assert used[("studio", "Virtanen Matti/01.02.2016 passport")] < "2020-01-01"
    assert studio.run("touch", "--customer", "Nobody", "--reason", "x").exit_code == 1


def test_hold_list_ends_soonest_first(studio):
    setup(studio, RULES + """holds:
  - {customer: "Virtanen Matti", kind: invoice, reason: "open invoice", until: 2027-06-30}
""")
    studio.ok("hold", "add", "--customer", "Mäkinen Anna", "--kind", "other", "--reason", "a")
    studio.ok("hold", "add", "--customer", "Mäkinen Anna", "--kind", "other", "--reason", "b",
              "--until", "2027-01-31")
    holds = studio.json("hold", "list")["holds"]
    assert [(h["reason"], h["until"]) for h in holds] == [
        ("b", "2027-01-31"), ("open invoice", "2027-06-30"), ("a", None)]


def test_apply_announces_like_plan(studio):
    setup(studio)
    studio.ok("apply", env=at(TODAY))
    items = studio.json("plan", env=at(TODAY + timedelta(days=1)))["items"]
    assert items and all(i["announced_at"].startswith(TODAY.isoformat()) for i in items)
