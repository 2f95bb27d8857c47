"""`hold list` flags a stored hold with no end date that is over a year old (a forgotten
invoice hold keeps data forever); a config hold has no creation date, so it is flagged as
open-ended without an age."""

from __future__ import annotations

import json
from datetime import date

from conftest import Studio, at

ADDED = date(2026, 3, 1)


def test_an_open_ended_hold_is_flagged_for_review_a_year_and_a_day_after_it_was_added(tmp_path):
    studio = Studio(tmp_path, volumes=("studio",), extra=(
        "holds:\n  - {customer: \"Laine Tuula\", kind: other, reason: \"portfolio\"}\n"))
    studio.clock_env = at(ADDED)
    studio.init_volumes()
    studio.shoot("studio", "2024-05-12 Virtanen Matti")
    studio.shoot("studio", "2024-06-01 Laine Tuula")
    studio.ok("scan")
    studio.ok("hold", "add", "--customer", "Virtanen Matti", "--kind", "invoice",
              "--reason", "invoice 2024-113")
    studio.ok("hold", "add", "--customer", "Virtanen Matti", "--kind", "collection",
              "--reason", "debt", "--until", "2030-01-31")

    def listed(day: date) -> tuple[dict, str]:
        doc = json.loads(studio.cli("hold", "list", "--json", env=at(day)).stdout)
        table = studio.cli("hold", "list", env=at(day))
        assert table.returncode == 0, table.stderr
        return {h["id"]: h for h in doc["holds"]}, table.stdout

    holds, table = listed(date(2027, 3, 1))
    assert holds["1"]["created_at"].startswith("2026-03-01")
    assert not any(h["review"] for h in holds.values()), "a year old exactly: not yet"
    assert "over a year old" not in table

    holds, table = listed(date(2027, 3, 2))
    assert holds["1"]["review"] is True
    assert holds["2"]["review"] is False, "it has an end date"
    assert holds["cfg-1"]["review"] is False and holds["cfg-1"]["created_at"] is None
    rows = {line.split("\t")[0]: line for line in table.splitlines()}
    assert "open-ended, over a year old: review" in rows["1"]
    assert "review" not in rows["2"].split("\t")[-1]
    assert "no end date (config file: age not known)" in rows["cfg-1"]
