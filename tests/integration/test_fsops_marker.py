"""fsops.write_marker in-process (the `volume init` tests run the CLI as a subprocess): written
through directory handles, never through a symlink, never onto another mount, with the file's
content and mode, synced before and after the rename; every refusal says what was wrong."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest

from archivekeeper.act import fsops
from archivekeeper.index.markers import MarkerError, open_root, read_marker

CONTENT = json.dumps({"id": "4f1c", "name": "studio"}, indent=2).encode()


@pytest.fixture
def volume(tmp_path: Path, monkeypatch) -> Path:
    """A volume root without a marker; the working directory is elsewhere and empty, so an
    operation that loses its directory handle lands there and is seen."""
    path = tmp_path / "vol"
    path.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    (path / "precious.txt").write_bytes(b"precious")
    return path


def write_marker(volume: Path, content: bytes = CONTENT) -> None:
    root_fd = open_root(str(volume))
    try:
        fsops.write_marker(root_fd, content)
    finally:
        os.close(root_fd)


def meta(volume: Path) -> list[str]:
    return sorted(os.listdir(volume / ".archivekeeper"))


def assert_untouched(outside: Path, tmp_path: Path) -> None:
    assert os.listdir(outside) == ["precious.txt"]
    assert (outside / "precious.txt").read_bytes() == b"precious"
    assert os.listdir(tmp_path / "cwd") == []


def test_writes_the_content_as_a_regular_file_of_mode_0644_less_the_umask(volume, tmp_path):
    old = os.umask(0o022)
    try:
        write_marker(volume)
    finally:
        os.umask(old)
    marker = volume / ".archivekeeper" / "volume.json"
    found = os.lstat(marker)
    assert stat.S_ISREG(found.st_mode) and stat.S_IMODE(found.st_mode) == 0o644
    assert marker.read_bytes() == CONTENT
    assert meta(volume) == ["volume.json"]
    assert read_marker(open_root(str(volume))) == json.loads(CONTENT)
    assert os.listdir(tmp_path / "cwd") == []


def test_the_mode_follows_the_umask(volume):
    old = os.umask(0o077)
    try:
        write_marker(volume)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.lstat(volume / ".archivekeeper" / "volume.json").st_mode) == 0o600


def test_a_large_content_is_written_whole(volume):
    content = bytes(range(256)) * 4096  # 1 MiB, more than one write may take
    write_marker(volume, content)
    assert (volume / ".archivekeeper" / "volume.json").read_bytes() == content


def test_an_existing_archivekeeper_folder_is_used_and_what_it_holds_is_kept(volume, tmp_path):
    trash = volume / ".archivekeeper" / "trash" / "b1"
    trash.mkdir(parents=True)
    (trash / "IMG_1.CR2").write_bytes(b"photo")
    write_marker(volume)
    assert meta(volume) == ["trash", "volume.json"]
    assert (trash / "IMG_1.CR2").read_bytes() == b"photo"
    assert (volume / ".archivekeeper" / "volume.json").read_bytes() == CONTENT
    assert os.listdir(tmp_path / "cwd") == []


def test_a_symlink_planted_at_the_temp_name_is_removed_never_followed(volume, outside, tmp_path):
    (volume / ".archivekeeper").mkdir()
    (volume / ".archivekeeper" / "volume.json.tmp").symlink_to(outside / "precious.txt")
    write_marker(volume)
    assert_untouched(outside, tmp_path)
    assert meta(volume) == ["volume.json"]
    marker = volume / ".archivekeeper" / "volume.json"
    assert stat.S_ISREG(os.lstat(marker).st_mode) and marker.read_bytes() == CONTENT


def test_a_dangling_symlink_at_the_temp_name_creates_nothing_at_its_target(volume, outside,
                                                                           tmp_path):
    (volume / ".archivekeeper").mkdir()
    (volume / ".archivekeeper" / "volume.json.tmp").symlink_to(outside / "new.txt")
    write_marker(volume)
    assert_untouched(outside, tmp_path)
    assert (volume / ".archivekeeper" / "volume.json").read_bytes() == CONTENT


def test_a_left_over_temp_file_is_replaced_with_a_fresh_one(volume):
    """A crashed init's temp file: its content and its mode are not carried over."""
    (volume / ".archivekeeper").mkdir()
    left = volume / ".archivekeeper" / "volume.json.tmp"
    left.write_bytes(b"x" * 5000)
    left.chmod(0o666)
    old = os.umask(0o022)
    try:
        write_marker(volume)
    finally:
        os.umask(old)
    marker = volume / ".archivekeeper" / "volume.json"
    assert marker.read_bytes() == CONTENT
    assert stat.S_IMODE(os.lstat(marker).st_mode) == 0o644
    assert meta(volume) == ["volume.json"]


def test_a_symlink_planted_at_the_final_name_is_refused_never_followed(volume, outside,
                                                                       tmp_path):
    (volume / ".archivekeeper").mkdir()
    (volume / ".archivekeeper" / "volume.json").symlink_to(outside / "precious.txt")
    with pytest.raises(MarkerError, match="appeared"):
        write_marker(volume)
    assert_untouched(outside, tmp_path)
    assert meta(volume) == ["volume.json"]
    assert os.path.islink(volume / ".archivekeeper" / "volume.json")


def test_a_marker_written_by_a_racing_init_is_never_replaced(volume):
    """Two `volume init` runs both saw no marker; the second to write must not replace the
    first's (the drive would carry another name and id than the first run printed)."""
    first = json.dumps({"id": "1111", "name": "studio"}).encode()
    write_marker(volume, first)
    with pytest.raises(MarkerError) as refused:
        write_marker(volume, json.dumps({"id": "2222", "name": "backup"}).encode())
    assert str(refused.value) == ("a marker appeared while this one was being written "
                                  "(another volume init?)")
    assert (volume / ".archivekeeper" / "volume.json").read_bytes() == first
    assert meta(volume) == ["volume.json"]


def test_two_inits_racing_in_threads_leave_one_whole_marker(volume):
    import threading

    contents = [json.dumps({"id": str(i), "name": f"v{i}", "pad": "x" * 100_000}).encode()
                for i in range(8)]
    outcomes: list[str] = []

    def run(content: bytes) -> None:
        try:
            write_marker(volume, content)
            outcomes.append("written")
        except (MarkerError, OSError) as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=run, args=(c,)) for c in contents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("written") == 1, outcomes
    assert (volume / ".archivekeeper" / "volume.json").read_bytes() in contents
    assert meta(volume) == ["volume.json"]


@pytest.mark.parametrize("planted, found", [
    ("symlink", ".archivekeeper is a symlink, not a directory"),
    ("file", ".archivekeeper is a regular file, not a directory"),
])
def test_an_archivekeeper_that_is_not_a_directory_is_refused_by_name(volume, outside, tmp_path,
                                                                     planted, found):
    where = volume / ".archivekeeper"
    if planted == "symlink":
        where.symlink_to(outside)
    else:
        where.write_bytes(b"not a folder")
    with pytest.raises(MarkerError) as refused:
        write_marker(volume)
    assert str(refused.value) == found
    assert_untouched(outside, tmp_path)
    assert os.listdir(volume) == [".archivekeeper"]


def test_a_directory_at_the_temp_name_stops_the_write_with_an_oserror(volume, tmp_path):
    (volume / ".archivekeeper" / "volume.json.tmp").mkdir(parents=True)
    with pytest.raises(OSError) as failed:
        write_marker(volume)
    assert failed.value.errno == errno.EISDIR  # unlink(2) on a directory
    assert meta(volume) == ["volume.json.tmp"]
    assert os.listdir(tmp_path / "cwd") == []


def test_the_content_is_synced_before_the_rename_and_the_folders_after(volume, monkeypatch):
    """A power cut after `volume init` returns leaves the whole marker, never an empty one."""
    events: list[tuple[str, int]] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        return real_fsync(fd)

    def rename(*args, **kwargs):
        events.append(("rename", 0))
        return real_rename(*args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    write_marker(volume)
    marker = os.lstat(volume / ".archivekeeper" / "volume.json").st_ino
    folder = os.lstat(volume / ".archivekeeper").st_ino
    root = os.lstat(volume).st_ino
    assert events == [("fsync", marker), ("rename", 0), ("fsync", folder), ("fsync", root)]




def test_an_archivekeeper_folder_on_another_mount_is_refused(volume, outside, tmp_path,
                                                             bind_mount):
    """A bind mount has the volume's st_dev: only the mount id tells it apart."""
    bind_mount(outside, volume / ".archivekeeper")
    with pytest.raises(MarkerError) as refused:
        write_marker(volume)
    assert str(refused.value) == ".archivekeeper is another mount"
    assert_untouched(outside, tmp_path)
