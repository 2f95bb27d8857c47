"""Drive hot-plug (archivekeeper/service/hotplug.py): volume presence through the real probe on
real temp trees, and the real /proc/self/mountinfo (a mount change made in a private mount
namespace when this user may make one)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from archivekeeper.act.volume_init import init_volume
from archivekeeper.index.volumes import MARKER, probe
from archivekeeper.service.hotplug import MountTable, Presence


def volume(tmp_path: Path, name: str) -> SimpleNamespace:
    root = tmp_path / name
    root.mkdir()
    init_volume(root, name, datetime(2025, 6, 1).astimezone())
    return SimpleNamespace(name=name, path=str(root), removable=True)


def changes(presence: Presence) -> list[tuple[str, str]]:
    return [(status.name, state) for status, state in presence.poll()]


def test_presence_reports_a_marker_removed_as_offline_and_restored_as_online(tmp_path):
    configured = [volume(tmp_path, "studio"), volume(tmp_path, "backup-1")]
    presence = Presence(lambda: probe(configured, {}))
    assert changes(presence) == [("studio", "online"), ("backup-1", "online")]
    assert changes(presence) == []
    marker = Path(configured[1].path) / MARKER
    marker.rename(tmp_path / "kept.json")  # the drive emptied: no mount change at all
    (change, state), = presence.poll()
    assert (change.name, state, change.online) == ("backup-1", "offline", False)
    assert "no volume marker" in change.reason
    assert changes(presence) == []
    (tmp_path / "kept.json").rename(marker)
    assert changes(presence) == [("backup-1", "online")]
    assert [s.online for s in presence.statuses] == [True, True]


def test_presence_reports_the_folder_gone_and_back(tmp_path):
    configured = [volume(tmp_path, "backup-1")]
    presence = Presence(lambda: probe(configured, {}))
    presence.poll()
    os.rename(configured[0].path, tmp_path / "away")
    assert changes(presence) == [("backup-1", "offline")]
    os.rename(tmp_path / "away", configured[0].path)
    assert changes(presence) == [("backup-1", "online")]


def test_another_drive_at_the_same_path_between_two_polls_is_offline_then_online(tmp_path):
    configured = [volume(tmp_path, "backup-1")]
    presence = Presence(lambda: probe(configured, {}))  # no id recorded yet: any id is taken
    (first, _), = presence.poll()
    os.rename(configured[0].path, tmp_path / "old")
    Path(configured[0].path).mkdir()
    init_volume(Path(configured[0].path), "backup-1", datetime(2025, 6, 2).astimezone())
    (gone, s1), (back, s2) = presence.poll()
    assert (gone.volume_id, s1) == (first.volume_id, "offline")
    assert (back.volume_id != first.volume_id, s2) == (True, "online")


def test_a_volume_no_longer_configured_is_reported_offline(tmp_path):
    configured = [volume(tmp_path, "studio"), volume(tmp_path, "backup-1")]
    presence = Presence(lambda: probe(configured, {}))
    presence.poll()
    del configured[1]
    (status, state), = presence.poll()
    assert (status.name, state, status.online, status.reason) == (
        "backup-1", "offline", False, "no longer configured")


def test_the_mount_table_is_quiet_while_nothing_is_mounted():
    table = MountTable()
    try:
        assert isinstance(table.fileno(), int)
        assert table.changed() is False
    finally:
        table.close()


def test_a_missing_mount_table_leaves_only_polling(tmp_path):
    table = MountTable(str(tmp_path / "no-mountinfo"))
    assert table.fileno() is None
    assert table.changed() is False


CHILD = """
import os, select, sys, time
from archivekeeper.service.hotplug import MountTable
target = sys.argv[1]
table = MountTable()
assert not table.changed(), "changed before any mount"

def fired():
    # poll() on the fd, as the daemon's main loop does, with a deadline (never a fixed sleep)
    poller = select.poll()
    poller.register(table.fileno(), MountTable.POLL_EVENTS)
    return bool(poller.poll(5000)) and table.changed()

assert os.system(f"mount -t tmpfs archivekeeper-test {target}") == 0
assert fired(), "no POLLPRI after mount"
assert not table.changed(), "changed twice for one mount"
assert os.system(f"umount {target}") == 0
assert fired(), "no POLLPRI after umount"
assert not table.changed(), "changed twice for one umount"
print("ok")
"""


def test_a_mount_and_an_unmount_make_the_mount_table_fire(tmp_path):
    """In a private mount namespace of its own, so nothing outside the test sees the mount."""
    if subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot make a private mount namespace here (unshare -m needs root or "
                    "CAP_SYS_ADMIN)")
    target = tmp_path / "mnt"
    target.mkdir()
    out = subprocess.run(
        ["unshare", "-m", "--propagation", "private", sys.executable, "-c", CHILD, str(target)],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


PLUG = """
import os, select, sys
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from archivekeeper.act.volume_init import init_volume
from archivekeeper.index.volumes import probe
from archivekeeper.service.hotplug import MountTable, Presence
target, drive = Path(sys.argv[1]), Path(sys.argv[2])
configured = [SimpleNamespace(name="backup-1", path=str(target / "BACKUP1"), removable=True)]
table, presence = MountTable(), Presence(lambda: probe(configured, {}))
poller = select.poll()
poller.register(table.fileno(), MountTable.POLL_EVENTS)

def step(command):
    # the daemon's loop: wait on the mount table (here with a deadline), then poll presence
    assert os.system(command) == 0
    assert poller.poll(5000) and table.changed(), command
    print([(s.name, state) for s, state in presence.poll()])

print([(s.name, state) for s, state in presence.poll()])
init_volume(drive, "backup-1", datetime(2025, 6, 1).astimezone())
step(f"mount --bind {drive.parent} {target}")  # plugged in
step(f"umount {target}")  # unplugged
step(f"mount --bind {drive.parent} {target}")  # plugged in again
"""


def test_a_drive_plugged_in_and_out_is_seen_through_the_mount_table(tmp_path):
    """In a private mount namespace: a bind mount stands in for the USB drive's mount."""
    if subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot make a private mount namespace here (unshare -m needs root or "
                    "CAP_SYS_ADMIN)")
    target, drive = tmp_path / "media", tmp_path / "usb" / "BACKUP1"
    target.mkdir()
    drive.mkdir(parents=True)
    out = subprocess.run(
        ["unshare", "-m", "--propagation", "private", sys.executable, "-c", PLUG, str(target),
         str(drive)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "[('backup-1', 'offline')]",
        "[('backup-1', 'online')]",
        "[('backup-1', 'offline')]",
        "[('backup-1', 'online')]",
    ]
