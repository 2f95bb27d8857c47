"""Attempts to break `archivekeeper erase` (GDPR art. 17, SPEC "Erasure"): holds that must win,
names that must go (promise 7) and names that must stay, pending erasures on drives that come
back, the clock guard, odd input. Real temp trees, the installed CLI as a subprocess (in-process
only where a file operation is intercepted to act in the middle of a run)."""

from __future__ import annotations

import json
import os
import unicodedata
from datetime import date
from pathlib import Path

import pytest
from conftest import OLD, Studio

from archivekeeper.core import naming

ANNA = "Mäkinen Anna"
FILES = {"JPEG/IMG_1.jpg": b"j" * 100, "RAW/IMG_1.CR2": b"r" * 300}
TODAY = date.today()  # the studios' clock is pinned to noon today
DUE_NOW = """\
rules:
  - {name: old-shoots, delete_after: 5 years}
safety:
  notice_period: 0 days
  max_fraction_per_volume: 1.0
"""


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def unplug(studio: Studio, volume: str = "backup-1") -> Path:
    away = studio.root / f"unplugged-{volume}"
    os.rename(studio.volumes[volume], away)
    return away


def plug(studio: Studio, away: Path, volume: str = "backup-1") -> None:
    os.rename(away, studio.volumes[volume])


def naming_files(folders, name: str) -> list[str]:
    """Every file under the folders whose bytes hold the name: NFC or NFD, any case, `_` for
    the space."""
    nfc = unicodedata.normalize("NFC", name).casefold()
    forms = {form for f in (nfc, unicodedata.normalize("NFD", nfc))
             for form in (f, f.replace(" ", "_"))}
    hits = []
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                text = path.read_bytes().decode("utf-8", "surrogateescape").casefold()
                hits += [f"{path.name}: {form!r}" for form in forms if form in text]
    return hits


# -- names that are not theirs ----------------------------------------------------------------
def test_erasing_anna_leaves_anna_maria_and_hanna_named_in_the_stored_reports(studio, tmp_path):
    reports = tmp_path / "reports"
    studio.write_config("rules:\n  - {name: old-shoots, delete_after: 5 years}\n"
                        f"report:\n  dir: {reports}\n")
    for customer in ("Anna", "Anna Maria", "Hanna", "Mäkinen Annika"):
        studio.shoot("studio", f"2015-03-01 {customer}", FILES, mtime=OLD)
    studio.shoot("studio", "2016-03-01 Anna Maria", FILES, mtime=OLD)
    studio.shoot("studio", "2015-13-45 Anna Maria", FILES, mtime=OLD)  # unrecognised
    studio.ok("scan")
    studio.ok("hold", "add", "--shoot", "studio:2016-03-01 Anna Maria", "--kind", "invoice",
              "--reason", "open invoice")
    studio.ok("report")  # every shoot is listed as upcoming (14 days' notice)
    erased = studio.cli("erase", "--customer", "Anna", "--yes")
    assert erased.returncode == 0, erased.stderr
    assert files_under(studio.volumes["studio"] / "2015-03-01 Anna Maria") == set(FILES)
    doc = json.loads(next(reports.glob("report-*.json")).read_text(encoding="utf-8"))
    text = json.dumps(doc, ensure_ascii=False)
    assert '"2015-03-01 Anna"' not in text
    for other in ("Anna Maria", "Hanna", "Mäkinen Annika", "2016-03-01 Anna Maria",
                  "unrecognised folder studio:2015-13-45 Anna Maria"):
        assert f'"{other}' in text, other


@pytest.mark.parametrize(("text", "key", "others", "named"), [
    ("2015-03-01_MÄKINEN_anna_wedding", "mäkinen anna", [], True),
    ("Ma\u0308kinen  Anna/JPEG", "mäkinen anna", [], True),
    ("2015-03-01 Hanna", "anna", [], False),
    ("2015-03-01 Anna Maria", "anna", ["anna maria"], False),
    ("Anna ja Anna Maria", "anna", ["anna maria"], True),
    ("Anna Maria", "anna maria", ["anna", "anna maria"], True),
    ("anything", "", [], False),
])
def test_what_counts_as_naming_an_erased_customer(text, key, others, named):
    assert naming.mentions(text, key, others) is named
