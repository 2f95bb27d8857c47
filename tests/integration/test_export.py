"""`export` (GDPR art. 15) through the installed CLI on a real studio: two volumes, one of them
unplugged after the scan, a customer whose name shares a prefix with another's, holds from the
config and the CLI, a use, an apply that trashed a shoot of each, and the audit log."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
import stat
import unicodedata
from datetime import date, timedelta

import pytest
from conftest import DUE_RULES, OLD, Studio

from archivekeeper.index.store import RunLock

ANNA = "Mäkinen Anna"
NFD_ANNA = unicodedata.normalize("NFD", ANNA)
RECENT = (date.today() - timedelta(days=30)).isoformat()
PASSPORT = f"{RECENT}_MÄKINEN_ANNA_passport"
BACKUP = f"2015-03-01 {NFD_ANNA}"  # written in NFD, as a Mac writes it
TOKEN = re.compile(r"\b[csp]_[0-9a-f]{16}\b")
HOLDS = DUE_RULES + """\
holds:
  - {shoot: "backup-1:2015-03-01 Mäkinen Anna", kind: legal-claim, reason: "complaint open"}
"""


@pytest.fixture
def archive(studio: Studio) -> Studio:
    """Anna: a recent passport shoot on the workstation (one file name not UTF-8), an old shoot
    trashed by apply, an NFD-named copy on the backup drive held by the config; Annika: an old
    shoot trashed too, a use and a hold of her own. Then the backup drive is unplugged."""
    studio.write_config(HOLDS)
    studio.shoot("studio", "2015-03-01 Mäkinen Anna", mtime=OLD)
    studio.shoot("studio", PASSPORT, files={"JPEG/IMG_1.jpg": b"p" * 10,
                                            b"JPEG/caf\xe9.jpg": b"q" * 20})
    studio.shoot("backup-1", BACKUP, mtime=OLD)
    studio.shoot("studio", "2015-03-01 Mäkinen Annika", mtime=OLD)
    studio.ok("scan")
    studio.ok("touch", "--customer", "mäkinen anna", "--reason", "re-order of prints")
    studio.ok("touch", "--customer", "Mäkinen Annika", "--reason", "annika reorder")
    assert "moved 4 files" in studio.ok("apply").stdout  # each customer's old studio shoot
    studio.ok("hold", "add", "--customer", "mäkinen_anna", "--kind", "invoice",
              "--reason", "open invoice 2026-7")
    studio.ok("hold", "add", "--customer", "Mäkinen Annika", "--kind", "collection",
              "--reason", "debt case 99")
    studio.volumes["backup-1"].rename(studio.root / "vols" / "unplugged")
    return studio


def export(studio: Studio, *args: str) -> tuple[dict, str]:
    result = studio.cli("export", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_json_export_has_every_shoot_file_hold_use_and_audit_record_offline_ones_too(archive):
    doc, summary = export(archive, "--customer", "Mäkinen Anna")
    assert doc["customer"]["name"] == ANNA and doc["exported_at"]
    shoots = {(s["volume"], s["path"]): s for s in doc["shoots"]}
    assert set(shoots) == {("studio", PASSPORT), ("backup-1", BACKUP)}
    volumes = {v["name"]: v for v in doc["volumes"]}
    assert volumes["backup-1"]["state"] == "offline" and volumes["studio"]["state"] == "online"
    offline = shoots[("backup-1", BACKUP)]
    assert offline["state"] == "offline"
    assert offline["volume_last_seen"] == volumes["backup-1"]["last_seen"] is not None
    assert [f["path"] for f in offline["files"]] == [f"{BACKUP}/JPEG/IMG_1.jpg",
                                                     f"{BACKUP}/RAW/IMG_1.CR2"]
    assert offline["status"] == "blocked" and offline["deletable_from"] is None
    assert [(h["id"], h["kind_text"]) for h in offline["holds"]] == [
        ("cfg-1", "a legal claim"), ("1", "an open invoice")]
    # an undecodable byte in a file name as \xNN, exactly one path per text
    passport = shoots[("studio", PASSPORT)]
    assert {f["path"]: f["size"] for f in passport["files"]} == {
        f"{PASSPORT}/JPEG/IMG_1.jpg": 10, f"{PASSPORT}/JPEG/caf\\xe9.jpg": 20}
    assert all(f["modified"].startswith(date.today().isoformat()) for f in passport["files"])
    assert [r["name"] for r in passport["rules"]] == ["old-shoots"]
    # held by the invoice; without it deletable five years after the shoot date
    assert passport["plan"] == [] and passport["status"] == "kept"
    assert "open invoice 2026-7" in passport["reason"]
    holds = {h["id"]: h for h in doc["holds"]}
    assert set(holds) == {"cfg-1", "1"}
    assert holds["1"]["kind_text"] == "an open invoice" and holds["1"]["active"]
    assert holds["cfg-1"]["path"] == "2015-03-01 Mäkinen Anna"
    assert sorted((u["shoot_date"], u["reason"]) for u in doc["uses"]) == [
        ("2015-03-01", "re-order of prints"), (RECENT, "re-order of prints")]  # each copy set
    [trashed] = doc["trash"]
    assert (trashed["volume"], trashed["path"], trashed["restorable"]) == (
        "studio", "2015-03-01 Mäkinen Anna", True)
    assert len(trashed["files"]) == 2
    events = [(r["event"], r.get("shoot") or r.get("customer") or r.get("target"))
              for r in doc["audit"]]
    assert events == [("touch", ANNA), ("trash", "studio:2015-03-01 Mäkinen Anna"),
                      ("trash_done", "studio:2015-03-01 Mäkinen Anna"), ("hold_add", ANNA)]
    assert not TOKEN.search(json.dumps(doc["audit"]))
    assert "2 shoots (1 not online) on 2 volumes, 4 files, 2 holds" in summary


def test_nothing_of_a_customer_whose_name_shares_the_prefix(archive):
    for fmt in ("json", "csv"):
        result = archive.cli("export", "--customer", ANNA, "--format", fmt)
        assert result.returncode == 0, result.stderr
        text = result.stdout.casefold()
        for other in ("annika", "debt case 99", "collection"):
            assert other not in text, (fmt, other)
    doc = json.loads(archive.cli("export", "--customer", "Mäkinen Annika").stdout)
    assert {s["path"] for s in doc["trash"]} == {"2015-03-01 Mäkinen Annika"}
    assert "anna" not in json.dumps(doc["audit"], ensure_ascii=False).replace("annika", "")


def test_the_name_matches_in_any_case_form_and_separator(archive):
    def comparable(doc):
        doc.pop("exported_at")
        doc["customer"].pop("asked_as")
        return doc

    expected = comparable(export(archive, "--customer", ANNA)[0])
    assert len(expected["shoots"]) == 2
    for name in ("MÄKINEN_ANNA", NFD_ANNA.lower(), " mäkinen__ anna "):
        assert comparable(export(archive, "--customer", name)[0]) == expected


def test_csv_has_one_row_per_file_with_its_shoot(archive):
    result = archive.cli("export", "--customer", "MÄKINEN anna", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert sorted((r["volume"], r["file_path"]) for r in rows) == [
        ("backup-1", f"{BACKUP}/JPEG/IMG_1.jpg"), ("backup-1", f"{BACKUP}/RAW/IMG_1.CR2"),
        ("studio", f"{PASSPORT}/JPEG/IMG_1.jpg"), ("studio", f"{PASSPORT}/JPEG/caf\\xe9.jpg")]
    backup = [r for r in rows if r["volume"] == "backup-1"]
    assert {(r["state"], r["volume_state"], r["status"]) for r in backup} == {
        ("offline", "offline", "blocked")}
    assert all(r["volume_last_seen"] and r["file_size"].isdigit() for r in rows)
    assert "an open invoice: open invoice 2026-7" in rows[0]["holds"]


def test_out_file_is_0600_and_never_overwritten(archive):
    out = archive.root / "access.json"
    result = archive.cli("export", "--customer", ANNA, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and str(out) in result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    written = out.read_bytes()
    assert json.loads(written)["customer"]["name"] == ANNA
    again = archive.cli("export", "--customer", ANNA, "--format", "csv", "--out", str(out))
    assert again.returncode == 1
    assert again.stderr == f"archivekeeper: {out}: already exists; not overwritten (remove it " \
                           "or give another --out)\n"
    assert out.read_bytes() == written
    link = archive.root / "link.json"
    link.symlink_to(archive.root / "elsewhere.json")
    assert archive.cli("export", "--customer", ANNA, "--out", str(link)).returncode == 1
    assert not (archive.root / "elsewhere.json").exists()


def test_unknown_customer_is_one_line_and_exit_1(archive):
    result = archive.cli("export", "--customer", "Mäkinen Ann")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == ("archivekeeper: no shoots, holds or uses for customer "
                             "'Mäkinen Ann' in the index (check the spelling)\n")


def test_a_customer_known_only_by_a_released_hold_is_exported(archive):
    archive.ok("hold", "add", "--customer", "Nieminen Kaisa", "--kind", "restriction",
               "--reason", "asked to restrict", "--force")
    held = {h.get("customer"): h["id"] for h in archive.json("hold", "list")["holds"]}
    archive.ok("hold", "release", held["Mäkinen Annika"])
    archive.ok("hold", "release", held["Nieminen Kaisa"])
    doc, _ = export(archive, "--customer", "nieminen kaisa")
    assert doc["shoots"] == [] and doc["trash"] == []
    [hold] = doc["holds"]
    assert hold["kind_text"] == "a restriction of processing"
    assert hold["released_at"] and not hold["active"]
    assert [(r["event"], r["hold"]) for r in doc["audit"]] == [
        ("hold_add", int(held["Nieminen Kaisa"])), ("hold_release", int(held["Nieminen Kaisa"]))]


def test_a_restore_of_their_trash_is_in_their_audit_records_only(archive):
    [group] = [i for i in archive.json("trash", "list")["items"]
               if i["path"] == "2015-03-01 Mäkinen Anna"]
    archive.ok("trash", "restore", str(group["id"]))
    anna, _ = export(archive, "--customer", ANNA)
    assert [r["event"] for r in anna["audit"]][-2:] == ["restore", "restore_done"]
    assert [(t["state"], t["restorable"]) for t in anna["trash"]] == [("restored", False)]
    annika, _ = export(archive, "--customer", "Mäkinen Annika")
    assert not {"restore", "restore_done"} & {r["event"] for r in annika["audit"]}


def dump(studio: Studio) -> list[str]:
    with sqlite3.connect(studio.state / "index.sqlite") as db:
        return list(db.iterdump())


def test_export_changes_nothing_and_waits_for_no_run(archive):
    before = dump(archive), (archive.state / "audit.jsonl").read_bytes()
    lock = RunLock(archive.state)
    assert lock.acquire(0)  # as a long apply would hold it
    try:
        result = archive.cli("export", "--customer", ANNA, env={"ARCHIVEKEEPER_LOCK_WAIT": "0"})
    finally:
        lock.release()
    assert result.returncode == 0, result.stderr
    assert (dump(archive), (archive.state / "audit.jsonl").read_bytes()) == before


def test_export_makes_no_audit_key_where_there_is_no_log(tmp_path):
    studio = Studio(tmp_path)
    studio.init_volumes(accept_clock=False)
    studio.shoot("studio", f"{RECENT} {ANNA}")
    studio.ok("scan")
    assert not (studio.state / "audit.jsonl").exists()
    doc, _ = export(studio, "--customer", ANNA)
    assert [s["path"] for s in doc["shoots"]] == [f"{RECENT} {ANNA}"] and doc["audit"] == []
    assert not (studio.state / "audit.key").exists()
    assert not os.path.exists(studio.state / "audit.jsonl")


def test_an_approval_of_several_customers_names_only_theirs(studio):
    studio.write_config(DUE_RULES + "  require_approval: true\n")
    studio.shoot("studio", "2015-03-01 Mäkinen Anna", mtime=OLD)
    studio.shoot("studio", "2015-03-01 Mäkinen Annika", mtime=OLD)
    studio.ok("scan")
    assert "2 items approved" in studio.ok("approve", "--all").stdout
    doc, _ = export(studio, "--customer", ANNA)
    [approval] = [r for r in doc["audit"] if r["event"] == "approve"]
    assert sorted(approval["shoots"]) == ["(not named here)", "studio:2015-03-01 Mäkinen Anna"]
    assert "annika" not in json.dumps(doc, ensure_ascii=False).casefold()
