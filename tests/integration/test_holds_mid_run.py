"""Promise 3: holds are read again right before each shoot's files are moved or purged, so a
hold added by another process in the middle of a run protects what the run has not reached."""

from __future__ import annotations

from datetime import date, timedelta

from conftest import DUE_RULES, OLD, at

from archivekeeper.act import fsops

FIRST = "2015-03-01 Mäkinen Anna"
SECOND = "2015-04-01 Virtanen Matti"
FILES = {"JPEG/IMG_1.jpg": b"j" * 100, "RAW/IMG_1.CR2": b"r" * 300}
TODAY = date.today()


def trashed(studio, rel: str) -> set[str]:
    trash = studio.volumes["studio"] / ".archivekeeper" / "trash"
    return {str(p.relative_to(b / rel)) for b in trash.iterdir() for p in (b / rel).rglob("*")
            if p.is_file()} if trash.is_dir() else set()


def test_a_hold_added_by_another_process_during_a_purge_saves_the_groups_not_yet_purged(
        studio, monkeypatch):
    studio.write_config(DUE_RULES)
    studio.shoot("studio", FIRST, FILES, mtime=OLD)
    studio.shoot("studio", SECOND, FILES, mtime=OLD)
    studio.ok("scan")
    assert "moved 4 files" in studio.ok("apply").stdout
    month = at(TODAY + timedelta(days=31))
    real_unlink = fsops.VolumeRoot.unlink_trash
    added = []

    def unlink_then_hold(self, *args, **kwargs):
        outcome = real_unlink(self, *args, **kwargs)
        if not added:  # the owner, at another terminal, while the first group is purged
            hold = studio.cli("hold", "add", "--customer", "Virtanen Matti", "--kind",
                              "invoice", "--reason", "open invoice", env=month)
            added.append(hold.returncode)
        return outcome

    monkeypatch.setattr(fsops.VolumeRoot, "unlink_trash", unlink_then_hold)
    result = studio.ok("trash", "purge", env=month)
    assert added == [0]
    assert trashed(studio, FIRST) == set()
    assert trashed(studio, SECOND) == set(FILES)
    assert "held, not purged" in result.stderr


def test_a_hold_added_during_a_long_apply_purge_step_is_seen_too(studio, monkeypatch):
    studio.write_config(DUE_RULES)
    studio.shoot("studio", FIRST, FILES, mtime=OLD)
    studio.shoot("studio", SECOND, FILES, mtime=OLD)
    studio.ok("scan")
    studio.ok("apply")
    real_unlink = fsops.VolumeRoot.unlink_trash
    month = at(TODAY + timedelta(days=31))

    def unlink_then_hold(self, *args, **kwargs):
        outcome = real_unlink(self, *args, **kwargs)
        if studio.cli("hold", "list", "--json", env=month).stdout.count('"id"') == 0:
            hold = studio.cli("hold", "add", "--shoot", f"studio:{SECOND}", "--kind",
                              "legal-claim", "--reason", "claim", env=month)
            assert hold.returncode == 0, hold.stderr
        return outcome

    monkeypatch.setattr(fsops.VolumeRoot, "unlink_trash", unlink_then_hold)
    studio.ok("apply", env=month)  # apply purges expired trash after moving
    assert trashed(studio, FIRST) == set()
    assert trashed(studio, SECOND) == set(FILES)
