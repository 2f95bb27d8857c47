"""`erase` scrubs the erased customer's name from the reasons the owner typed elsewhere (SPEC
promise 7): another customer's hold, a use recorded for another customer, an earlier erasure's
reason. Those rows stay (the hold still keeps its shoot), their reason becomes "[erased]".
Found by tests/safety/test_no_names.py."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from conftest import DUE_RULES, OLD

ANNA = "2015-03-01 Mäkinen Anna"
MATTI = "2015-03-01 Virtanen Matti"
PAIVI = "2016-04-01 Korhonen Päivi"
FILES = {"JPEG/IMG_1.jpg": b"j" * 100}
FORMS = ["Mäkinen Anna", unicodedata.normalize("NFD", "Mäkinen Anna"), "mäkinen anna",
         "mäkinen_anna", "MÄKINEN ANNA"]


def name_leaks(folder: Path) -> list[str]:
    return [f"{p.name}: {form!r}" for p in folder.rglob("*") if p.is_file()
            for form in FORMS if form.encode() in p.read_bytes()]


def test_reasons_naming_her_in_other_customers_rows_are_scrubbed_and_the_rows_kept(studio):
    studio.write_config(DUE_RULES.replace("5 years", "50 years"))
    for rel in (ANNA, MATTI, PAIVI):
        studio.shoot("studio", rel, FILES, mtime=OLD)
    studio.ok("scan")
    studio.ok("hold", "add", "--customer", "Virtanen Matti", "--kind", "invoice", "--reason",
              "one invoice with Mäkinen Anna")
    studio.ok("touch", "--customer", "Virtanen Matti", "--reason", "reprints for mäkinen_anna")
    studio.ok("erase", "--customer", "Korhonen Päivi", "--yes", "--reason",
              "asked by her sister MÄKINEN ANNA")
    assert name_leaks(studio.state)  # the test can see the name

    result = studio.cli("erase", "--customer", "Mäkinen Anna", "--yes")
    assert result.returncode == 0, result.stderr
    assert name_leaks(studio.state) == []
    assert [(h["customer"], h["reason"]) for h in studio.json("hold", "list")["holds"]] == [
        ("Virtanen Matti", "[erased]")]
    assert (studio.volumes["studio"] / MATTI / "JPEG/IMG_1.jpg").read_bytes() == FILES[
        "JPEG/IMG_1.jpg"]
    assert studio.ok("audit", "verify").exit_code == 0
