"""What fsops tells its caller, on real temp trees: each refusal and outcome with the detail the
user reads ("kept in trash: ...: changed (size changed from 5 to 6)"), every error naming the
operation, the path and the volume, and the steps that finish an interrupted move or prune."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from archivekeeper.act import fsops
from archivekeeper.act.fsops import Expect, FsError, Outcome, VolumeRoot


def make_volume(path: Path) -> Path:
    (path / ".archivekeeper").mkdir(parents=True)
    (path / ".archivekeeper" / "volume.json").write_text('{"id": "test"}')
    return path


def write(path: Path, content: bytes = b"photo") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def plan(path: Path) -> Expect:
    found = os.lstat(path)
    return Expect(found.st_size, found.st_mtime_ns, found.st_ino)


def in_trash(volume: Path, rel: str, batch: str = "b1") -> Path:
    return volume / ".archivekeeper" / "trash" / batch / rel


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    return make_volume(tmp_path / "vol")


@pytest.fixture
def root(volume: Path):
    with VolumeRoot.open(volume, "studio", stable_inodes=True) as opened:
        yield opened


def mounted_tmpfs(target: Path) -> None:
    result = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(target)], capture_output=True,
                            text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and mount rights): {result.stderr}")


def unmount(target: Path) -> None:
    subprocess.run(["umount", str(target)], check=True)


# --- opening a volume ---------------------------------------------------------------------------


def refusal(path, **kw) -> str:
    with pytest.raises(FsError) as caught:
        VolumeRoot.open(path, "studio", **kw)
    error = caught.value
    assert (error.verb, error.volume) == ("opening", "studio")
    assert str(error) == (
        f"error while opening {os.fsdecode(os.fsencode(path))} on volume studio: {error.reason}")
    return error.reason


def test_a_volume_path_must_be_an_absolute_directory_other_than_the_root(tmp_path: Path):
    assert refusal("vol") == "the volume path must be absolute"
    assert refusal("/") == "the filesystem root cannot be a volume"
    assert refusal("///") == "the filesystem root cannot be a volume"
    assert refusal(tmp_path / "nowhere") == "no such directory (drive not mounted?)"
    write(tmp_path / "file")
    assert refusal(tmp_path / "file") == "the volume root is a regular file, not a directory"
    (tmp_path / "link").symlink_to(tmp_path)
    assert refusal(tmp_path / "link") == "the volume root is a symlink, not a directory"
    os.mkfifo(tmp_path / "fifo")
    assert refusal(tmp_path / "fifo") == "the volume root is a special file, not a directory"
    assert refusal(tmp_path / ("x" * 300)) == os.strerror(errno.ENAMETOOLONG)


def test_a_volume_needs_a_real_marker_directory_holding_a_regular_marker_file(tmp_path: Path):
    bare = tmp_path / "bare"
    (bare / ".archivekeeper").mkdir(parents=True)
    assert refusal(bare) == "holds no volume marker .archivekeeper/volume.json"
    (bare / ".archivekeeper" / "volume.json").mkdir()
    assert refusal(bare) == ".archivekeeper/volume.json is not a regular file (it is a directory)"
    flat = tmp_path / "flat"
    write(flat / ".archivekeeper")
    assert refusal(flat) == ".archivekeeper is a regular file, not a directory"


def test_a_volume_on_another_device_than_expected_is_refused(volume: Path):
    dev = os.stat(volume).st_dev
    assert refusal(volume, expected_dev=dev + 1) == (
        f"on device {dev}, expected {dev + 1} (another drive mounted?)")
    with VolumeRoot.open(volume, "studio", expected_dev=dev) as opened:
        assert opened.dev == dev


def test_a_marker_directory_on_another_filesystem_is_refused(volume: Path):
    meta = volume / ".archivekeeper"
    mounted_tmpfs(meta)
    try:
        (meta / "volume.json").write_text('{"id": "planted"}')
        assert refusal(volume) == ".archivekeeper is another mount"
    finally:
        unmount(meta)


def test_a_trailing_slash_is_ignored_and_nothing_else_is_trimmed(tmp_path: Path):
    # "BACKUPX/" must open BACKUPX, not BACKUP
    make_volume(tmp_path / "BACKUP")
    wanted = make_volume(tmp_path / "BACKUPX")
    photo = write(wanted / "shoot" / "a.jpg")
    with VolumeRoot.open(f"{wanted}/", "backup-1") as opened:
        assert opened.move_to_trash(b"shoot/a.jpg", "b1", plan(photo)) == Outcome("moved")
    assert in_trash(wanted, "shoot/a.jpg").read_bytes() == b"photo"
    assert not (tmp_path / "BACKUP" / ".archivekeeper" / "trash").exists()


def test_close_is_idempotent_and_closes_only_its_own_descriptors(volume: Path):
    opened = VolumeRoot.open(volume, "studio")
    opened.close()
    opened.close()
    os.fstat(1)  # stdout is still open: a second close never closes someone else's fd


# --- errors name the operation, the path and the volume ---------------------------------------

EXPECT = Expect(5, 0, None)


@pytest.mark.parametrize(
    ("call", "text"),
    [
        (lambda r: r.move_to_trash(b"/abs/a.jpg", "b1", EXPECT),
         "error while moving to trash /abs/a.jpg on volume studio: "
         "invalid relative path: absolute"),
        (lambda r: r.restore("b1", b"a/\0b.jpg"),
         "error while restoring a/\\x00b.jpg on volume studio: "
         "invalid relative path: contains a NUL byte"),
        (lambda r: r.unlink(b"a//b.jpg", EXPECT),
         "error while deleting a//b.jpg on volume studio: "
         'invalid relative path: empty, "." or ".." component'),
        (lambda r: r.move_to_trash(b"a/../b.jpg", "b1", EXPECT),
         "error while moving to trash a/../b.jpg on volume studio: "
         'invalid relative path: empty, "." or ".." component'),
        (lambda r: r.restore("b1", b".archivekeeper/volume.json"),
         "error while restoring .archivekeeper/volume.json on volume studio: "
         "invalid relative path: inside .archivekeeper, which is reserved"),
        (lambda r: r.move_to_trash(b"a.jpg", "x/y", EXPECT),
         "error while moving to trash a.jpg on volume studio: invalid trash batch name 'x/y'"),
        (lambda r: r.restore("", b"a.jpg"),
         "error while restoring a.jpg on volume studio: invalid trash batch name ''"),
        (lambda r: r.restore("b\0", b"a.jpg"),
         "error while restoring a.jpg on volume studio: invalid trash batch name 'b\\x00'"),
        (lambda r: r.prune_empty_dirs(b"a/./b", b""),
         "error while removing empty directories of a/./b on volume studio: "
         'invalid relative path: empty, "." or ".." component'),
        (lambda r: r.prune_empty_dirs(b"a/b", b"/a"),
         "error while removing empty directories of /a on volume studio: "
         "invalid relative path: absolute"),
        (lambda r: r.prune_empty_dirs(b"a/b", b"c"),
         "error while removing empty directories of a/b on volume studio: c is not an ancestor"),
        (lambda r: r.prune_trash_dirs("..", b"x"),
         "error while removing empty trash directories of x on volume studio: "
         "invalid trash batch name '..'"),
        (lambda r: r.prune_trash_dirs("b1", b"x/../y"),
         "error while removing empty trash directories of x/../y on volume studio: "
         'invalid relative path: empty, "." or ".." component'),
    ],
)
def test_a_malformed_path_or_batch_is_an_error_naming_verb_path_and_volume(root, call, text):
    with pytest.raises(FsError) as caught:
        call(root)
    assert str(caught.value) == text
    assert caught.value.volume == "studio"
    assert text.startswith(f"error while {caught.value.verb} ")
    assert text.endswith(f": {caught.value.reason}")


LONG = b"x" * 300  # longer than any filesystem's name limit: ENAMETOOLONG


@pytest.mark.parametrize(
    ("call", "verb", "path"),
    [
        (lambda r: r.move_to_trash(LONG + b"/a.jpg", "b1", EXPECT), "moving to trash",
         LONG + b"/a.jpg"),
        (lambda r: r.unlink(LONG + b"/a.jpg", EXPECT), "deleting", LONG + b"/a.jpg"),
        (lambda r: r.restore("b1", LONG + b"/a.jpg"), "restoring", LONG + b"/a.jpg"),
        (lambda r: r.prune_empty_dirs(LONG + b"/a", b""), "removing empty directories of",
         LONG + b"/a"),
        (lambda r: r.prune_trash_dirs("b1", LONG), "removing empty trash directories of", LONG),
    ],
)
def test_an_unexpected_os_error_is_an_error_with_the_systems_reason(
    root, volume, call, verb, path
):
    in_trash(volume, "").mkdir(parents=True)
    with pytest.raises(FsError) as caught:
        call(root)
    error = caught.value
    assert (error.verb, error.path, error.volume) == (verb, path, "studio")
    assert error.reason == os.strerror(errno.ENAMETOOLONG)
    assert str(error) == (f"error while {verb} {path.decode()} on volume studio: "
                          f"{os.strerror(errno.ENAMETOOLONG)}")


# --- outcomes and their details ---------------------------------------------------------------


def test_a_file_that_is_no_longer_a_regular_file_is_changed_and_left(root, volume: Path):
    shoot = volume / "shoot"
    planned = plan(write(shoot / "a.jpg"))
    (shoot / "a.jpg").unlink()
    os.mkfifo(shoot / "a.jpg")
    assert root.move_to_trash(b"shoot/a.jpg", "b1", planned) == Outcome(
        "changed", "is now a special file")
    (shoot / "a.jpg").unlink()
    (shoot / "a.jpg").mkdir()
    assert root.move_to_trash(b"shoot/a.jpg", "b1", planned) == Outcome(
        "changed", "is now a directory")
    assert root.unlink(b"shoot/a.jpg", planned) == Outcome("changed", "is now a directory")
    (shoot / "a.jpg").rmdir()
    (shoot / "a.jpg").symlink_to(volume / "elsewhere")
    assert root.move_to_trash(b"shoot/a.jpg", "b1", planned) == Outcome(
        "changed", "is now a symlink")
    assert (shoot / "a.jpg").is_symlink()


def test_a_file_that_changed_says_how(root, volume: Path):
    photo = write(volume / "shoot" / "a.jpg", b"12345")
    planned = plan(photo)
    photo.write_bytes(b"123456")
    os.utime(photo, ns=(0, planned.mtime_ns))
    assert root.move_to_trash(b"shoot/a.jpg", "b1", planned) == Outcome(
        "changed", "size changed from 5 to 6")
    photo.write_bytes(b"12345")
    os.utime(photo, ns=(0, planned.mtime_ns + 7))
    assert root.unlink(b"shoot/a.jpg", planned) == Outcome(
        "changed", f"modification time changed from {planned.mtime_ns} to "
                   f"{planned.mtime_ns + 7} ns")
    os.utime(photo, ns=(0, planned.mtime_ns))
    other = Expect(planned.size, planned.mtime_ns, planned.inode + 1)
    assert root.move_to_trash(b"shoot/a.jpg", "b1", other) == Outcome(
        "changed", f"replaced by another file (inode {planned.inode + 1} is now {planned.inode})")
    assert photo.read_bytes() == b"12345"
    assert root.unlink(b"shoot/a.jpg", planned) == Outcome("unlinked")
    assert not photo.exists()


def test_a_missing_file_or_folder_is_gone_and_a_file_in_the_way_of_a_folder_refused(
    root, volume: Path
):
    write(volume / "shoot" / "RAW")  # a file where a folder was planned
    assert root.move_to_trash(b"shoot/a.jpg", "b1", EXPECT) == Outcome(
        "gone", "the file is missing")
    assert root.move_to_trash(b"shoot/JPEG/a.jpg", "b1", EXPECT) == Outcome(
        "gone", "directory JPEG is missing")
    assert root.move_to_trash(b"shoot/RAW/a.cr2", "b1", EXPECT) == Outcome(
        "refused", "RAW is a regular file, not a directory")
    assert root.unlink(b"shoot/RAW/a.cr2", EXPECT) == Outcome(
        "refused", "RAW is a regular file, not a directory")
    assert root.restore("b1", b"shoot/a.jpg") == Outcome("gone", "directory trash is missing")


def test_a_file_that_is_another_filesystem_is_changed_and_left(root, volume: Path, tmp_path):
    photo = write(volume / "shoot" / "a.jpg")
    planned = plan(photo)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    mounted_tmpfs(elsewhere)
    try:
        write(elsewhere / "a.jpg")
        os.utime(elsewhere / "a.jpg", ns=(0, planned.mtime_ns))
        bind = subprocess.run(["mount", "--bind", str(elsewhere / "a.jpg"), str(photo)],
                              capture_output=True, text=True)
        if bind.returncode != 0:
            pytest.skip(f"cannot bind-mount a file here: {bind.stderr}")
        try:
            outcome = root.move_to_trash(b"shoot/a.jpg", "b1",
                                         Expect(planned.size, planned.mtime_ns, None))
            assert outcome == Outcome("changed", "is on another filesystem")
        finally:
            unmount(photo)
    finally:
        unmount(elsewhere)
    assert photo.read_bytes() == b"photo"


def test_a_folder_whose_marker_is_a_symlink_is_another_volume_even_a_dangling_one(
    root, volume: Path
):
    inner = volume / "shoot" / "other-drive"
    (inner / ".archivekeeper").mkdir(parents=True)
    (inner / ".archivekeeper" / "volume.json").symlink_to(volume / "nowhere")
    planned = plan(write(inner / "a.jpg"))
    assert root.move_to_trash(b"shoot/other-drive/a.jpg", "b1", planned) == Outcome(
        "refused", "other-drive holds another volume's marker")
    assert (inner / "a.jpg").exists()


def test_restore_never_overwrites_and_says_so(root, volume: Path):
    photo = write(volume / "shoot" / "a.jpg", b"old")
    planned = plan(photo)
    assert root.move_to_trash(b"shoot/a.jpg", "b1", planned) == Outcome("moved")
    write(photo, b"new work")
    assert root.restore("b1", b"shoot/a.jpg", planned) == Outcome(
        "exists", "something is at the original path now; left in trash")
    assert photo.read_bytes() == b"new work"
    assert in_trash(volume, "shoot/a.jpg").read_bytes() == b"old"


def test_trash_holding_another_file_at_the_path_refuses_and_says_so(root, volume: Path):
    photo = write(volume / "shoot" / "a.jpg", b"second")
    write(in_trash(volume, "shoot/a.jpg"), b"first")
    assert root.move_to_trash(b"shoot/a.jpg", "b1", plan(photo)) == Outcome(
        "refused", "trash already holds a different file at this path")


def test_a_move_cut_short_between_link_and_unlink_is_finished(root, volume: Path):
    photo = write(volume / "shoot" / "a.jpg")
    planned = plan(photo)
    in_trash(volume, "shoot").mkdir(parents=True)
    os.link(photo, in_trash(volume, "shoot/a.jpg"))
    assert root.move_to_trash(b"shoot/a.jpg", "b1", planned) == Outcome(
        "moved", "finished an interrupted move")
    assert not photo.exists()
    assert in_trash(volume, "shoot/a.jpg").stat().st_nlink == 1


def test_a_restore_cut_short_between_link_and_unlink_is_finished(root, volume: Path):
    photo = write(volume / "shoot" / "a.jpg")
    planned = plan(photo)
    assert root.move_to_trash(b"shoot/a.jpg", "b1", planned) == Outcome("moved")
    os.link(in_trash(volume, "shoot/a.jpg"), photo)
    assert root.restore("b1", b"shoot/a.jpg", planned) == Outcome(
        "restored", "finished an interrupted move")
    assert photo.read_bytes() == b"photo" and photo.stat().st_nlink == 1
    assert not in_trash(volume, "shoot/a.jpg").exists()


# --- pruning ------------------------------------------------------------------------------------


def test_prune_goes_on_above_a_folder_already_removed(root, volume: Path):
    (volume / "Customer" / "2024 wedding").mkdir(parents=True)  # RAW below it is gone
    assert root.prune_empty_dirs(b"Customer/2024 wedding/RAW", b"") == 2
    assert not (volume / "Customer").exists()
    assert (volume / ".archivekeeper").is_dir()


def test_prune_of_trash_goes_on_above_a_folder_already_removed(root, volume: Path):
    in_trash(volume, "shoot").mkdir(parents=True)  # shoot/RAW is gone
    assert root.prune_trash_dirs("b1", b"shoot/RAW") == 2
    assert not in_trash(volume, "").exists()
    assert (volume / ".archivekeeper" / "trash").is_dir()
    in_trash(volume, "", "b2").mkdir()
    assert root.prune_trash_dirs("b2") == 1
    assert not in_trash(volume, "", "b2").exists()


# --- the crash hook -----------------------------------------------------------------------------


def test_every_mutating_call_is_counted_once_failed_ones_too(root, volume: Path):
    photo = write(volume / "shoot" / "a.jpg")
    before = fsops.mutation_count()
    # mkdir trash, mkdir trash/b1, mkdir trash/b1/shoot, one rename
    assert root.move_to_trash(b"shoot/a.jpg", "b1", plan(photo)) == Outcome("moved")
    assert fsops.mutation_count() == before + 4
    write(photo, b"again")
    # the trash folders exist now: one rename, refused because trash holds the name
    assert root.move_to_trash(b"shoot/a.jpg", "b1", plan(photo)).status == "refused"
    assert fsops.mutation_count() == before + 5


@pytest.mark.parametrize(("hook", "done"), [("_CRASH_AT", 1), ("_CRASH_AFTER", 2)])
def test_the_crash_hook_kills_the_process_at_its_nth_mutating_call(
    root, volume: Path, monkeypatch, hook, done
):
    first, second = write(volume / "shoot" / "a.jpg"), write(volume / "other" / "b.jpg")
    assert root.move_to_trash(b"shoot/a.jpg", "b1", plan(first)) == Outcome("moved")  # unset
    planned = plan(second)
    monkeypatch.setattr(fsops, "_mutations", 0)
    monkeypatch.setattr(fsops, hook, 2)
    pid = os.fork()
    if pid == 0:  # the child moves the file and is killed part-way
        try:
            root.move_to_trash(b"other/b.jpg", "b2", planned)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9
    made = [p for p in (in_trash(volume, "", "b2"), in_trash(volume, "other", "b2"))
            if p.exists()]
    assert len(made) == done  # mkdir trash/b2 (and, after the 2nd call, trash/b2/other)
    assert second.exists()


@pytest.mark.parametrize(
    ("value", "count"),
    [("3", 3), (" 12 ", 12), ("", None), ("x", None), ("-1", None), ("2.5", None)],
)
def test_the_crash_hook_reads_a_plain_count_and_ignores_anything_else(
    monkeypatch, value, count
):
    monkeypatch.setenv("ARCHIVEKEEPER_CRASH_AT", value)
    assert fsops._env_count("ARCHIVEKEEPER_CRASH_AT") == count
    monkeypatch.delenv("ARCHIVEKEEPER_CRASH_AT")
    assert fsops._env_count("ARCHIVEKEEPER_CRASH_AT") is None
