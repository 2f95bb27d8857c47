"""fsops on real temp trees: symlink races, nested volumes, mounts, re-verification, crashes."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import astuple
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archivekeeper.act import fsops
from archivekeeper.act.fsops import Expect, FsError, Outcome, VolumeRoot, filesystem_type

REPO = Path(__file__).resolve().parents[2]


def make_volume(path: Path) -> Path:
    (path / ".archivekeeper").mkdir(parents=True)
    (path / ".archivekeeper" / "volume.json").write_text('{"id": "test"}')
    return path


def write(path: Path, content: bytes = b"photo") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def plan(path: Path | bytes) -> Expect:
    """What a planner would record, following symlinks as a naive scanner would."""
    found = os.stat(path)
    return Expect(found.st_size, found.st_mtime_ns, found.st_ino)


def tree(path: Path) -> dict[str, bytes | str]:
    """Every entry under path: file contents, symlink targets, "dir" for directories."""
    entries: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            key = os.path.relpath(full, path)
            if os.path.islink(full):
                entries[key] = "-> " + os.readlink(full)
            elif os.path.isdir(full):
                entries[key] = "dir"
            else:
                entries[key] = Path(full).read_bytes()
    return entries


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    return make_volume(tmp_path / "vol")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside the volume holding decoys named like the volume's files."""
    secret = tmp_path / "outside"
    write(secret / "IMG_1.CR2", b"not yours")
    write(secret / "RAW" / "IMG_1.CR2", b"not yours either")
    return secret


@pytest.fixture
def root(volume: Path):
    with VolumeRoot.open(volume, "studio") as opened:
        yield opened


def trash_path(volume: Path, batch: str, rel: str) -> Path:
    return volume / ".archivekeeper" / "trash" / batch / rel


def mount_tmpfs(target: Path, options: str = "") -> None:
    command = ["mount", "-t", "tmpfs", *(["-o", options] if options else []), "tmpfs", str(target)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and mount rights): {result.stderr}")


# Opening a volume -----------------------------------------------------------------------------


def test_open_requires_the_marker(tmp_path: Path) -> None:
    (tmp_path / "bare").mkdir()
    with pytest.raises(FsError, match="no volume marker"):
        VolumeRoot.open(tmp_path / "bare", "studio")


def test_open_refuses_a_root_that_is_a_symlink_but_follows_a_symlinked_parent(
    volume: Path, tmp_path: Path
) -> None:
    (tmp_path / "link").symlink_to(volume)
    with pytest.raises(FsError, match="is a symlink"):
        VolumeRoot.open(tmp_path / "link", "studio")
    with pytest.raises(FsError, match="is a symlink"):
        VolumeRoot.open(f"{tmp_path}/link/", "studio")
    (tmp_path / "media").symlink_to(volume.parent)
    with VolumeRoot.open(tmp_path / "media" / "vol", "studio") as opened:
        assert opened.dev == os.stat(volume).st_dev


def test_open_refuses_an_unexpected_device_a_relative_path_and_a_symlinked_marker_dir(
    volume: Path, tmp_path: Path
) -> None:
    with pytest.raises(FsError, match="expected"):
        VolumeRoot.open(volume, "studio", expected_dev=os.stat(volume).st_dev + 1)
    with pytest.raises(FsError, match="absolute"):
        VolumeRoot.open("vol", "studio")
    with pytest.raises(FsError, match="filesystem root"):
        VolumeRoot.open("/", "studio")
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / ".archivekeeper").symlink_to(volume / ".archivekeeper")
    with pytest.raises(FsError, match=r"\.archivekeeper is a symlink"):
        VolumeRoot.open(fake, "studio")


def test_filesystem_type_prefers_the_device_then_the_longest_mount_point() -> None:
    mountinfo = (
        b"27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        b"50 27 8:17 / /media/USB\\040STICK rw,relatime - vfat /dev/sdb1 rw\n"
        b"51 27 0:60 / /srv/photos rw,relatime shared:5 - btrfs /dev/sdc rw\n"
    )
    assert filesystem_type(mountinfo, os.makedev(8, 17), b"/elsewhere") == "vfat"
    assert filesystem_type(mountinfo, os.makedev(0, 99), b"/srv/photos/sub") == "btrfs"
    assert filesystem_type(mountinfo, os.makedev(0, 99), b"/media/USB STICK/x") == "vfat"
    assert filesystem_type(mountinfo, os.makedev(0, 99), b"/srv/photosX") == "ext4"
    assert filesystem_type(b"garbage\n", 0, b"/x") is None


MOUNTS = (
    b"27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    b"61 27 0:71 / /srv/photos/archive rw shared:9 master:2 - xfs /dev/sdd rw\n"
    b"51 27 0:60 /@photos /srv/photos rw,relatime shared:5 - btrfs /dev/sdc rw,subvol=/@photos\n"
    b"52 27 0:61 / /mnt/stack rw - ext2 /dev/sde rw\n"
    b"53 27 0:62 / /mnt/stack rw - tmpfs tmpfs rw\n"
    b"54 27 8:1 / /media/a\\134b\\011c rw - exfat /dev/sdf1 rw\n"
    b"55 27 0:63 / /media/cut rw -\n"
)


@pytest.mark.parametrize(("dev", "path", "expected"), [
    ((8, 1), b"/srv/photos/archive/x", "exfat"),  # a listed st_dev beats any path
    ((8, 17), b"/home/studio", "ext4"),  # 8:17 is not 8:1: by path, the root mount
    ((0, 99), b"/srv/photos/2019/IMG_1.CR2", "btrfs"),  # a btrfs subvolume's own st_dev
    ((0, 99), b"/srv/photos", "btrfs"),  # the mount point itself
    ((0, 99), b"/srv/photos/archive/2019", "xfs"),  # the longest mount point, listed first
    ((0, 99), b"/srv/photos/archiveX", "btrfs"),  # a prefix of a name is not a parent
    ((0, 99), b"/mnt/stack/x", "tmpfs"),  # mounted over: the later line
    ((0, 99), b"/media/a\\b\tc/x", "exfat"),  # \134 and \011 decoded
    ((0, 99), b"/media/a\\134b\\011c/x", "ext4"),  # ... and the escapes' text is not them
    ((0, 99), b"/media/cut/x", "ext4"),  # a line with no type after "-" is skipped
])
def test_filesystem_type_reads_mountinfo_as_the_kernel_writes_it(
    dev: tuple[int, int], path: bytes, expected: str
) -> None:
    assert filesystem_type(MOUNTS, os.makedev(*dev), path) == expected


def test_filesystem_type_without_a_matching_line_is_unknown() -> None:
    assert filesystem_type(b"garbage\n" + MOUNTS.splitlines()[1], 0, b"/elsewhere") is None


def test_stable_inodes_follows_the_filesystem_and_the_override(volume: Path) -> None:
    with VolumeRoot.open(volume, "studio") as opened:
        assert opened.fs_type is not None
        assert opened.stable_inodes == (opened.fs_type not in fsops.UNSTABLE_INODE_FILESYSTEMS)
    with VolumeRoot.open(volume, "studio", stable_inodes=False) as opened:
        assert opened.stable_inodes is False


# Moving to trash ----------------------------------------------------------------------------


def test_move_to_trash_moves_one_file_into_a_private_batch_tree(
    root: VolumeRoot, volume: Path
) -> None:
    photo = write(volume / "2024-05-12 Virtanen" / "RAW" / "IMG_1.CR2")
    expect = plan(photo)
    assert root.move_to_trash(b"2024-05-12 Virtanen/RAW/IMG_1.CR2", "b1", expect) == Outcome(
        "moved"
    )
    moved = trash_path(volume, "b1", "2024-05-12 Virtanen/RAW/IMG_1.CR2")
    assert moved.read_bytes() == b"photo"
    assert moved.stat().st_ino == expect.inode
    assert not photo.exists()
    assert (volume / "2024-05-12 Virtanen" / "RAW").is_dir()  # directories are left to prune
    for private in (moved.parent, trash_path(volume, "b1", ""), volume / ".archivekeeper/trash"):
        assert private.stat().st_mode & 0o777 == 0o700


def test_a_symlink_inside_a_shoot_is_never_moved_and_its_target_is_untouched(
    root: VolumeRoot, volume: Path, outside: Path
) -> None:
    shoot = volume / "shoot"
    shoot.mkdir()
    (shoot / "IMG_1.CR2").symlink_to(outside / "IMG_1.CR2")
    (shoot / "RAW").symlink_to(outside / "RAW")
    before = tree(outside)
    fooled = plan(shoot / "IMG_1.CR2")  # a planner that followed the link
    assert root.move_to_trash(b"shoot/IMG_1.CR2", "b1", fooled).status == "changed"
    assert root.unlink(b"shoot/IMG_1.CR2", fooled).status == "changed"
    through_dir = plan(shoot / "RAW" / "IMG_1.CR2")
    assert root.move_to_trash(b"shoot/RAW/IMG_1.CR2", "b1", through_dir).status == "refused"
    assert root.unlink(b"shoot/RAW/IMG_1.CR2", through_dir).status == "refused"
    assert tree(outside) == before
    assert (shoot / "IMG_1.CR2").is_symlink() and (shoot / "RAW").is_symlink()


def test_a_directory_swapped_for_a_symlink_after_planning_is_refused(
    volume: Path, outside: Path
) -> None:
    photo = write(volume / "shoot" / "RAW" / "IMG_1.CR2", b"not yours either")
    decoy = outside / "RAW" / "IMG_1.CR2"
    os.utime(decoy, ns=(photo.stat().st_atime_ns, photo.stat().st_mtime_ns))
    expect = plan(photo)
    before = tree(outside)
    (volume / "shoot" / "RAW").rename(volume / "shoot" / "RAW.real")
    (volume / "shoot" / "RAW").symlink_to(outside / "RAW")
    # Without inode checks the decoy matches the plan: only the walk stands in the way.
    with VolumeRoot.open(volume, "studio", stable_inodes=False) as opened:
        outcome = opened.move_to_trash(b"shoot/RAW/IMG_1.CR2", "b1", expect)
        assert outcome.status == "refused"
        assert "symlink" in outcome.detail
        assert opened.unlink(b"shoot/RAW/IMG_1.CR2", expect).status == "refused"
        assert opened.prune_empty_dirs(b"shoot/RAW", b"") == 0
    assert tree(outside) == before


SWAPPER = """
import ctypes, os, sys
shoot, decoys, style, rounds = sys.argv[1:5]
real, spare = os.path.join(shoot, "RAW"), os.path.join(shoot, "RAW.swap")
renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
AT_FDCWD, RENAME_EXCHANGE = -100, 2

def exchange():
    if renameat2(AT_FDCWD, real.encode(), AT_FDCWD, spare.encode(), RENAME_EXCHANGE) != 0:
        raise OSError(ctypes.get_errno(), "renameat2(RENAME_EXCHANGE)")

if style == "exchange":
    os.symlink(decoys, spare)
print("ready", flush=True)
for _ in range(int(rounds)):
    if style == "exchange":
        exchange()
        exchange()
    else:
        os.rename(real, spare)
        os.symlink(decoys, real)
        os.unlink(real)
        os.rename(spare, real)
"""


@pytest.mark.parametrize(("style", "rounds"), [("exchange", 5000), ("rename", 300)])
def test_a_directory_swapped_with_a_symlink_in_a_race_never_touches_anything_outside(
    volume: Path, outside: Path, style: str, rounds: int
) -> None:
    """Another process swaps shoot/RAW with a symlink to decoys that match the plan (same name,
    size, mtime) and back, atomically (RENAME_EXCHANGE) or by rename and symlink, while the
    files of shoot/RAW are moved to trash, pass after pass, until it is done."""
    shoot = volume / "shoot"
    decoys = outside / "RAW"
    names = [f"IMG_{i:04d}.CR2" for i in range(400)]
    plans = {}
    for name in names:
        photo = write(shoot / "RAW" / name, name.encode())
        decoy = write(decoys / name, name.encode())
        os.utime(decoy, ns=(photo.stat().st_atime_ns, photo.stat().st_mtime_ns))
        plans[name] = Expect(photo.stat().st_size, photo.stat().st_mtime_ns, None)
    before = tree(outside)
    swapper = subprocess.Popen(
        [sys.executable, "-c", SWAPPER, str(shoot), str(decoys), style, str(rounds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    outcomes: dict[str, Outcome] = {}
    try:
        assert swapper.stdout is not None and swapper.stdout.readline() == "ready\n"
        with VolumeRoot.open(volume, "studio", stable_inodes=False) as opened:
            pending = list(names)
            while pending and (not outcomes or swapper.poll() is None):
                for name in pending:
                    rel = f"shoot/RAW/{name}".encode()
                    outcomes[name] = opened.move_to_trash(rel, "b1", plans[name])
                pending = [name for name in pending if outcomes[name].status != "moved"]
    finally:
        _, err = swapper.communicate(timeout=60)
    assert swapper.returncode == 0, err

    assert tree(outside) == before
    assert {outcome.status for outcome in outcomes.values()} <= {"moved", "refused", "gone"}
    for name, outcome in outcomes.items():
        in_trash = trash_path(volume, "b1", f"shoot/RAW/{name}")
        assert in_trash.exists() == (outcome.status == "moved")
        assert (shoot / "RAW" / name).exists() == (outcome.status != "moved")


def test_a_file_modified_after_planning_is_reported_changed_and_left_in_place(
    root: VolumeRoot, volume: Path
) -> None:
    grown = write(volume / "shoot" / "a.jpg")
    touched = write(volume / "shoot" / "b.jpg")
    grown_plan, touched_plan = plan(grown), plan(touched)
    grown.write_bytes(b"photo, edited")
    os.utime(touched, ns=(0, touched_plan.mtime_ns + 1))
    for rel, expect in ((b"shoot/a.jpg", grown_plan), (b"shoot/b.jpg", touched_plan)):
        moved = root.move_to_trash(rel, "b1", expect)
        unlinked = root.unlink(rel, expect)
        assert (moved.status, unlinked.status) == ("changed", "changed")
    assert "size changed" in root.move_to_trash(b"shoot/a.jpg", "b1", grown_plan).detail
    assert grown.read_bytes() == b"photo, edited" and touched.read_bytes() == b"photo"


def test_a_file_replaced_with_same_size_and_mtime_is_changed_only_with_stable_inodes(
    volume: Path,
) -> None:
    photo = write(volume / "shoot" / "a.jpg", b"original")
    expect = plan(photo)
    write(volume / "shoot" / "new.jpg", b"imposter")
    os.utime(volume / "shoot" / "new.jpg", ns=(0, expect.mtime_ns))
    os.replace(volume / "shoot" / "new.jpg", photo)
    with VolumeRoot.open(volume, "studio", stable_inodes=True) as opened:
        outcome = opened.move_to_trash(b"shoot/a.jpg", "b1", expect)
        assert outcome.status == "changed" and "inode" in outcome.detail
        assert photo.read_bytes() == b"imposter"
    with VolumeRoot.open(volume, "studio", stable_inodes=False) as opened:
        assert opened.move_to_trash(b"shoot/a.jpg", "b1", expect).status == "moved"


def test_a_file_added_after_planning_stays_and_keeps_its_directory(
    root: VolumeRoot, volume: Path
) -> None:
    shoot = volume / "Customer" / "2024-05-12 wedding"
    planned = {rel: plan(write(shoot / rel)) for rel in ("RAW/a.cr2", "RAW/b.cr2")}
    write(shoot / "RAW" / "late.cr2")
    for rel, expect in planned.items():
        assert (
            root.move_to_trash(f"Customer/2024-05-12 wedding/{rel}".encode(), "b1", expect).status
            == "moved"
        )
    assert root.prune_empty_dirs(b"Customer/2024-05-12 wedding/RAW", b"Customer") == 0
    assert (shoot / "RAW" / "late.cr2").read_bytes() == b"photo"


def test_a_nested_volume_is_never_entered(root: VolumeRoot, volume: Path) -> None:
    inner = make_volume(volume / "other-drive")
    photo = write(inner / "shoot" / "a.jpg")
    expect = plan(photo)
    outcome = root.move_to_trash(b"other-drive/shoot/a.jpg", "b1", expect)
    assert outcome.status == "refused" and "another volume" in outcome.detail
    assert root.unlink(b"other-drive/shoot/a.jpg", expect).status == "refused"
    (photo).unlink()
    assert root.prune_empty_dirs(b"other-drive/shoot", b"") == 0
    assert (inner / "shoot").is_dir()
    assert not (volume / ".archivekeeper" / "trash").exists()


def test_a_path_crossing_onto_another_filesystem_is_refused(volume: Path) -> None:
    mount_point = volume / "shoot" / "mnt"
    mount_point.mkdir(parents=True)
    mount_tmpfs(mount_point)
    try:
        photo = write(mount_point / "a.jpg")
        expect = plan(photo)
        with VolumeRoot.open(volume, "studio") as opened:
            outcome = opened.move_to_trash(b"shoot/mnt/a.jpg", "b1", expect)
            assert outcome.status == "refused" and "another filesystem" in outcome.detail
            assert opened.unlink(b"shoot/mnt/a.jpg", expect).status == "refused"
            photo.unlink()
            assert opened.prune_empty_dirs(b"shoot/mnt", b"") == 0
        assert mount_point.is_dir()
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_an_os_error_names_the_verb_the_path_and_the_volume(tmp_path: Path) -> None:
    mounted = tmp_path / "ro"
    mounted.mkdir()
    mount_tmpfs(mounted)
    try:
        make_volume(mounted)
        expect = plan(write(mounted / "2024" / "IMG_1.CR2"))
        subprocess.run(["mount", "-o", "remount,ro", str(mounted)], check=True)
        with VolumeRoot.open(mounted, "studio") as opened:
            with pytest.raises(FsError) as caught:
                opened.move_to_trash(b"2024/IMG_1.CR2", "b1", expect)
        assert str(caught.value).startswith(
            "error while moving to trash 2024/IMG_1.CR2 on volume studio: "
        )
        assert caught.value.__cause__.errno == errno.EROFS
    finally:
        subprocess.run(["umount", str(mounted)], check=True)


def test_trash_holding_a_different_file_at_the_path_is_never_overwritten(
    root: VolumeRoot, volume: Path
) -> None:
    photo = write(volume / "shoot" / "a.jpg", b"second")
    write(trash_path(volume, "b1", "shoot/a.jpg"), b"first")
    outcome = root.move_to_trash(b"shoot/a.jpg", "b1", plan(photo))
    assert outcome.status == "refused"
    assert trash_path(volume, "b1", "shoot/a.jpg").read_bytes() == b"first"
    assert photo.read_bytes() == b"second"


def test_moving_again_after_a_crash_reports_the_earlier_move(
    root: VolumeRoot, volume: Path
) -> None:
    renamed = write(volume / "shoot" / "renamed.jpg")
    linked = write(volume / "shoot" / "linked.jpg")
    renamed_plan, linked_plan = plan(renamed), plan(linked)
    trash_path(volume, "b1", "shoot").mkdir(parents=True)
    renamed.rename(trash_path(volume, "b1", "shoot/renamed.jpg"))
    os.link(linked, trash_path(volume, "b1", "shoot/linked.jpg"))  # link-then-unlink cut short
    assert root.move_to_trash(b"shoot/renamed.jpg", "b1", renamed_plan) == Outcome(
        "moved", "already in trash"
    )
    assert root.move_to_trash(b"shoot/linked.jpg", "b1", linked_plan).status == "moved"
    assert not linked.exists()
    assert trash_path(volume, "b1", "shoot/linked.jpg").stat().st_nlink == 1
    assert root.move_to_trash(b"shoot/missing.jpg", "b1", renamed_plan).status == "gone"
    assert root.move_to_trash(b"nowhere/missing.jpg", "b1", renamed_plan).status == "gone"


@pytest.mark.parametrize("planted", ["trash", "trash/b1", "trash/b1/shoot"])
def test_trash_folders_are_never_created_or_entered_through_a_symlink(
    root: VolumeRoot, volume: Path, outside: Path, planted: str
) -> None:
    photo = write(volume / "shoot" / "IMG_1.CR2")
    expect = plan(photo)
    link = volume / ".archivekeeper" / planted
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside)
    before = tree(outside)
    outcome = root.move_to_trash(b"shoot/IMG_1.CR2", "b1", expect)
    assert outcome.status == "refused" and "is a symlink" in outcome.detail
    assert photo.read_bytes() == b"photo"
    assert tree(outside) == before


# Restoring --------------------------------------------------------------------------------


def _no_renameat2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fsops, "_RENAMEAT2", None)


def _no_renameat2_nor_links(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(fsops, "_RENAMEAT2", None)
    monkeypatch.setattr(fsops.os, "link", no_links)


NO_REPLACE_STRATEGIES = {
    "renameat2": lambda monkeypatch: None,
    "link-then-unlink": _no_renameat2,
    "check-then-rename": _no_renameat2_nor_links,
}


def _renameat2_failing_with(code: int) -> Callable[..., int]:
    def renameat2(*args: object) -> int:
        ctypes.set_errno(code)
        return -1

    return renameat2


def _raise(code: int) -> None:
    raise OSError(code, os.strerror(code))


@pytest.fixture
def links(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Every os.link fsops attempts."""
    calls: list[tuple] = []
    real_link = os.link

    def link(*args: object, **kwargs: object) -> None:
        calls.append(args)
        real_link(*args, **kwargs)

    monkeypatch.setattr(fsops.os, "link", link)
    return calls


@pytest.mark.parametrize("code", [errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP])
def test_a_filesystem_without_renameat2_falls_back_to_link_then_unlink(
    root: VolumeRoot, volume: Path, monkeypatch: pytest.MonkeyPatch, links: list, code: int
) -> None:
    monkeypatch.setattr(fsops, "_RENAMEAT2", _renameat2_failing_with(code))
    photo = write(volume / "shoot" / "a.jpg", b"trashed")
    expect = plan(photo)
    assert root.move_to_trash(b"shoot/a.jpg", "b1", expect) == Outcome("moved")
    moved = trash_path(volume, "b1", "shoot/a.jpg")
    assert not photo.exists() and len(links) == 1
    assert (moved.read_bytes(), moved.stat().st_ino, moved.stat().st_nlink) == (
        b"trashed", expect.inode, 1
    )
    write(photo, b"new photo with the same name")
    assert root.restore("b1", b"shoot/a.jpg", expect).status == "exists"
    assert photo.read_bytes() == b"new photo with the same name"
    assert moved.read_bytes() == b"trashed"


@pytest.mark.parametrize("code", [errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP])
def test_without_renameat2_nor_links_a_move_checks_then_renames(
    root: VolumeRoot, volume: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    monkeypatch.setattr(fsops, "_RENAMEAT2", _renameat2_failing_with(code))
    monkeypatch.setattr(fsops.os, "link", lambda *a, **k: _raise(errno.EPERM))
    photo = write(volume / "shoot" / "a.jpg", b"trashed")
    taken = write(trash_path(volume, "b1", "shoot/b.jpg"), b"already in trash")
    other = write(volume / "shoot" / "b.jpg", b"another b.jpg")
    assert root.move_to_trash(b"shoot/a.jpg", "b1", plan(photo)) == Outcome("moved")
    assert trash_path(volume, "b1", "shoot/a.jpg").read_bytes() == b"trashed"
    assert root.move_to_trash(b"shoot/b.jpg", "b1", plan(other)).status == "refused"
    assert (taken.read_bytes(), other.read_bytes()) == (b"already in trash", b"another b.jpg")


@pytest.mark.parametrize("code", [errno.EXDEV, errno.EACCES, errno.EBUSY])
def test_a_renameat2_failure_other_than_unsupported_is_an_error_not_a_fallback(
    root: VolumeRoot, volume: Path, monkeypatch: pytest.MonkeyPatch, links: list, code: int
) -> None:
    monkeypatch.setattr(fsops, "_RENAMEAT2", _renameat2_failing_with(code))
    photo = write(volume / "shoot" / "a.jpg", b"kept")
    with pytest.raises(FsError, match=re.escape(os.strerror(code))):
        root.move_to_trash(b"shoot/a.jpg", "b1", plan(photo))
    assert photo.read_bytes() == b"kept" and links == []


@pytest.mark.parametrize("strategy", NO_REPLACE_STRATEGIES)
def test_restore_never_overwrites_what_is_now_at_the_original_path(
    root: VolumeRoot, volume: Path, monkeypatch: pytest.MonkeyPatch, strategy: str
) -> None:
    NO_REPLACE_STRATEGIES[strategy](monkeypatch)
    photo = write(volume / "shoot" / "a.jpg", b"trashed")
    expect = plan(photo)
    assert root.move_to_trash(b"shoot/a.jpg", "b1", expect).status == "moved"
    write(photo, b"new photo with the same name")
    assert root.restore("b1", b"shoot/a.jpg", expect).status == "exists"
    assert photo.read_bytes() == b"new photo with the same name"
    assert trash_path(volume, "b1", "shoot/a.jpg").read_bytes() == b"trashed"
    photo.unlink()
    assert root.restore("b1", b"shoot/a.jpg", expect) == Outcome("restored")
    assert photo.read_bytes() == b"trashed"
    assert not trash_path(volume, "b1", "shoot/a.jpg").exists()


def test_restore_recreates_removed_parent_directories(root: VolumeRoot, volume: Path) -> None:
    photo = write(volume / "Customer" / "2024-05-12 wedding" / "RAW" / "a.cr2")
    expect = plan(photo)
    assert (
        root.move_to_trash(b"Customer/2024-05-12 wedding/RAW/a.cr2", "b1", expect).status == "moved"
    )
    assert root.prune_empty_dirs(b"Customer/2024-05-12 wedding/RAW", b"") == 3
    assert not (volume / "Customer").exists()
    assert root.restore("b1", b"Customer/2024-05-12 wedding/RAW/a.cr2", expect).status == "restored"
    assert photo.read_bytes() == b"photo"
    assert root.prune_trash_dirs("b1", b"Customer/2024-05-12 wedding/RAW") == 4
    assert (volume / ".archivekeeper" / "trash").is_dir()
    assert root.restore("b1", b"Customer/2024-05-12 wedding/RAW/a.cr2", expect) == Outcome(
        "restored", "already restored"
    )
    assert root.restore("b1", b"Customer/2024-05-12 wedding/RAW/a.cr2").status == "gone"


def test_restore_refuses_to_recreate_parents_through_a_symlink(
    root: VolumeRoot, volume: Path, outside: Path
) -> None:
    photo = write(volume / "shoot" / "RAW" / "IMG_1.CR2")
    expect = plan(photo)
    assert root.move_to_trash(b"shoot/RAW/IMG_1.CR2", "b1", expect).status == "moved"
    photo.parent.rmdir()
    photo.parent.symlink_to(outside / "RAW")
    before = tree(outside)
    assert root.restore("b1", b"shoot/RAW/IMG_1.CR2", expect).status == "refused"
    assert tree(outside) == before
    assert trash_path(volume, "b1", "shoot/RAW/IMG_1.CR2").exists()


# Unlinking and purging --------------------------------------------------------------------


def test_unlink_and_unlink_trash_delete_only_verified_regular_files(
    root: VolumeRoot, volume: Path
) -> None:
    erased = write(volume / "shoot" / "erase.jpg")
    trashed = write(volume / "shoot" / "trash.jpg")
    assert root.unlink(b"shoot/erase.jpg", plan(erased)) == Outcome("unlinked")
    assert not erased.exists()
    assert root.unlink(b"shoot/erase.jpg", Expect(5, 0, None)).status == "gone"
    expect = plan(trashed)
    root.move_to_trash(b"shoot/trash.jpg", "b1", expect)
    assert root.unlink_trash("b1", b"shoot/trash.jpg", Expect(6, expect.mtime_ns)).status == (
        "changed"
    )
    assert root.unlink_trash("b1", b"shoot/trash.jpg", expect) == Outcome("unlinked")
    assert root.unlink_trash("b1", b"shoot/trash.jpg", expect).status == "gone"
    assert root.unlink_trash("no-such-batch", b"shoot/trash.jpg", expect).status == "gone"
    assert root.prune_trash_dirs("b1") == 0  # b1/shoot is still there
    assert root.prune_trash_dirs("b1", b"shoot") == 2
    assert root.prune_trash_dirs("b1", b"shoot") == 0
    assert (volume / ".archivekeeper" / "trash").is_dir()


def test_a_trashed_file_replaced_in_trash_is_purged_only_without_stable_inodes(
    volume: Path,
) -> None:
    photo = write(volume / "shoot" / "a.jpg", b"original")
    expect = plan(photo)
    with VolumeRoot.open(volume, "studio") as opened:
        assert opened.move_to_trash(b"shoot/a.jpg", "b1", expect).status == "moved"
    trashed = trash_path(volume, "b1", "shoot/a.jpg")
    write(volume / "new.jpg", b"imposter")
    os.utime(volume / "new.jpg", ns=(0, expect.mtime_ns))
    os.replace(volume / "new.jpg", trashed)
    with VolumeRoot.open(volume, "studio", stable_inodes=True) as opened:
        outcome = opened.unlink_trash("b1", b"shoot/a.jpg", expect)
        assert outcome.status == "changed" and "inode" in outcome.detail
        assert trashed.read_bytes() == b"imposter"
    with VolumeRoot.open(volume, "studio", stable_inodes=False) as opened:
        assert opened.unlink_trash("b1", b"shoot/a.jpg", expect).status == "unlinked"


def test_purge_never_follows_a_symlink_planted_in_trash(
    root: VolumeRoot, volume: Path, outside: Path
) -> None:
    before = tree(outside)
    planted = trash_path(volume, "b1", "shoot/IMG_1.CR2")
    planted.parent.mkdir(parents=True)
    planted.symlink_to(outside / "IMG_1.CR2")
    assert root.unlink_trash("b1", b"shoot/IMG_1.CR2", plan(outside / "IMG_1.CR2")).status == (
        "changed"
    )
    assert root.restore("b1", b"shoot/IMG_1.CR2").status == "changed"
    assert planted.is_symlink() and tree(outside) == before
    assert not (volume / "shoot").exists()


# Pruning ----------------------------------------------------------------------------------


def test_prune_stops_at_stop_at_and_never_removes_the_volume_root(
    root: VolumeRoot, volume: Path
) -> None:
    (volume / "Customer" / "2024-05-12 wedding" / "RAW").mkdir(parents=True)
    assert root.prune_empty_dirs(b"Customer/2024-05-12 wedding/RAW", b"Customer") == 2
    assert (volume / "Customer").is_dir()
    assert root.prune_empty_dirs(b"Customer", b"Customer") == 0
    assert root.prune_empty_dirs(b"Customer", b"") == 1
    assert volume.is_dir()
    with pytest.raises(FsError, match="not an ancestor"):
        root.prune_empty_dirs(b"a/b", b"a/c")
    with pytest.raises(FsError, match="not an ancestor"):
        root.prune_empty_dirs(b"ab", b"a")


def test_prune_stops_quietly_at_a_swapped_directory(
    root: VolumeRoot, volume: Path, tmp_path: Path
) -> None:
    (volume / "shoot").mkdir()
    empty_outside = tmp_path / "empty"
    empty_outside.mkdir()
    (volume / "shoot" / "RAW").symlink_to(empty_outside)
    assert root.prune_empty_dirs(b"shoot/RAW", b"") == 0
    assert empty_outside.is_dir() and (volume / "shoot" / "RAW").is_symlink()


# Paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "relpath",
    [
        b"../outside/IMG_1.CR2",
        b"shoot/../../x",
        b"./a",
        b"/etc/passwd",
        b"a//b",
        b"a/",
        b"",
        b"a/\0b",
        b".archivekeeper/volume.json",
        b".archivekeeper/trash/b1/x",
    ],
)
def test_malformed_or_reserved_paths_are_errors(root: VolumeRoot, relpath: bytes) -> None:
    with pytest.raises(FsError, match="invalid relative path") as caught:
        root.move_to_trash(relpath, "b1", Expect(1, 1, None))
    assert "while moving to trash" in str(caught.value)
    assert "on volume studio" in str(caught.value)
    with pytest.raises(FsError):
        root.unlink(relpath, Expect(1, 1, None))


@pytest.mark.parametrize("batch", ["", ".", "..", "a/b"])
def test_malformed_batch_names_are_errors(root: VolumeRoot, volume: Path, batch: str) -> None:
    photo = write(volume / "a.jpg")
    with pytest.raises(FsError, match="batch"):
        root.move_to_trash(b"a.jpg", batch, plan(photo))
    assert photo.exists()


def test_non_utf8_and_newline_names_move_and_restore(root: VolumeRoot, volume: Path) -> None:
    rel = b"M\xe4kinen\nAnna/IMG\xff\n1.jpg"
    full = os.fsencode(volume) + b"/" + rel
    os.mkdir(os.path.dirname(full))
    with open(full, "wb") as handle:
        handle.write(b"odd")
    expect = plan(full)
    assert root.move_to_trash(rel, "b1", expect).status == "moved"
    assert not os.path.exists(full)
    assert root.restore("b1", rel, expect).status == "restored"
    assert open(full, "rb").read() == b"odd"
    assert root.unlink(rel, Expect(expect.size + 1, expect.mtime_ns, None)).status == "changed"
    assert "\\xff\\n" in fsops.show_path(rel)


NAME_BYTES = st.binary(min_size=1, max_size=40).filter(
    lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b"..", b".archivekeeper")
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(directory=NAME_BYTES, name=NAME_BYTES)
def test_any_name_round_trips_through_trash(directory: bytes, name: bytes) -> None:
    with tempfile.TemporaryDirectory() as base:
        volume = make_volume(Path(base) / "vol")
        rel = directory + b"/" + name
        full = os.fsencode(volume) + b"/" + rel
        os.mkdir(os.path.dirname(full))
        with open(full, "wb") as handle:
            handle.write(rel)
        expect = plan(full)
        with VolumeRoot.open(volume, "studio") as opened:
            assert opened.move_to_trash(rel, "b1", expect).status == "moved"
            assert opened.prune_empty_dirs(directory, b"") == 1
            assert opened.restore("b1", rel, expect).status == "restored"
        with open(full, "rb") as handle:
            assert handle.read() == rel


# Crash hook -------------------------------------------------------------------------------

CRASH_SCRIPT = """
import json, sys
from archivekeeper.act.fsops import Expect, VolumeRoot, mutation_count
root, plans = sys.argv[1], json.loads(sys.argv[2])
with VolumeRoot.open(root, "studio") as volume:
    for rel in ("shoot/a.jpg", "shoot/b.jpg"):
        outcome = volume.move_to_trash(rel.encode(), "b1", Expect(*plans[rel]))
        print(outcome.status, mutation_count(), flush=True)
"""


def run_crash_script(volume: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVEKEEPER_CRASH")}
    return subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(volume), (volume / "plans.json").read_text()],
        env={**clean, **env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def shoot_volume(path: Path) -> Path:
    volume = make_volume(path)
    write(volume / "shoot" / "a.jpg", b"a")
    write(volume / "shoot" / "b.jpg", b"b")
    plans = {rel: list(astuple(plan(volume / rel))) for rel in ("shoot/a.jpg", "shoot/b.jpg")}
    (volume / "plans.json").write_text(json.dumps(plans))
    return volume


def where(volume: Path, name: str) -> str:
    places = [
        place
        for place, path in (
            ("shoot", volume / "shoot" / name),
            ("trash", trash_path(volume, "b1", f"shoot/{name}")),
        )
        if path.exists()
    ]
    assert len(places) == 1, f"{name} is in {places or 'no place'}"
    return places[0]


def test_the_crash_hook_kills_before_the_nth_mutation_and_a_rerun_finishes(
    tmp_path: Path,
) -> None:
    clean_run = run_crash_script(shoot_volume(tmp_path / "clean"))
    assert clean_run.returncode == 0, clean_run.stderr
    # mkdir trash, mkdir b1, mkdir shoot, rename a; then rename b
    assert clean_run.stdout.split() == ["moved", "4", "moved", "5"]

    volume = shoot_volume(tmp_path / "crash")
    crashed = run_crash_script(volume, ARCHIVEKEEPER_CRASH_AT="5")
    assert crashed.returncode == -signal.SIGKILL
    assert crashed.stdout.split() == ["moved", "4"]
    assert (where(volume, "a.jpg"), where(volume, "b.jpg")) == ("trash", "shoot")
    rerun = run_crash_script(volume)
    assert rerun.stdout.split()[::2] == ["moved", "moved"]
    assert (where(volume, "a.jpg"), where(volume, "b.jpg")) == ("trash", "trash")


@pytest.mark.parametrize("variable", ["ARCHIVEKEEPER_CRASH_AT", "ARCHIVEKEEPER_CRASH_AFTER"])
def test_a_crash_at_any_mutation_leaves_every_file_in_exactly_one_place(
    tmp_path: Path, variable: str
) -> None:
    for count in range(1, 6):
        volume = shoot_volume(tmp_path / f"{variable}-{count}")
        crashed = run_crash_script(volume, **{variable: str(count)})
        assert crashed.returncode == -signal.SIGKILL, (count, crashed.stderr)
        renames_done = count - 4 if variable.endswith("AT") else count - 3
        expected = ["trash" if index <= renames_done else "shoot" for index in (1, 2)]
        assert [where(volume, "a.jpg"), where(volume, "b.jpg")] == expected, count
        assert run_crash_script(volume).returncode == 0
        assert (where(volume, "a.jpg"), where(volume, "b.jpg")) == ("trash", "trash")
