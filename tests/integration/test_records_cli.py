"""`archivekeeper records` through the installed entry point: the example config's draft in
both languages, on stdout, without touching the state directory; another language is a usage
error."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import BIN

EXAMPLE = Path(__file__).parents[2] / "config" / "archivekeeper.yaml"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The example config with its state_dir in tmp_path (which records must not create)."""
    path = tmp_path / "archivekeeper.yaml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8").replace(
        "state_dir: /var/lib/archivekeeper", f"state_dir: {tmp_path / 'state'}"),
        encoding="utf-8")
    return path


def records(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), "--config", str(config), "records", *args],
                          capture_output=True, text=True, env=os.environ, timeout=60)


@pytest.mark.parametrize(("args", "title"), [
    ((), "# Record of processing activities (GDPR art. 30)"),
    (("--lang", "en"), "# Record of processing activities (GDPR art. 30)"),
    (("--lang", "fi"), "# Seloste käsittelytoimista (tietosuoja-asetuksen 30 artikla)"),
])
def test_records_prints_the_draft_of_the_example_config(config, args, title):
    result = records(config, *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(title) and result.stderr == ""
    assert "`passikuvat`" in result.stdout and "Virtanen" not in result.stdout
    assert not (config.parent / "state").exists()


def test_records_refuses_another_language(config):
    result = records(config, "--lang", "de")
    assert result.returncode == 2 and result.stdout == ""
    assert "'de' is not one of 'en', 'fi'" in result.stderr
