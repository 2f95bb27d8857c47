"""A lost index: index.sqlite deleted (or moved away) while the audit log stays. The holds added
with `hold add` lived only in the index; a new index built by the next scan would let their
shoots go after the notice period as if never held. The new index, finding an audit log that
already holds records, is distrusted as a clock guard refusal is (apply, purge and erase refuse
with exit 3 and an audited refusal; plan announces nothing and says why) until the owner has
checked the holds and runs `clock accept`."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest
from conftest import DUE_RULES, OLD

FILES = {"JPEG/IMG_1.jpg": b"j" * 100}
HELD = "2015-03-01 Mäkinen Anna"
OTHER = "2015-04-01 Virtanen Matti"


def in_place(studio, rel: str) -> bool:
    return (studio.volumes["studio"] / rel / "JPEG/IMG_1.jpg").is_file()


def lose_the_index(studio) -> None:
    for suffix in ("", "-wal", "-shm"):
        (studio.state / f"index.sqlite{suffix}").unlink(missing_ok=True)


def held_archive(studio) -> None:
    studio.write_config(DUE_RULES)
    studio.shoot("studio", HELD, FILES, mtime=OLD)
    studio.shoot("studio", OTHER, FILES, mtime=OLD)
    # a working studio's newest shoot: on a new index its mtime stands in for the clock mark,
    # so the new index trusts the clock at once
    studio.shoot("studio", f"{date.today() - timedelta(days=3)} Laine Tuula", FILES,
                 mtime=time.time() - 3 * 86400)
    studio.ok("scan")
    studio.ok("hold", "add", "--customer", "Mäkinen Anna", "--kind", "legal-claim",
              "--reason", "dispute")
    studio.ok("apply")
    assert in_place(studio, HELD) and not in_place(studio, OTHER)


# was: the new index knows no hold, and the next apply moves the held shoot to trash
def test_a_lost_index_deletes_nothing_until_the_owner_has_checked_the_holds(studio):
    held_archive(studio)
    lose_the_index(studio)
    studio.shoot("studio", "2015-05-01 Korhonen Päivi", FILES, mtime=OLD)
    assert studio.cli("scan").returncode == 0
    applied = studio.cli("apply")
    assert applied.returncode == 3, (applied.stdout, applied.stderr)
    assert "hold add" in applied.stderr and "clock accept" in applied.stderr
    assert in_place(studio, HELD) and in_place(studio, "2015-05-01 Korhonen Päivi")
    assert studio.cli("trash", "purge").returncode == 3
    plan = studio.cli("plan")
    assert plan.returncode == 0 and "index" in plan.stdout + plan.stderr
    assert studio.cli("audit", "verify").returncode == 0

    studio.ok("hold", "add", "--customer", "Mäkinen Anna", "--kind", "legal-claim",
              "--reason", "dispute")
    studio.ok("clock", "accept")
    assert studio.cli("apply").returncode == 0
    assert in_place(studio, HELD)  # held again
    assert not in_place(studio, "2015-05-01 Korhonen Päivi")  # the rest goes on as before
    assert studio.cli("audit", "verify").returncode == 0


def test_a_command_that_only_reads_first_does_not_hide_the_loss(studio):
    held_archive(studio)
    lose_the_index(studio)
    assert studio.cli("shoots").returncode == 0  # creates the new index, writes no audit
    studio.ok("scan")
    assert studio.cli("apply").returncode == 3
    assert in_place(studio, HELD)


@pytest.mark.parametrize("log", ["absent", "empty"])
def test_a_new_install_is_not_a_lost_index(studio, log):
    studio.write_config(DUE_RULES)
    studio.shoot("studio", OTHER, FILES, mtime=OLD)
    lose_the_index(studio)
    for name in ("audit.jsonl", "audit.head"):
        (studio.state / name).unlink(missing_ok=True)
    if log == "empty":  # as a first run leaves it if killed before its first record
        (studio.state / "audit.jsonl").write_bytes(b"")
    studio.ok("scan")
    studio.ok("clock", "accept")
    assert studio.cli("apply").returncode == 0
    assert not in_place(studio, OTHER)
