"""fsops edges the other fsops tests leave loose: the renameat2 loaded from libc, the link
fallback moving a symlink as a symlink, a restore without expected facts, and purge errors that
name what was being purged."""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from pathlib import Path

import pytest

from archivekeeper.act import fsops
from archivekeeper.act.fsops import Expect, FsError, Outcome, VolumeRoot

RENAME_NOREPLACE = 1


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    path = tmp_path / "vol"
    (path / ".archivekeeper").mkdir(parents=True)
    (path / ".archivekeeper" / "volume.json").write_text('{"id": "test"}')
    return path


@pytest.fixture
def root(volume: Path):
    with VolumeRoot.open(volume, "studio") as opened:
        yield opened


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def expect_of(path: Path) -> Expect:
    found = os.lstat(path)
    return Expect(found.st_size, found.st_mtime_ns, found.st_ino)


def test_renameat2_from_libc_moves_and_reports_an_existing_target_through_errno(tmp_path):
    renameat2 = fsops._load_renameat2()
    if renameat2 is None:
        pytest.skip("this libc has no renameat2")
    write(tmp_path / "a", b"a")
    write(tmp_path / "b", b"b")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert renameat2(fd, b"a", fd, b"c", RENAME_NOREPLACE) == 0
        ctypes.set_errno(0)
        assert renameat2(fd, b"c", fd, b"b", RENAME_NOREPLACE) == -1
        assert ctypes.get_errno() == errno.EEXIST
    finally:
        os.close(fd)
    assert (tmp_path / "c").read_bytes() == b"a" and (tmp_path / "b").read_bytes() == b"b"


def test_the_link_fallback_moves_a_symlink_as_itself_never_a_link_to_its_target(tmp_path,
                                                                               monkeypatch):
    """Without renameat2 a move is link + unlink: linking must not follow a symlink swapped in,
    or the trash would hold a second name of a file outside the volume."""
    monkeypatch.setattr(fsops, "_RENAMEAT2", None)
    target = write(tmp_path / "outside" / "precious.txt", b"precious")
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    (tmp_path / "src" / "a.jpg").symlink_to(target)
    src = os.open(tmp_path / "src", os.O_RDONLY | os.O_DIRECTORY)
    dst = os.open(tmp_path / "dst", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fsops._rename_noreplace(src, b"a.jpg", dst, b"a.jpg")
    finally:
        os.close(src)
        os.close(dst)
    moved = tmp_path / "dst" / "a.jpg"
    assert stat.S_ISLNK(os.lstat(moved).st_mode) and os.readlink(moved) == str(target)
    assert os.lstat(target).st_nlink == 1 and target.read_bytes() == b"precious"
    assert os.listdir(tmp_path / "src") == []


def test_a_restore_without_expected_facts_moves_the_file_back(root, volume):
    photo = write(volume / "shoot" / "a.jpg", b"photo")
    assert root.move_to_trash(b"shoot/a.jpg", "b1", expect_of(photo)) == Outcome("moved")
    assert root.restore("b1", b"shoot/a.jpg") == Outcome("restored")
    assert photo.read_bytes() == b"photo"


@pytest.mark.parametrize("batch, relpath, reason", [
    ("b1", b"shoot/../a.jpg", 'invalid relative path: empty, "." or ".." component'),
    ("..", b"shoot/a.jpg", "invalid trash batch name '..'"),
    ("b1", b"shoot/" + b"n" * 300, os.strerror(errno.ENAMETOOLONG)),
])
def test_a_purge_error_names_what_was_being_purged(root, volume, batch, relpath, reason):
    (volume / ".archivekeeper" / "trash" / "b1" / "shoot").mkdir(parents=True)
    with pytest.raises(FsError) as failed:
        root.unlink_trash(batch, relpath, Expect(1, 1, 1))
    assert (failed.value.verb, failed.value.path, failed.value.reason) == (
        "purging", relpath, reason)
    assert str(failed.value).startswith(f"error while purging {relpath.decode()[:12]}")
    assert str(failed.value).endswith(f"on volume studio: {reason}")


def test_the_root_filesystem_type_falls_back_to_the_mount_holding_its_real_path(volume):
    """btrfs subvolumes report a st_dev that no mountinfo line carries: the real path of the
    opened root decides then."""
    with open("/proc/self/mountinfo", "rb") as mountinfo:
        holding = fsops.holding_mount(fsops.parse_mountinfo(mountinfo.read()),
                                      os.fsencode(os.path.realpath(volume)))
    no_such_dev = os.makedev(4095, 1048575)
    fd = os.open(volume, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert fsops._root_fs_type(fd, no_such_dev) == holding.fs_type
    finally:
        os.close(fd)


@pytest.mark.parametrize("in_trash", ["symlink", "directory"])
def test_a_file_gone_with_something_else_under_its_name_in_trash_is_gone_not_moved(
        root, volume, tmp_path, in_trash):
    """A crashed move is recognised by the trash holding the very file; a symlink or folder
    under that name is not it."""
    photo = write(volume / "shoot" / "a.jpg", b"photo")
    expect = expect_of(photo)
    photo.unlink()
    planted = volume / ".archivekeeper" / "trash" / "b1" / "shoot" / "a.jpg"
    planted.parent.mkdir(parents=True)
    if in_trash == "symlink":
        planted.symlink_to(write(tmp_path / "elsewhere.jpg", b"photo"))
    else:
        planted.mkdir()
    assert root.move_to_trash(b"shoot/a.jpg", "b1", expect).status == "gone"
