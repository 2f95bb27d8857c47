"""The systemd unit: systemd-analyze finds its exposure at most 1.5 and nothing wrong in it but
the binary this machine has not installed, and it keeps the settings the daemon and the README
count on (notify protocol, exit 78, reload, state and config directories, volumes writable,
removable ones optional)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "archivekeeper.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
MISSING_BINARY = re.compile(r"Command \S+ is not executable: No such file or directory$")


def analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": ""})


def settings(text: str) -> dict[str, list[str]]:
    """Given a unit file's text, return "Section.Key" -> every value given, in order."""
    found: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            found.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return found


def verify_complaints(unit: Path) -> list[str]:
    result = analyze("verify", str(unit))
    return [line for line in (result.stdout + result.stderr).splitlines()
            if not MISSING_BINARY.search(line)]


@needs_analyze
def test_the_exposure_systemd_analyze_measures_is_at_most_1_5():
    result = analyze("security", "--offline=true", str(UNIT))
    found = re.search(r"Overall exposure level for archivekeeper\.service: (\d+\.\d+)",
                      result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= 1.5, result.stdout


@needs_analyze
def test_verify_finds_nothing_but_the_binary_not_installed_here():
    assert verify_complaints(UNIT) == []


@needs_analyze
def test_verify_complaints_are_seen(tmp_path):
    broken = tmp_path / "archivekeeper.service"
    broken.write_text(UNIT.read_text().replace("ProtectSystem=", "ProtectSystm="))
    assert any("Unknown key 'ProtectSystm'" in line for line in verify_complaints(broken))


def test_the_unit_keeps_what_the_daemon_and_the_readme_count_on():
    unit = settings(UNIT.read_text(encoding="utf-8"))
    assert unit["Service.Type"] == ["notify"]
    assert unit["Service.NotifyAccess"] == ["main"]  # the scan's worker processes cannot notify
    assert unit["Service.User"] == ["archivekeeper"] and "Service.DynamicUser" not in unit
    assert unit["Service.ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["Service.Restart"] == ["on-failure"]
    assert "78" in unit["Service.RestartPreventExitStatus"][0].split()
    assert unit["Service.WatchdogSec"] and unit["Service.TimeoutStopSec"]
    assert unit["Service.ProtectSystem"] == ["strict"]
    writable = unit["Service.ReadWritePaths"]
    assert any(p.startswith("/") for p in writable) and any(p.startswith("-/") for p in writable)
    # AF_UNIX for sd_notify, AF_INET and AF_INET6 for the report's SMTP server
    assert set(unit["Service.RestrictAddressFamilies"][0].split()) >= {
        "AF_UNIX", "AF_INET", "AF_INET6"}


def test_the_unit_and_the_example_config_name_the_same_directories():
    unit = settings(UNIT.read_text(encoding="utf-8"))
    config = yaml.safe_load((ROOT / "config" / "archivekeeper.yaml").read_text(encoding="utf-8"))
    assert unit["Service.StateDirectory"] == ["archivekeeper"]
    assert unit["Service.StateDirectoryMode"] == ["0700"]
    assert config["state_dir"] == "/var/lib/archivekeeper"
    assert unit["Service.ConfigurationDirectory"] == ["archivekeeper"]
    binary, *args = unit["Service.ExecStart"][0].split()
    assert args == ["--config", "/etc/archivekeeper/archivekeeper.yaml", "daemon"]
    assert f"ln -s /opt/archivekeeper/bin/archivekeeper {binary}" in (
        ROOT / "README.md").read_text(encoding="utf-8")
