"""Volume markers as hostile input: written never through a symlink, read never blocking, and
checked through the very directory handle that is then used."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from archivekeeper.act import executor as executor_module
from archivekeeper.act.executor import Executor
from archivekeeper.act.fsops import FsError, VolumeRoot
from archivekeeper.clock import FixedClock
from archivekeeper.config import load_config
from archivekeeper.index import volumes
from archivekeeper.index.store import Store
from archivekeeper.ops import open_audit

NOW = datetime(2026, 1, 5, 12).astimezone()


def marker_dir(studio, name: str = "studio") -> Path:
    return studio.volumes[name] / ".archivekeeper"


# Writing the marker ---------------------------------------------------------------------------


@pytest.fixture
def bare(studio, tmp_path: Path) -> Path:
    """A volume path without a marker yet, and a precious file outside every volume."""
    path = tmp_path / "vols" / "new"
    path.mkdir(parents=True)
    studio.volumes["new"] = path  # configured: volume init refuses a name the config lacks
    studio.write_config()
    (tmp_path / "precious.txt").write_bytes(b"precious")
    return path


def test_volume_init_removes_a_symlink_planted_as_its_temp_file_and_writes_nothing_outside(
        studio, bare, tmp_path):
    precious = tmp_path / "precious.txt"
    (bare / ".archivekeeper").mkdir()
    (bare / ".archivekeeper" / "volume.json.tmp").symlink_to(precious)
    result = studio.cli("volume", "init", str(bare), "--name", "new")
    assert result.returncode == 0, result.stderr
    assert precious.read_bytes() == b"precious"
    assert json.loads((bare / ".archivekeeper" / "volume.json").read_text())["name"] == "new"
    assert os.listdir(bare / ".archivekeeper") == ["volume.json"]


@pytest.mark.parametrize("planted", [".archivekeeper", ".archivekeeper/volume.json"])
def test_volume_init_refuses_a_symlinked_marker_or_marker_folder(studio, bare, tmp_path, planted):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "other.txt").write_bytes(b"precious")
    if planted == ".archivekeeper":
        (bare / ".archivekeeper").symlink_to(outside)
    else:
        (bare / ".archivekeeper").mkdir()
        (bare / ".archivekeeper" / "volume.json").symlink_to(outside / "other.txt")
    result = studio.cli("volume", "init", str(bare), "--name", "new")
    assert result.returncode == 1
    assert "symlink" in result.stderr and "Traceback" not in result.stderr
    assert os.listdir(outside) == ["other.txt"]
    assert (outside / "other.txt").read_bytes() == b"precious"


def test_volume_init_refuses_a_symlinked_volume_root(studio, bare, tmp_path):
    link = tmp_path / "vols" / "link"
    link.symlink_to(bare)
    result = studio.cli("volume", "init", str(link), "--name", "new")
    assert result.returncode == 1 and "symlink" in result.stderr
    assert not (bare / ".archivekeeper").exists()


# Reading the marker ---------------------------------------------------------------------------


def plant(path: Path, kind: str) -> None:
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "symlink":
        path.symlink_to("/dev/zero")
    elif kind == "huge":
        path.write_bytes(b'{"id": "x", "pad": "' + b"x" * 70_000 + b'"}')
    elif kind == "not json":
        path.write_bytes(b"\xff\xfe garbage")
    else:
        path.write_text(json.dumps({"name": "studio"}))


REASONS = {
    "fifo": "volume.json is not a regular file",
    "directory": "volume.json is not a regular file",
    "symlink": "volume.json is a symlink",
    "huge": "volume.json is larger than",
    "not json": "volume.json is not valid JSON",
    "no id": "volume.json has no volume id",
}


@pytest.mark.parametrize("kind", REASONS)
def test_a_bad_marker_makes_the_volume_offline_with_its_reason(studio, kind):
    plant(marker_dir(studio, "backup-1") / "volume.json", kind)
    [status] = [s for s in volumes.probe(load_config(studio.config).volumes, {})
                if s.name == "backup-1"]
    assert not status.online
    assert REASONS[kind] in status.reason


@pytest.mark.parametrize("command", [("scan",), ("volume", "list"), ("volume", "init")])
def test_a_fifo_at_the_marker_path_is_reported_never_waited_on(studio, command):
    """Promise 9: a FIFO at a marker path blocked every read of it for good."""
    plant(marker_dir(studio, "backup-1") / "volume.json", "fifo")
    args = (*command, str(studio.volumes["backup-1"]), "--name", "backup-1") if (
        command == ("volume", "init")) else command
    result = studio.cli(*args, timeout=30)
    assert "volume.json is not a regular file" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    if command == ("volume", "init"):
        assert result.returncode == 1
    else:
        assert result.returncode == 0, result.stderr  # backup-1 is removable: offline is fine


def test_open_refuses_a_marker_that_is_not_a_regular_file(studio):
    plant(marker_dir(studio) / "volume.json", "fifo")
    with pytest.raises(FsError, match="volume.json is not a regular file"):
        VolumeRoot.open(studio.volumes["studio"], "studio")


# The marker id, checked through the handle that is used --------------------------------------


def test_open_refuses_a_marker_with_another_id(studio):
    path = studio.volumes["studio"]
    marker_id = json.loads((marker_dir(studio) / "volume.json").read_text())["id"]
    with VolumeRoot.open(path, "studio", expected_id=marker_id) as root:
        assert root.name == "studio"
    with pytest.raises(FsError, match="another volume"):
        VolumeRoot.open(path, "studio", expected_id="0d9e6a7c-another-drive")


def test_a_volume_swapped_after_its_probe_is_not_opened_as_that_volume(studio, monkeypatch):
    """The id is checked by path in the probe; a folder swapped in right after it must not be
    opened as the volume the probe saw."""
    studio.ok("scan")
    path, other = studio.volumes["studio"], studio.volumes["backup-1"]
    real_probe = executor_module.probe

    def probe_then_swap(*args):
        statuses = real_probe(*args)
        path.rename(path.with_name("studio-away"))
        other.rename(path)
        return statuses

    monkeypatch.setattr(executor_module, "probe", probe_then_swap)
    config = load_config(studio.config)
    store = Store(config.state_dir)
    executor = Executor(config, store, open_audit(config, FixedClock(NOW), store), NOW)
    try:
        assert executor.root("studio") is None
    finally:
        executor.close()
        store.close()
