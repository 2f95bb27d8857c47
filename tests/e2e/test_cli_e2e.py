"""The installed `archivekeeper` entry point, run as a subprocess."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import BIN


def test_installed_cli_scans_and_lists_shoots_as_clean_json(studio):
    studio.shoot("studio", "2024-05-12 Mäkinen Anna")
    studio.shoot("studio", "Random stuff/loose")  # makes the scan log a warning-ish line
    # backup-1 is removable; unplug it so a warning is logged on stderr
    import shutil

    shutil.rmtree(studio.volumes["backup-1"])
    scan = studio.cli("scan")
    assert scan.returncode == 0, scan.stderr
    assert scan.stdout.startswith("scan: 1 shoots, 2 files")
    assert "volume_offline" in scan.stderr
    listed = studio.cli("shoots", "--json")
    assert listed.returncode == 0
    assert "volume_offline" in listed.stderr  # a warning on stderr, stdout stays one document
    pretty = subprocess.run([sys.executable, "-m", "json.tool"], input=listed.stdout,
                            capture_output=True, text=True)
    assert pretty.returncode == 0
    doc = json.loads(listed.stdout)
    assert [s["customer"] for s in doc["shoots"]] == ["Mäkinen Anna"]
    assert set(doc["shoots"][0]) >= {"id", "volume", "path", "customer", "date", "date_source",
                                     "type", "files", "bytes", "last_used", "state",
                                     "incomplete"}


def test_invalid_config_is_refused_with_78_by_every_command(studio):
    studio.config.write_text("state_dir: /tmp/x\nvolumes: []\nbogus: 1\n")
    for args in (["check-config"], ["scan"], ["shoots", "--json"], ["volume", "list"]):
        result = studio.cli(*args)
        assert result.returncode == 78, (args, result.stderr)
        assert f"{studio.config}:3: bogus:" in result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""


def test_check_config_accepts_a_valid_config(studio):
    result = studio.cli("check-config")
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_missing_config_file_is_a_clear_error(tmp_path):
    result = subprocess.run([str(BIN), "--config", str(tmp_path / "nope.yaml"), "scan"],
                            capture_output=True, text=True)
    assert result.returncode == 78
    assert "nope.yaml" in result.stderr and "Traceback" not in result.stderr


def test_usage_error_exits_2(studio):
    result = studio.cli("scan", "--bogus-flag")
    assert result.returncode == 2


def test_demo_builds_and_scans_a_sample_archive(tmp_path):
    target = tmp_path / "demo"
    result = subprocess.run([str(BIN), "demo", str(target)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    config = target / "archivekeeper.yaml"
    assert config.exists()
    listed = subprocess.run([str(BIN), "--config", str(config), "shoots", "--json"],
                            capture_output=True, text=True)
    shoots = json.loads(listed.stdout)["shoots"]
    scanned = re.search(r"scan: (\d+) shoots", result.stdout)
    assert scanned and int(scanned.group(1)) >= 45  # before its apply trashed some
    assert {s["volume"] for s in shoots} == {"studio", "backup-1"}
    sources = {s["date_source"] for s in shoots}
    assert {"folder", "exif"} <= sources
    assert any("ä" in s["customer"] or "ö" in s["customer"] for s in shoots)
    exif = [s for s in shoots if s["date_source"] == "exif"]
    assert exif and exif[0]["path"] == "Arkisto/Ylönen Lauri"
    # nothing outside the demo directory was written: the state is inside it
    assert (target / "state" / "index.sqlite").exists()
    # it says why everything is upcoming, then shows a whole cycle on its own clock
    out = result.stdout
    assert "Why everything is upcoming" in out and "notice period (14 days)" in out
    moved = re.search(r"apply: moved (\d+) files", out)
    assert moved and int(moved.group(1)) > 0
    assert "== trash list" in out and "restored " in out
    assert "audit log intact" in out and "clock accepted" in out
    # it ends by writing the weekly report and printing where it is
    week = re.search(r"== report: .*\n(.*report-\d{4}-W\d\d\.html)\n", out)
    assert week and Path(week.group(1)).is_file() and Path(week.group(1)).parent == (
        target / "reports")
    # the unplugged drive is reported once, and the archive is left on the real clock
    assert result.stderr.count("volume_offline") == 1
    after = subprocess.run([str(BIN), "--config", str(config), "apply", "--dry-run"],
                           capture_output=True, text=True)
    assert after.returncode == 0, after.stderr


def test_demo_refuses_a_non_empty_directory(tmp_path):
    (tmp_path / "something").write_text("keep me")
    result = subprocess.run([str(BIN), "demo", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "not empty" in result.stderr
    assert (tmp_path / "something").read_text() == "keep me"
