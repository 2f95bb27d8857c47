"""A hold whose end date has passed is recorded in the audit log once (`hold_expired`), by the
commands that do periodic work on a trusted clock (plan, apply, report), with tokens only; a
clock that jumped ahead records nothing."""

from __future__ import annotations

import json
from datetime import date

from conftest import Studio, at

CUSTOMER = "Virtanen Matti"
SHOOT = "2024-05-12 Virtanen Matti"
OTHER = "2023-09-02 Lahtinen Eero"
END = date(2027, 1, 31)
START = date(2027, 1, 20)  # the clock accepted at set-up: every date below is within the jump


def studio_with_holds(tmp_path, config_holds: str = "") -> Studio:
    tmp_path.mkdir(parents=True, exist_ok=True)
    studio = Studio(tmp_path, volumes=("studio",), extra=config_holds)
    studio.clock_env = at(START)
    studio.init_volumes()
    studio.shoot("studio", SHOOT)
    studio.shoot("studio", OTHER)
    studio.ok("scan")
    return studio


def expired_records(studio: Studio) -> list[dict]:
    lines = (studio.state / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == "hold_expired"]


def run_on(studio: Studio, day: date, *args: str) -> None:
    result = studio.cli(*args, env=at(day))
    assert result.returncode == 0, (args, result.stdout, result.stderr)


def test_a_stored_hold_is_recorded_as_expired_once_the_day_after_its_end(tmp_path):
    studio = studio_with_holds(tmp_path)
    studio.ok("hold", "add", "--customer", CUSTOMER, "--kind", "invoice",
              "--reason", "invoice 2024-113", "--until", END.isoformat())
    for command in (("plan",), ("apply",), ("report",)):
        run_on(studio, END, *command)
    assert expired_records(studio) == [], "held through its last day: not expired yet"
    run_on(studio, date(2027, 2, 1), "plan")
    records = expired_records(studio)
    assert len(records) == 1
    record = records[0]
    assert record["hold"] == 1 and record["kind"] == "invoice" and record["scope"] == "customer"
    assert record["until"] == END.isoformat()
    assert record["customer"].startswith("c_") and record["time"].startswith("2027-02-01")
    for day, command in ((date(2027, 2, 2), ("apply",)), (date(2027, 2, 3), ("report",)),
                         (date(2027, 2, 4), ("plan",)), (date(2027, 3, 1), ("plan",))):
        run_on(studio, day, *command)
    assert len(expired_records(studio)) == 1, "recorded once, however many runs follow"
    log = (studio.state / "audit.jsonl").read_text(encoding="utf-8")
    assert "Virtanen" not in log and "invoice 2024-113" not in log
    assert studio.cli("audit", "verify", env=at(date(2027, 3, 1))).returncode == 0


def test_apply_and_report_record_an_expiry_too_but_a_dry_run_and_plan_as_of_do_not(tmp_path):
    studio = studio_with_holds(tmp_path)
    studio.ok("hold", "add", "--shoot", f"studio:{OTHER}", "--kind", "legal-claim",
              "--reason", "complaint", "--until", END.isoformat())
    run_on(studio, date(2027, 2, 1), "apply", "--dry-run")
    run_on(studio, date(2027, 2, 1), "plan", "--as-of", "2027-02-01")
    assert expired_records(studio) == []
    run_on(studio, date(2027, 2, 1), "apply")
    [record] = expired_records(studio)
    assert record["scope"] == "shoot" and record["shoot"].startswith("s_")
    assert "customer" not in record

    studio2 = studio_with_holds(tmp_path / "second")
    studio2.ok("hold", "add", "--path", f"studio:{OTHER}/RAW", "--kind", "other",
               "--reason", "portfolio", "--until", END.isoformat())
    run_on(studio2, date(2027, 2, 5), "report")
    [record] = expired_records(studio2)
    assert record["scope"] == "path" and record["path"].startswith("p_")


def test_a_config_hold_is_recorded_once_and_again_only_when_its_content_changes(tmp_path):
    holds = ("holds:\n"
             f"  - {{customer: \"{CUSTOMER}\", kind: invoice, reason: \"open invoice\", "
             f"until: {END.isoformat()}}}\n"
             f"  - {{shoot: \"studio:{OTHER}\", kind: legal-claim, reason: \"complaint\"}}\n")
    studio = studio_with_holds(tmp_path, holds)
    run_on(studio, END, "plan")
    assert expired_records(studio) == []
    run_on(studio, date(2027, 2, 1), "report")
    [record] = expired_records(studio)
    assert record["hold"] == "cfg-1" and record["kind"] == "invoice"
    shown = studio.cli("audit", "show", "--customer", CUSTOMER, env=at(date(2027, 2, 1)))
    assert "hold_expired" in shown.stdout, "the record carries the customer's token"
    # the hold moves to cfg-2 when one is added above it: the same hold, not recorded again
    studio.write_config("holds:\n"
                        "  - {customer: \"Laine Tuula\", kind: other, reason: \"x\"}\n"
                        + holds.removeprefix("holds:\n"))
    run_on(studio, date(2027, 2, 2), "plan")
    assert len(expired_records(studio)) == 1
    # its end moved and passed again: another hold as far as the log is concerned
    studio.write_config(holds.replace(END.isoformat(), "2027-02-10"))
    run_on(studio, date(2027, 2, 10), "plan")
    assert len(expired_records(studio)) == 1
    run_on(studio, date(2027, 2, 11), "plan")
    records = expired_records(studio)
    assert len(records) == 2 and records[1]["until"] == "2027-02-10"
    log = (studio.state / "audit.jsonl").read_text(encoding="utf-8")
    assert "Virtanen" not in log and "open invoice" not in log


def test_a_clock_that_jumped_ahead_records_no_expiry(tmp_path):
    studio = studio_with_holds(tmp_path)
    studio.ok("hold", "add", "--customer", CUSTOMER, "--kind", "collection",
              "--reason", "debt", "--until", END.isoformat())
    jumped = date(2027, 6, 1)  # more than 60 days after the last recorded time
    run_on(studio, jumped, "plan")
    run_on(studio, jumped, "report")
    assert studio.cli("apply", env=at(jumped)).returncode == 3
    assert expired_records(studio) == []
    # once the owner says the clock is right, the expiry is recorded
    run_on(studio, jumped, "clock", "accept")
    run_on(studio, jumped, "plan")
    assert len(expired_records(studio)) == 1
