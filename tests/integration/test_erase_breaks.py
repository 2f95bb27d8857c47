"""Attempts to break `archivekeeper erase` (GDPR art. 17, SPEC "Erasure"): holds that must win,
names that must go (promise 7) and names that must stay, pending erasures on drives that come
back, the clock guard, odd input. Real temp trees, the installed CLI as a subprocess (in-process
only where a file operation is intercepted to act in the middle of a run)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import unicodedata
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from conftest import BIN, OLD, Studio, at

from archivekeeper import ops
from archivekeeper.act import fsops
from archivekeeper.clock import FixedClock
from archivekeeper.core import naming
from archivekeeper.core.model import Hold
from archivekeeper.session import Session

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


# -- holds win, over erasure too (promise 3) --------------------------------------------------
def test_a_hold_added_by_another_process_mid_erasure_keeps_the_shoots_not_yet_reached(
        studio, monkeypatch):
    first = studio.shoot("studio", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    second = studio.shoot("studio", f"2016-03-01 {ANNA}", FILES, mtime=OLD)
    studio.ok("scan")
    real_unlink = fsops.VolumeRoot.unlink
    added = []

    def unlink_then_hold(self, *args, **kwargs):
        outcome = real_unlink(self, *args, **kwargs)
        if not added:  # the owner, at another terminal, while the first shoot is erased
            hold = studio.cli("hold", "add", "--customer", ANNA, "--kind", "legal-claim",
                              "--reason", "claim filed")
            added.append(hold.returncode)
        return outcome

    monkeypatch.setattr(fsops.VolumeRoot, "unlink", unlink_then_hold)
    studio.run("erase", "--customer", ANNA, "--yes")
    assert added == [0]
    assert not first.exists()  # the shoot under way when the hold came is finished
    assert files_under(second) == set(FILES)


def test_a_hold_added_mid_erasure_keeps_the_trash_groups_not_yet_reached(studio, monkeypatch):
    studio.write_config(DUE_NOW)
    studio.shoot("studio", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    studio.shoot("studio", f"2016-03-01 {ANNA}", FILES, mtime=OLD)
    studio.ok("scan")
    studio.ok("apply")  # both shoots in trash now
    trash = studio.volumes["studio"] / ".archivekeeper" / "trash"
    real_unlink = fsops.VolumeRoot.unlink_trash
    added = []

    def unlink_then_hold(self, *args, **kwargs):
        outcome = real_unlink(self, *args, **kwargs)
        if not added:
            hold = studio.cli("hold", "add", "--customer", ANNA, "--kind", "legal-claim",
                              "--reason", "claim filed", "--force")
            added.append(hold.returncode)
        return outcome

    monkeypatch.setattr(fsops.VolumeRoot, "unlink_trash", unlink_then_hold)
    studio.run("erase", "--customer", ANNA, "--yes")
    assert added == [0]
    assert len(files_under(trash)) == len(FILES)  # the second group, whole


def test_trash_a_hold_keeps_on_an_offline_drive_is_not_erased_when_the_drive_returns(studio):
    studio.write_config(DUE_NOW)
    studio.shoot("backup-1", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    studio.shoot("studio", f"2024-03-01 {ANNA}", FILES)
    studio.ok("scan")
    studio.ok("apply")  # the old copy on backup-1 goes to that drive's trash
    studio.ok("hold", "add", "--customer", ANNA, "--kind", "legal-claim", "--reason", "claim")
    away = unplug(studio)
    preview = studio.cli("erase", "--customer", ANNA)
    assert "trash 1 on backup-1: 2 files (kept: held)" in preview.stdout
    assert studio.cli("erase", "--customer", ANNA, "--yes").returncode == 0
    plug(studio, away)
    applied = studio.cli("apply")
    assert applied.returncode == 0, applied.stderr
    trash = studio.volumes["backup-1"] / ".archivekeeper" / "trash"
    assert len(files_under(trash)) == len(FILES), applied.stdout


def test_a_hold_added_while_the_drive_is_away_keeps_its_trash_from_the_pending_erasure(studio):
    studio.write_config(DUE_NOW)
    studio.shoot("backup-1", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    studio.ok("scan")
    studio.ok("apply")
    away = unplug(studio)
    assert studio.cli("erase", "--customer", ANNA, "--yes").returncode == 0
    # a claim arrives before the drive is back: holds win over erasure
    studio.ok("hold", "add", "--customer", ANNA, "--kind", "legal-claim", "--reason", "claim",
              "--force")
    plug(studio, away)
    assert studio.cli("apply").returncode == 0
    trash = studio.volumes["backup-1"] / ".archivekeeper" / "trash"
    assert len(files_under(trash)) == len(FILES)


def test_a_hold_in_a_config_reloaded_during_apply_keeps_the_shoots_of_a_pending_erasure(studio):
    studio.write_config("safety:\n  max_fraction_per_volume: 1.0\n")
    studio.shoot("backup-1", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    studio.ok("scan")
    away = unplug(studio)
    assert studio.cli("erase", "--customer", ANNA, "--yes").returncode == 0
    plug(studio, away)
    # the daemon's apply with a SIGHUP-reloaded config whose new hold names the customer
    reloaded = (Hold(id="cfg-9", kind="legal-claim", reason="claim", customer_key="mäkinen anna"),)
    session = Session(str(studio.config),
                      clock=FixedClock(datetime(TODAY.year, TODAY.month, TODAY.day,
                                                12).astimezone()))
    try:
        session.lock()
        ops.apply(session.config, session.store, session.audit, session.clock, dry_run=False,
                  more_holds=lambda: reloaded, scan=lambda volume: session.scan(only=volume))
    finally:
        session.close()
    assert files_under(studio.volumes["backup-1"] / f"2015-03-01 {ANNA}") == set(FILES)


# -- what the index keeps: rows of shoots that stay, no rows of shoots that go ----------------
def test_a_shoot_a_hold_keeps_stays_in_the_index_with_its_use_events(studio):
    studio.shoot("studio", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    studio.shoot("studio", f"2016-03-01 {ANNA}", FILES, mtime=OLD)
    studio.ok("scan")
    studio.ok("touch", "--customer", ANNA, "--reason", "re-order")
    studio.ok("hold", "add", "--shoot", f"studio:2016-03-01 {ANNA}", "--kind", "invoice",
              "--reason", "open invoice")
    erased = studio.cli("erase", "--customer", ANNA, "--yes")
    assert erased.returncode == 0, erased.stderr
    listed = studio.json("shoots", "--customer", ANNA)["shoots"]
    assert [s["path"] for s in listed] == [f"2016-03-01 {ANNA}"]
    studio.ok("scan")  # the re-order must still count for when the held shoot becomes due
    listed = studio.json("shoots", "--customer", ANNA)["shoots"]
    assert [s["last_used"] for s in listed] == [TODAY.isoformat()]


def test_an_erasure_waiting_for_an_offline_drive_leaves_no_name_in_the_index(studio):
    studio.shoot("studio", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    studio.shoot("backup-1", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    studio.ok("scan")
    unplug(studio)
    erased = studio.cli("erase", "--customer", ANNA, "--yes")
    assert erased.returncode == 0, erased.stderr
    assert "backup-1 is offline: the erasure waits for it" in erased.stdout
    assert naming_files([studio.state], ANNA) == []
    assert studio.json("shoots", "--customer", ANNA)["shoots"] == []


def test_a_pending_erasure_leaves_the_customers_later_shoots_and_their_use_events(studio):
    studio.shoot("backup-1", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    studio.ok("scan")
    away = unplug(studio)
    assert studio.cli("erase", "--customer", ANNA, "--yes").returncode == 0
    # she comes back as a customer: a new shoot after the erasure, on both drives
    later = at(TODAY + timedelta(days=10))
    new = f"{(TODAY + timedelta(days=5)).isoformat()} {ANNA}"
    plug(studio, away)
    studio.shoot("backup-1", new, FILES)
    studio.shoot("studio", new, FILES)
    studio.ok("scan", env=later)
    studio.ok("touch", "--customer", ANNA, "--reason", "re-order", env=later)
    applied = studio.cli("apply", env=later)
    assert applied.returncode == 0, applied.stderr
    assert "erased 2 files" in applied.stdout  # the old copy on backup-1
    assert not (studio.volumes["backup-1"] / f"2015-03-01 {ANNA}").exists()
    for volume in ("studio", "backup-1"):
        assert files_under(studio.volumes[volume] / new) == set(FILES)
    listed = studio.json("shoots", "--customer", ANNA, env=later)["shoots"]
    assert sorted((s["volume"], s["path"], s["last_used"]) for s in listed) == [
        ("backup-1", new, (TODAY + timedelta(days=10)).isoformat()),
        ("studio", new, (TODAY + timedelta(days=10)).isoformat())]


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


def test_an_erased_customers_container_goes_but_the_owners_folder_above_it_stays(studio):
    studio.shoot("studio", f"Arkisto/{ANNA}", FILES, mtime=OLD)
    studio.shoot("studio", f"{ANNA}/2016-03-01 passport", FILES, mtime=OLD)
    studio.ok("scan")
    erased = studio.cli("erase", "--customer", ANNA, "--yes")
    assert erased.returncode == 0, erased.stderr
    volume = studio.volumes["studio"]
    assert not (volume / "Arkisto" / ANNA).exists()
    assert not (volume / ANNA).exists()  # a folder that is their name, left empty
    assert (volume / "Arkisto").is_dir()  # "nothing outside a shoot is ever deleted"


def test_the_preview_names_the_unrecognised_folders_bearing_the_name(studio):
    studio.shoot("studio", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    studio.shoot("studio", f"2015-13-45 {ANNA}", FILES, mtime=OLD)  # no such date
    studio.ok("scan")
    preview = studio.cli("erase", "--customer", ANNA)
    assert f"2015-13-45 {ANNA}" in preview.stdout  # never deleted: the owner must see to it
    doc = studio.json("erase", "--customer", ANNA)
    assert doc["unrecognised"] == [{"volume": "studio", "path": f"2015-13-45 {ANNA}"}]


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("yes", [[], ["--yes"]])
@pytest.mark.parametrize("customer", ["", "   "])
def test_an_empty_customer_is_a_usage_error(studio, customer, yes):
    result = studio.cli("erase", "--customer", customer, *yes)
    assert result.returncode == 2
    assert "--customer is empty" in result.stderr


@pytest.mark.parametrize("args", [["--customer", b"M\xe4kinen Anna"],
                                  ["--customer", ANNA.encode(), "--reason", b"s\xe4hk\xf6posti"]])
def test_a_customer_or_reason_that_is_not_utf8_is_a_usage_error(studio, args):
    studio.shoot("studio", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    studio.ok("scan")
    result = subprocess.run([BIN, "--config", str(studio.config), "erase", *args, "--yes"],
                            capture_output=True, env={**os.environ, **studio.clock_env})
    assert result.returncode == 2, result.stderr
    assert b"internal error" not in result.stderr and b"not valid UTF-8" in result.stderr
    assert files_under(studio.volumes["studio"] / f"2015-03-01 {ANNA}") == set(FILES)


def test_a_reason_naming_the_customer_in_another_form_is_refused(studio):
    studio.shoot("studio", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    studio.ok("scan")
    for reason in ("MÄKINEN_ANNA asked by mail", unicodedata.normalize("NFD", f"from {ANNA}")):
        result = studio.cli("erase", "--customer", ANNA, "--yes", "--reason", reason)
        assert result.returncode == 2 and "--reason names the customer" in result.stderr
    assert files_under(studio.volumes["studio"] / f"2015-03-01 {ANNA}") == set(FILES)


# -- what already holds (guards) --------------------------------------------------------------
def test_an_apply_started_during_an_erasure_waits_for_the_run_lock(studio, monkeypatch):
    studio.write_config(DUE_NOW)
    first = studio.shoot("studio", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    studio.shoot("studio", f"2016-03-01 {ANNA}", FILES, mtime=OLD)
    other = studio.shoot("studio", "2025-03-01 Virtanen Matti", FILES)
    studio.ok("scan")
    real_unlink = fsops.VolumeRoot.unlink
    raced = []

    def unlink_then_apply(self, *args, **kwargs):
        if not raced:
            raced.append(studio.cli("apply", env={"ARCHIVEKEEPER_LOCK_WAIT": "0"}))
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(fsops.VolumeRoot, "unlink", unlink_then_apply)
    studio.run("erase", "--customer", ANNA, "--yes")
    assert raced[0].returncode == 1 and "another archivekeeper run holds" in raced[0].stderr
    assert not first.exists() and files_under(other) == set(FILES)


def test_a_folder_restored_from_trash_but_not_yet_scanned_is_erased_too(studio):
    studio.write_config(DUE_NOW)
    shoot = studio.shoot("studio", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    studio.ok("scan")
    studio.ok("apply")
    item = studio.json("trash", "list")["items"][0]["id"]
    studio.ok("trash", "restore", str(item))  # indexed again by the restore itself
    erased = studio.cli("erase", "--customer", ANNA, "--yes")
    assert erased.returncode == 0, erased.stderr
    assert not shoot.exists()


@pytest.mark.parametrize("days", [-1, 90])
def test_a_distrusted_clock_refuses_the_erasure_with_exit_3_and_audits_it(studio, days):
    shoot = studio.shoot("studio", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    studio.ok("scan")
    result = studio.cli("erase", "--customer", ANNA, "--yes", env=at(TODAY + timedelta(days)))
    assert result.returncode == 3 and "nothing was erased" in result.stderr
    assert files_under(shoot) == set(FILES)
    shown = studio.cli("audit", "show", env=at(TODAY + timedelta(days))).stdout
    assert "refusal command=erase" in shown


def test_a_pending_erasure_waits_while_another_drive_sits_at_the_mount_point(studio):
    studio.shoot("backup-1", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    studio.ok("scan")
    away = unplug(studio)
    assert studio.cli("erase", "--customer", ANNA, "--yes").returncode == 0
    other = studio.volumes["backup-1"]  # another drive, with its own marker, same folders
    other.mkdir()
    studio.shoot("backup-1", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    meta = other / ".archivekeeper"
    meta.mkdir()
    (meta / "volume.json").write_text(json.dumps({"id": "another-drive", "name": "backup-1"}))
    studio.cli("scan")
    studio.cli("apply")
    assert files_under(other / f"2015-03-01 {ANNA}") == set(FILES)
    shutil.rmtree(other)
    plug(studio, away)  # the right drive: now it goes
    assert studio.cli("apply").returncode == 0
    assert not (studio.volumes["backup-1"] / f"2015-03-01 {ANNA}").exists()


def test_a_file_changed_after_the_scan_is_skipped_and_named(studio):
    shoot = studio.shoot("studio", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    studio.ok("scan")
    (shoot / "RAW/IMG_1.CR2").write_bytes(b"edited")
    result = studio.cli("erase", "--customer", ANNA, "--yes")
    assert result.returncode == 1
    assert "RAW/IMG_1.CR2: changed" in result.stderr
    assert files_under(shoot) == {"RAW/IMG_1.CR2"}


def test_a_folder_swapped_for_a_symlink_mid_erasure_is_not_followed(studio, monkeypatch,
                                                                    tmp_path):
    outside = tmp_path / "outside"
    (outside / "RAW").mkdir(parents=True)
    (outside / "RAW/IMG_1.CR2").write_bytes(FILES["RAW/IMG_1.CR2"])
    shoot = studio.shoot("studio", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    studio.ok("scan")
    real_unlink = fsops.VolumeRoot.unlink

    def swap_then_unlink(self, relpath, expect):
        if (shoot / "RAW").is_dir() and not (shoot / "RAW").is_symlink():
            shutil.rmtree(shoot / "RAW")
            os.symlink(outside / "RAW", shoot / "RAW")
        return real_unlink(self, relpath, expect)

    monkeypatch.setattr(fsops.VolumeRoot, "unlink", swap_then_unlink)
    studio.run("erase", "--customer", ANNA, "--yes")
    assert files_under(outside) == {"RAW/IMG_1.CR2"}


def test_a_bind_mount_inside_the_shoot_is_not_crossed(studio, tmp_path, bind_mount):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "IMG_1.jpg").write_bytes(FILES["JPEG/IMG_1.jpg"])
    shoot = studio.shoot("studio", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    studio.ok("scan")
    bind_mount(outside, shoot / "JPEG")  # after the scan: same names, another mount
    result = studio.cli("erase", "--customer", ANNA, "--yes")
    # erase scans first: the scan sees the mount and leaves it out, so only the shoot's own
    # files go (before that scan existed, fsops refused it as "another mount")
    assert "scan_other_mount" in result.stderr or "another mount" in result.stderr
    assert files_under(outside) == {"IMG_1.jpg"}
    assert not (shoot / "RAW" / "IMG_1.CR2").exists()


def test_after_a_full_history_no_file_kept_names_the_customer_and_the_audit_finds_it(
        studio, tmp_path):
    reports = tmp_path / "reports"
    studio.write_config(DUE_NOW + f"report:\n  dir: {reports}\n")
    studio.shoot("studio", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    studio.shoot("studio", "2016-03-01_Mäkinen_Anna_wedding", FILES, mtime=OLD)
    studio.shoot("backup-1", "2016-03-01_Mäkinen_Anna_wedding", FILES, mtime=OLD)
    studio.shoot("studio", f"2024-05-01 {ANNA}", FILES)
    studio.shoot("studio", f"2015-13-45 {ANNA}", FILES, mtime=OLD)  # unrecognised
    studio.shoot("studio", "2015-03-01 Virtanen Matti", FILES, mtime=OLD)
    studio.ok("scan")
    studio.ok("hold", "add", "--customer", ANNA, "--kind", "invoice", "--reason",
              f"invoice of {ANNA}", "--until", (TODAY + timedelta(days=1)).isoformat())
    studio.ok("hold", "add", "--shoot", "studio:2016-03-01_Mäkinen_Anna_wedding", "--kind",
              "other", "--reason", "x")
    studio.ok("hold", "release", "2")
    studio.ok("report")
    studio.ok("plan")
    studio.ok("shoots", "--customer", "mäkinen anna")
    studio.ok("touch", "--customer", ANNA, "--reason", "re-order by mäkinen_anna")
    later = at(TODAY + timedelta(days=3))  # the invoice hold has ended
    studio.ok("apply", env=later)
    trashed = studio.json("trash", "list", env=later)["items"]
    studio.ok("trash", "restore", str(next(i["id"] for i in trashed
                                           if i["path"] == f"2015-03-01 {ANNA}")), env=later)
    studio.ok("scan", env=later)
    studio.ok("report", env=later)
    erased = studio.cli("erase", "--customer", "MÄKINEN_ANNA", "--yes", "--reason",
                        "request by mail", env=later)
    assert erased.returncode == 0, erased.stderr
    assert naming_files([studio.state, reports], ANNA) == []
    assert [i["path"] for i in studio.json("trash", "list", env=later)["items"]] == [
        "2015-03-01 Virtanen Matti"]
    assert studio.cli("audit", "verify", env=later).returncode == 0
    shown = studio.cli("audit", "show", "--customer", ANNA, env=later).stdout
    assert " erase " in shown and " erase_done " in shown


def test_a_shoot_restored_from_a_backup_after_the_erasure_is_due_at_once_and_reported(
        studio, tmp_path):
    reports = tmp_path / "reports"
    studio.write_config(f"safety:\n  max_fraction_per_volume: 1.0\nreport:\n  dir: {reports}\n")
    shoot = studio.shoot("studio", f"2015-03-01 {ANNA}", FILES, mtime=OLD)
    studio.shoot("studio", "2025-03-01 Virtanen Matti", FILES)
    studio.ok("scan")
    backup = tmp_path / "backup-copy"
    shutil.copytree(shoot, backup)
    assert studio.cli("erase", "--customer", ANNA, "--yes").returncode == 0
    later = at(TODAY + timedelta(days=1))
    shutil.copytree(backup, shoot)
    studio.ok("scan", env=later)
    items = studio.json("plan", env=later)["items"]
    assert [(i["path"], i["rule"], i["status"]) for i in items] == [
        (f"2015-03-01 {ANNA}", "erasure", "due")]
    applied = studio.cli("apply", env=later)
    assert "moved 2 files" in applied.stdout, applied.stderr
    assert not shoot.exists()
    studio.ok("report", env=later)
    assert naming_files([reports], ANNA)  # named in the report, as SPEC "Erasure" says
