"""`erase` (GDPR art. 17; SPEC "Erasure", promises 3, 6, 7): the preview changes nothing; with
--yes the customer's files on online volumes go for good, holds keep theirs and are named, an
offline drive gets a pending erasure carried out by the next apply that finds it online, a
shoot restored from a backup afterwards is due at once, and no file archivekeeper keeps still
holds the name."""

from __future__ import annotations

import json
import os
import shutil
import unicodedata
from pathlib import Path

from conftest import DUE_RULES, OLD

ANNA = "2015-03-01 Mäkinen Anna"
ANNA_PASSPORT = "Mäkinen Anna/2016-03-01 passport"
ANNIKA = "2015-03-01 Mäkinen Annika"  # another customer whose name starts like hers
FILES = {"JPEG/IMG_1.jpg": b"j" * 100, "RAW/IMG_1.CR2": b"r" * 300}
NAME_FORMS = ["Mäkinen Anna", unicodedata.normalize("NFD", "Mäkinen Anna"), "mäkinen anna",
              "Mäkinen_Anna", "MÄKINEN ANNA", "mäkinen_anna"]


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".archivekeeper" not in p.parts}


def name_leaks(*folders: Path) -> list[str]:
    """Every file under the folders holding the name in any form (as UTF-8 bytes)."""
    forms = {f.encode() for f in NAME_FORMS} | {f.casefold().encode() for f in NAME_FORMS}
    leaks = []
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                leaks += [f"{path.name}: {form!r}" for form in forms if form in data]
    return leaks


def archive(studio):
    studio.write_config(DUE_RULES.replace("5 years", "50 years")
                        + f"report:\n  dir: {studio.root / 'reports'}\n")
    studio.shoot("studio", ANNA, FILES, mtime=OLD)
    studio.shoot("studio", ANNA_PASSPORT, FILES, mtime=OLD)
    studio.shoot("studio", ANNIKA, FILES, mtime=OLD)
    studio.shoot("backup-1", ANNA, FILES, mtime=OLD)
    studio.shoot("backup-1", ANNIKA, FILES, mtime=OLD)
    studio.ok("scan")


def test_the_preview_changes_nothing_and_lists_what_would_go(studio):
    archive(studio)
    before = {n: files_under(p) for n, p in studio.volumes.items()}
    index = (studio.state / "index.sqlite").read_bytes()
    audit = (studio.state / "audit.jsonl").read_bytes()
    doc = studio.json("erase", "--customer", "mäkinen_anna")
    assert doc["erased"] is False
    assert doc["volumes"]["studio"]["files"] == 4 and doc["volumes"]["backup-1"]["files"] == 2
    assert doc["pending_volumes"] == []
    text = studio.ok("erase", "--customer", "MÄKINEN ANNA").stdout
    assert "studio (online): 2 shoots, 4 files" in text and "nothing was changed" in text
    assert {n: files_under(p) for n, p in studio.volumes.items()} == before
    assert (studio.state / "index.sqlite").read_bytes() == index
    assert (studio.state / "audit.jsonl").read_bytes() == audit


def test_erase_deletes_her_files_for_good_and_nothing_of_anyone_else(studio):
    archive(studio)
    annika = {n: {k: v for k, v in files_under(p).items() if "Annika" in k}
              for n, p in studio.volumes.items()}
    out = studio.ok("erase", "--customer", "Mäkinen Anna", "--yes", "--reason",
                    "request by e-mail 2026-12-01").stdout
    assert "deleted 6 files" in out
    for name, path in studio.volumes.items():
        assert files_under(path) == annika[name]  # hers gone, Annika's byte for byte
        assert not (path / "Mäkinen Anna").exists()  # the emptied container folder too
        assert not (path / ".archivekeeper" / "trash").exists()  # for good: no trash
    assert {s["customer"] for s in studio.json("shoots")["shoots"]} == {"Mäkinen Annika"}
    assert studio.json("trash", "list")["items"] == []
    assert studio.ok("audit", "verify").exit_code == 0


def test_a_hold_keeps_its_shoot_and_is_named(studio):
    archive(studio)
    studio.ok("hold", "add", "--shoot", f"studio:{ANNA}", "--kind", "invoice", "--reason",
              "open invoice 2026-113")
    preview = studio.ok("erase", "--customer", "Mäkinen Anna").stdout
    assert ("kept: studio:2015-03-01 Mäkinen Anna: 2 files, by hold invoice: open invoice "
            "2026-113 (until no end date)") in preview
    out = studio.ok("erase", "--customer", "Mäkinen Anna", "--yes").stdout
    assert "by hold invoice" in out and "deleted 4 files" in out
    assert files_under(studio.volumes["studio"] / ANNA) == {
        "JPEG/IMG_1.jpg": FILES["JPEG/IMG_1.jpg"], "RAW/IMG_1.CR2": FILES["RAW/IMG_1.CR2"]}
    assert not (studio.volumes["studio"] / ANNA_PASSPORT).exists()
    assert not (studio.volumes["backup-1"] / ANNA).exists()
    assert [s["path"] for s in studio.json("shoots", "--customer", "Mäkinen Anna")["shoots"]
            ] == [ANNA]


def test_an_offline_drive_gets_a_pending_erasure_carried_out_when_it_is_back(studio):
    archive(studio)
    backup = studio.volumes["backup-1"]
    unplugged = studio.root / "unplugged"
    os.rename(backup, unplugged)
    out = studio.ok("erase", "--customer", "Mäkinen Anna", "--yes").stdout
    assert "backup-1 is offline: the erasure waits for it" in out
    assert (unplugged / ANNA / "RAW/IMG_1.CR2").exists()
    studio.ok("apply")  # the drive still away: the erasure waits
    os.rename(unplugged, backup)
    out = studio.ok("apply").stdout
    assert "erased 2 files" in out
    assert not (backup / ANNA).exists()
    assert (backup / ANNIKA / "RAW/IMG_1.CR2").read_bytes() == FILES["RAW/IMG_1.CR2"]
    shown = studio.ok("audit", "show", "--customer", "mäkinen anna").stdout
    assert "erase_pending_done" in shown and "volume=backup-1" in shown
    assert "Mäkinen Anna" not in shown  # only the token: the name is gone from the index
    studio.ok("apply")
    assert studio.ok("audit", "show", "--customer", "Mäkinen Anna").stdout.count(
        "erase_pending_done") == 1  # carried out once


def test_her_folder_restored_from_a_backup_is_due_at_once_and_named_in_the_report(studio):
    archive(studio)
    saved = studio.root / "saved"
    shutil.copytree(studio.volumes["studio"] / ANNA, saved)
    studio.ok("erase", "--customer", "Mäkinen Anna", "--yes")
    shutil.copytree(saved, studio.volumes["studio"] / ANNA)
    for path in (studio.volumes["studio"] / ANNA).rglob("*"):
        os.utime(path, (OLD, OLD))
    os.utime(studio.volumes["studio"] / ANNA, (OLD, OLD))
    studio.ok("scan")
    items = [i for i in studio.json("plan")["items"] if i["customer"] == "Mäkinen Anna"]
    assert [(i["path"], i["rule"], i["status"]) for i in items] == [(ANNA, "erasure", "due")]
    studio.ok("report")
    text = next((studio.root / "reports").glob("*.txt")).read_text(encoding="utf-8")
    named = [line for line in text.splitlines() if "an erasure request (GDPR art. 17)" in line]
    assert named and "Mäkinen Anna" in text
    assert "moved 2 files" in studio.ok("apply").stdout
    assert not (studio.volumes["studio"] / ANNA).exists()
    # a shoot of hers dated after the erasure is a new order: it stays
    studio.shoot("studio", "2099-01-01 Mäkinen Anna", FILES)
    studio.ok("scan")
    assert not [i for i in studio.json("plan")["items"] if i["customer"] == "Mäkinen Anna"
                and i["status"] == "due"]


def test_no_file_archivekeeper_keeps_holds_her_name_afterwards(studio):
    archive(studio)
    (studio.volumes["studio"] / "notes Mäkinen Anna" / "x").mkdir(parents=True)  # unrecognised
    studio.ok("scan")
    studio.ok("plan")
    studio.ok("touch", "--customer", "Mäkinen Anna", "--reason", "re-order")
    studio.ok("hold", "add", "--customer", "Mäkinen Anna", "--kind", "other", "--reason",
              "Mäkinen Anna asked to wait")
    studio.ok("hold", "release", "1")
    studio.ok("report")
    assert name_leaks(studio.state, studio.root / "reports")  # the test can see a leak
    studio.ok("erase", "--customer", "mäkinen anna", "--yes")
    assert name_leaks(studio.state, studio.root / "reports") == []
    wal = studio.state / "index.sqlite-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    shown = studio.ok("audit", "show", "--customer", "Mäkinen_Anna").stdout
    assert " erase " in shown and " erase_done " in shown
    assert studio.ok("audit", "verify").exit_code == 0
    # the stored report was rewritten, not thrown away: her folder is "[erased]" in it
    report = json.loads(next((studio.root / "reports").glob("*.json")).read_text())
    assert [p["path"] for p in report["problems"] if p["kind"] == "unrecognised"
            ] == ["[erased]"]
    assert "[erased]" in next((studio.root / "reports").glob("*.html")).read_text()


def test_her_trash_goes_for_good_too(studio):
    studio.write_config(DUE_RULES)
    studio.shoot("studio", ANNA, FILES, mtime=OLD)
    studio.shoot("studio", ANNIKA, FILES, mtime=OLD)
    studio.ok("scan")
    assert "moved 4 files" in studio.ok("apply").stdout
    assert studio.ok("erase", "--customer", "Mäkinen Anna", "--yes").exit_code == 0
    trash = studio.volumes["studio"] / ".archivekeeper" / "trash"
    left = [p for p in trash.rglob("*") if p.is_file()]
    assert [p.relative_to(trash).parts[1:] for p in left] == [
        (ANNIKA, "JPEG", "IMG_1.jpg"), (ANNIKA, "RAW", "IMG_1.CR2")] or sorted(
        p.relative_to(trash).parts[1:] for p in left) == [
        (ANNIKA, "JPEG", "IMG_1.jpg"), (ANNIKA, "RAW", "IMG_1.CR2")]
    assert [i["path"] for i in studio.json("trash", "list")["items"]] == [ANNIKA]


def test_a_reason_naming_the_customer_is_refused(studio):
    archive(studio)
    result = studio.cli("erase", "--customer", "Mäkinen Anna", "--yes", "--reason",
                        "mäkinen_anna wrote on 1.12.")
    assert result.returncode == 2 and "names the customer" in result.stderr
    assert "Traceback" not in result.stderr
    assert (studio.volumes["studio"] / ANNA / "RAW/IMG_1.CR2").exists()


def test_erase_refuses_on_a_distrusted_clock_and_says_so_in_the_audit_log(studio):
    archive(studio)
    jump = {"ARCHIVEKEEPER_FAKE_NOW": "2031-01-01T12:00:00+00:00"}
    result = studio.cli("erase", "--customer", "Mäkinen Anna", "--yes", env=jump)
    assert result.returncode == 3 and "nothing was erased" in result.stderr
    assert (studio.volumes["studio"] / ANNA / "RAW/IMG_1.CR2").exists()
    assert "refusal" in studio.ok("audit", "show").stdout


def test_a_hold_added_by_another_process_during_the_erasure_keeps_what_it_has_not_reached(
        studio, monkeypatch):
    from archivekeeper.act import fsops

    archive(studio)
    real_unlink = fsops.VolumeRoot.unlink
    added = []

    def unlink_then_hold(self, *args, **kwargs):
        outcome = real_unlink(self, *args, **kwargs)
        if not added:  # the owner, at another terminal, while the first shoot goes
            added.append(studio.cli("hold", "add", "--customer", "Mäkinen Anna", "--kind",
                                    "legal-claim", "--reason", "dispute").returncode)
        return outcome

    monkeypatch.setattr(fsops.VolumeRoot, "unlink", unlink_then_hold)
    studio.ok("erase", "--customer", "Mäkinen Anna", "--yes")
    assert added == [0]
    # the shoot under way when the hold came went whole (holds are read per shoot); the
    # shoots after it stay, every file
    assert not (studio.volumes["backup-1"] / ANNA).exists()
    for rel in (ANNA, ANNA_PASSPORT):
        assert files_under(studio.volumes["studio"] / rel) == FILES


def test_the_next_report_says_what_was_erased_without_the_name(studio):
    archive(studio)
    studio.ok("report")  # the series starts: the next report covers what follows
    os.rename(studio.volumes["backup-1"], studio.root / "away")
    studio.ok("erase", "--customer", "Mäkinen Anna", "--yes")
    os.rename(studio.root / "away", studio.volumes["backup-1"])
    studio.ok("apply")
    studio.ok("report")
    report = json.loads(next((studio.root / "reports").glob("*.json")).read_text())
    erased = report["deleted"]["erased"]
    assert [(e["volume"], e["files"], e["customer"]) for e in erased] == [
        ("online volumes", 4, "[erased]"), ("backup-1", 2, "[erased]")]
    assert name_leaks(studio.root / "reports") == []


def test_a_customer_the_index_does_not_know_needs_force(studio):
    archive(studio)
    typo = studio.cli("erase", "--customer", "Mäkinen Ana", "--yes")
    assert typo.returncode == 1 and "no shoot or trash of customer" in typo.stderr
    assert "erase" not in studio.ok("audit", "show").stdout.split()
    out = studio.ok("erase", "--customer", "Mäkinen Ana", "--yes", "--force").stdout
    assert "the index holds no shoot or trash" in out
    assert " erase " in studio.ok("audit", "show", "--customer", "mäkinen ana").stdout
