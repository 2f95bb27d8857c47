"""A bind mount of an outside folder under a volume root is another mount (promise 1), though its
st_dev is the volume's own: the scan does not index it and fsops touches nothing through it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from archivekeeper.act.fsops import Expect, FsError, VolumeRoot
from archivekeeper.index import mounts, walker


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def snapshot(path: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(path)): p.read_bytes() if p.is_file() else None
            for p in sorted(path.rglob("*"))}




@pytest.fixture(params=["statx", "mountinfo"])
def mount_ids(request, monkeypatch):
    """The statx mount id, and the /proc/self/mountinfo fallback for kernels before 5.8."""
    if request.param == "mountinfo":
        monkeypatch.setattr(mounts, "_STATX", None)
    return request.param


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    write(path / "IMG_1.CR2", b"not yours")
    (path / "empty").mkdir()
    return path


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    path = tmp_path / "vol"
    write(path / ".archivekeeper" / "volume.json", b'{"id": "test"}')
    return path


def test_fsops_refuses_every_operation_through_a_bind_mount(
        volume, outside, bind_mount, mount_ids):
    bind_mount(outside, volume / "shoot" / "RAW")
    before = snapshot(outside)
    found = os.stat(volume / "shoot" / "RAW" / "IMG_1.CR2")
    expect = Expect(found.st_size, found.st_mtime_ns, found.st_ino)
    with VolumeRoot.open(volume, "studio") as root:
        for outcome in (root.unlink(b"shoot/RAW/IMG_1.CR2", expect),
                        root.move_to_trash(b"shoot/RAW/IMG_1.CR2", "b1", expect)):
            assert outcome.status == "refused" and "another mount" in outcome.detail
        assert root.prune_empty_dirs(b"shoot/RAW/empty", b"shoot") == 0
    assert snapshot(outside) == before


def test_fsops_never_creates_trash_folders_in_a_bind_mount(volume, outside, bind_mount, mount_ids):
    photo = write(volume / "shoot" / "a.jpg", b"photo")
    bind_mount(outside, volume / ".archivekeeper" / "trash")
    before = snapshot(outside)
    found = os.stat(photo)
    with VolumeRoot.open(volume, "studio") as root:
        outcome = root.move_to_trash(b"shoot/a.jpg", "b1",
                                     Expect(found.st_size, found.st_mtime_ns, found.st_ino))
    assert outcome.status == "refused" and "another mount" in outcome.detail
    assert photo.read_bytes() == b"photo"
    assert snapshot(outside) == before


def test_a_volume_whose_marker_folder_is_a_bind_mount_is_not_opened(volume, tmp_path, bind_mount):
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere / "volume.json", b'{"id": "test"}')
    (volume / ".archivekeeper" / "volume.json").unlink()
    bind_mount(elsewhere, volume / ".archivekeeper")
    with pytest.raises(FsError, match="another mount"):
        VolumeRoot.open(volume, "studio").close()


@pytest.mark.parametrize("listing", ["in-process", "workers"])
def test_scan_does_not_index_or_list_a_bind_mounted_outside_folder(
        studio, tmp_path, bind_mount, monkeypatch, listing):
    monkeypatch.setattr(walker, "WORKERS_FROM", 1 if listing == "workers" else 10**9)
    foreign = tmp_path / "foreign"
    write(foreign / "IMG_9.jpg", b"f" * 70)
    studio.shoot("studio", "2024-05-12 Mäkinen Anna")
    vol = studio.volumes["studio"]
    bind_mount(foreign, vol / "2019-05-12 Ulko Pekka")  # looks like a shoot
    bind_mount(foreign, vol / "2024-05-12 Mäkinen Anna" / "extra")  # inside a shoot
    studio.ok("scan")
    shoots = studio.shoots()
    assert list(shoots) == [("studio", "2024-05-12 Mäkinen Anna")]
    assert shoots[("studio", "2024-05-12 Mäkinen Anna")]["bytes"] == 400
