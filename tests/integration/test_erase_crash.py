"""kill -9 at every file operation of an erasure (art. 17), then run again: the erasure is
finished, nothing of another customer and nothing held is touched, and no trace of the name is
left in what archivekeeper keeps (SPEC "Erasure", promises 3, 6, 7, 8).

The archive: two customers on two volumes. The erased one has a shoot an earlier apply moved to
trash, a shoot inside a customer folder (emptied: it goes too), a copy on the backup volume whose
folder name is in NFD, and (in the `held` archive) a shoot kept by a shoot hold. The killed run
is the installed CLI (fsops kills its own process at the Nth file operation); everything else
runs in-process, for speed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from pathlib import Path

import pytest
from conftest import OLD, Studio

from archivekeeper.act import fsops

RULES = """\
rules:
  - {{name: old-shoots, delete_after: 5 years}}
safety:
  notice_period: 0 days
  trash_retention: 30 days
  max_fraction_per_volume: 1.0
report:
  dir: {reports}
"""
FILES = {"IMG_1.jpg": b"j" * 100, "RAW/sub/IMG_1.CR2": b"r" * 300}
RECENT = time.time() - 86400
NAME = "MÄKINEN ANNA"  # how the owner types it: matched as "Mäkinen Anna", NFD, "mäkinen_anna"
REASON = "request received by e-mail"
TRASHED = ("studio", "2015-03-01 Mäkinen Anna")  # due: the earlier apply moves it to trash
HELD = ("studio", "20190505_mäkinen_anna_portrait")  # due too, but held in the `held` archive
ERASED = [TRASHED, HELD,
          ("studio", "Mäkinen Anna/01.06.2025 wedding"),  # not due: erasure overrides rules
          ("backup-1", "2024-03-01 Ma\u0308kinen Anna")]
OTHERS = [("studio", "2025-06-01 Korhonen Päivi"), ("studio", "Korhonen Päivi/01.04.2024 wedding"),
          ("backup-1", "2025-06-01 Korhonen Päivi")]
# Any spelling of the name (NFC or NFD, any case, `_` or spaces, and a JSON \u escape of the
# "ä"): the ASCII tail is enough.
NAME_BYTES = re.compile(rb"kinen[ _]+anna", re.IGNORECASE)


def build(root: Path, held: bool) -> Studio:
    studio = Studio(root, volumes=("studio", "backup-1"), removable=("backup-1",),
                    extra=RULES.format(reports=root / "reports"))
    studio.init_volumes()
    for volume, rel in ERASED + OTHERS:
        old = (volume, rel) in (TRASHED, HELD)
        studio.shoot(volume, rel, FILES, mtime=OLD if old else RECENT)
    studio.ok("scan")
    if held:
        studio.ok("hold", "add", "--shoot", ":".join(HELD), "--kind", "invoice", "--reason",
                  "open invoice 2024-113")
    return studio


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    return {held: build(tmp_path_factory.mktemp(f"erase-template-{held}"), held).root
            for held in (True, False)}


def fresh(template: Path, tmp_path: Path) -> Studio:
    """A copy of the template, indexed again (a copy has new inode numbers), after the apply
    that moves the old shoot to trash and a weekly report that names the customer."""
    root = tmp_path / "s"
    shutil.copytree(template, root, symlinks=True)
    studio = Studio(root, volumes=("studio", "backup-1"), removable=("backup-1",),
                    extra=RULES.format(reports=root / "reports"))
    studio.ok("scan", "--full")
    studio.ok("apply")
    studio.ok("report")
    assert trash_files(studio), "the earlier apply moved nothing to trash"
    return studio


def trash_files(studio: Studio) -> list[Path]:
    out = []
    for top in studio.volumes.values():
        trash = top / ".archivekeeper" / "trash"
        out += [Path(d) / f for d, _, names in os.walk(trash) for f in names]
    return out


def trash_dirs(studio: Studio) -> list[Path]:
    out = []
    for top in studio.volumes.values():
        trash = top / ".archivekeeper" / "trash"
        out += [Path(d) / n for d, names, _ in os.walk(trash) for n in names]
    return out


def erase_args() -> tuple[str, ...]:
    return ("erase", "--customer", NAME, "--yes", "--reason", REASON)


def check_untouched(studio: Studio, held: bool) -> None:
    """The other customer's files, and the held shoot's, are in place as they were."""
    for volume, rel in OTHERS + ([HELD] if held else []):
        for name, data in FILES.items():
            path = studio.volumes[volume] / rel / name
            assert path.is_file() and path.read_bytes() == data, path
    if held:
        assert not any(HELD[1] in str(p) for p in trash_files(studio))


def check_erased(studio: Studio, held: bool) -> None:
    for volume, rel in ERASED:
        if held and (volume, rel) == HELD:
            continue
        folder = studio.volumes[volume] / rel
        assert not folder.exists(), f"{folder} left: {list(os.walk(folder))}"
    assert not (studio.volumes["studio"] / "Mäkinen Anna").exists()  # the emptied container
    assert trash_files(studio) == [] and trash_dirs(studio) == [], (trash_files(studio),
                                                                    trash_dirs(studio))


def named_in(studio: Studio) -> list[str]:
    """Files under state_dir and report.dir whose bytes name the customer."""
    out = []
    for top in (studio.state, studio.root / "reports"):
        for dirpath, _, names in os.walk(top):
            for name in names:
                path = Path(dirpath) / name
                if NAME_BYTES.search(path.read_bytes()) or NAME_BYTES.search(name.encode()):
                    out.append(os.path.relpath(path, studio.root))
    return sorted(out)


def check_finished(studio: Studio, held: bool) -> None:
    check_untouched(studio, held)
    check_erased(studio, held)
    verify = studio.run("audit", "verify")
    assert verify.exit_code == 0, verify.output
    shown = studio.ok("audit", "show", "--customer", "Mäkinen Anna").stdout
    assert re.search(r"^\d+ \S+ erase_done ", shown, re.M), shown
    named = named_in(studio)
    if held:  # the index keeps the held shoot (and its hold): nothing else may name them
        assert all(p.startswith("state/index.sqlite") for p in named), named
        listed = studio.json("shoots", "--customer", NAME)["shoots"]
        assert [(s["volume"], s["path"]) for s in listed] == [HELD], listed
    else:
        assert named == [], named


# A clean erasure of each archive makes this many file operations (unlink, rmdir): each is a
# kill point below. test_the_kill_points_are_every_file_operation checks the counts.
OPS = {True: 20, False: 24}


def points(held: bool, step: int = 1, crashes=("ARCHIVEKEEPER_CRASH_AT",
                                                "ARCHIVEKEEPER_CRASH_AFTER")):
    return [(crash, n) for crash in crashes for n in range(1, OPS[held] + 1, step)]


# Every point of the held archive, rerun by `erase`; some rerun by `apply` (which finishes a
# running erasure first) instead; some of the unheld archive, where no file may name them.
CASES = ([pytest.param(True, point, "erase", id=f"held-{point[0][-5:]}-{point[1]}")
          for point in points(True)]
         + [pytest.param(True, point, "apply", id=f"held-{point[0][-5:]}-{point[1]}-apply")
            for point in points(True, 3, ("ARCHIVEKEEPER_CRASH_AFTER",))]
         + [pytest.param(False, point, "erase", id=f"unheld-{point[0][-5:]}-{point[1]}")
            for point in points(False, 4)])


@pytest.mark.parametrize("held", [True, False])
def test_the_kill_points_are_every_file_operation(templates, tmp_path, held):
    studio = fresh(templates[held], tmp_path)
    before = fsops.mutation_count()
    studio.ok(*erase_args())
    assert fsops.mutation_count() - before == OPS[held]
    check_finished(studio, held)


@pytest.mark.parametrize(("held", "point", "rerun"), CASES)
def test_erase_killed_then_rerun_finishes_it(templates, tmp_path, held, point, rerun):
    studio = fresh(templates[held], tmp_path)
    killed = studio.cli(*erase_args(), env={point[0]: str(point[1])})
    assert killed.returncode == -signal.SIGKILL, (point, killed.returncode, killed.stderr)
    check_untouched(studio, held)
    again = studio.run(*(erase_args() if rerun == "erase" else ("apply",)))
    assert again.exit_code == 0, again.output
    check_finished(studio, held)
