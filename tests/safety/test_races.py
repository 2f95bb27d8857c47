"""Races (issue 13, part 5; promises 1, 3 and 4): another thread keeps doing a hostile thing in a
loop while the real `archivekeeper` runs over a real temp tree.

Every test checks afterwards that nothing outside the volume changed (hashes before and after),
that every file of the archive is in exactly one place (where it was, or in trash), erased only if
it was the erased customer's, and that the loop really overlapped the run.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import DUE_RULES, OLD, Studio, at

from archivekeeper import ops
from archivekeeper.act import fsops

ANNA = "Mäkinen Anna"
MATTI = "Virtanen Matti"
FILES = {"JPEG/IMG_1.jpg": b"j" * 100, "JPEG/IMG_2.jpg": b"k" * 40,
         "RAW/IMG_1.CR2": b"r" * 300, "RAW/IMG_2.CR2": b"s" * 70}
# shoots with many RAWs: a longer window for a swap to land while a shoot's files move
BIG = {**FILES, **{f"RAW/IMG_{i}.NEF": b"n" * (i + 1) for i in range(3, 40)}}
TODAY = date.today()


def hashes(root: Path) -> dict[str, str]:
    """Every file under root (symlinks as their target text): relative path -> sha256."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = os.path.join(dirpath, name)
            data = (os.readlink(path).encode() if os.path.islink(path)
                    else Path(path).read_bytes())
            out[os.path.relpath(path, root)] = hashlib.sha256(data).hexdigest()
    return out


def archive(shoots: list[str], files: dict[str, bytes] = FILES) -> dict[str, bytes]:
    return {f"{rel}/{name}": data for rel in shoots for name, data in files.items()}


def places(volume: Path, rel: str, data: bytes) -> list[str]:
    """Where a file of the archive is now, content checked: its place and/or trash batches."""
    found = []
    if (volume / rel).is_file() and not (volume / rel).is_symlink():
        assert (volume / rel).read_bytes() == data, rel
        found.append("place")
    trash = volume / ".archivekeeper" / "trash"
    for batch in sorted(trash.iterdir()) if trash.is_dir() else ():
        if (batch / rel).is_file():
            assert (batch / rel).read_bytes() == data, rel
            found.append(batch.name)
    return found


def assert_nothing_lost(volume: Path, files: dict[str, bytes], erased_prefix: str | None = None):
    for rel, data in files.items():
        where = places(volume, rel, data)
        if erased_prefix and rel.startswith(erased_prefix) and not where:
            continue  # erased: the erased customer's, so allowed
        assert len(where) == 1, (rel, where)


def no_traceback(result) -> None:
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    assert result.returncode in (0, 1), (result.returncode, result.stderr)


class Loop(threading.Thread):
    """Runs step() again and again until stopped (or until it returns False: nothing left to
    do); counts the rounds done while `running` is set, so a test can show the race overlapped
    the run."""

    def __init__(self, step, undo=lambda: None):
        super().__init__(daemon=True)
        self.step, self.undo = step, undo
        self.stop = threading.Event()
        self.running = threading.Event()
        self.rounds_during_run = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                if self.step() is False:
                    self.stop.wait()
                    break
                if self.running.is_set():
                    self.rounds_during_run += 1
        except BaseException as exc:  # shown by the test, not lost in the thread
            self.error = exc
        finally:
            self.undo()

    def during(self, call):
        """Run call() with the loop going; stop it, put things back, and return call()'s value."""
        self.start()
        self.running.set()
        try:
            return call()
        finally:
            self.running.clear()
            self.stop.set()
            self.join(60)
            assert not self.is_alive()
            assert self.error is None, repr(self.error)


def make_studio(tmp_path: Path, extra: str = DUE_RULES) -> Studio:
    (tmp_path / "s").mkdir()
    studio = Studio(tmp_path / "s", volumes=("studio",), extra=extra)
    studio.init_volumes()
    return studio


def shoot_names(n_anna: int, n_matti: int) -> list[str]:
    return ([f"2015-03-{i + 1:02d} {ANNA}" for i in range(n_anna)]
            + [f"2015-04-{i + 1:02d} {MATTI}" for i in range(n_matti)])


# -- 1. a directory swapped for a symlink to outside the volume, in a loop ---------------------

class SymlinkSwapper:
    """For each raced folder: renamed away, a symlink to outside in its place, and back; the
    parent folder's mtime is put back each time, so the run's whole-shoot check passes and the
    swap reaches the moment files are moved (the hardest case for fsops)."""

    def __init__(self, folders: list[Path], outside: Path):
        self.folders = folders
        self.outside = outside
        self.mtimes = {f.parent: f.parent.stat().st_mtime_ns for f in folders}
        self.done: set[Path] = set()  # folders the run emptied and removed

    def step(self) -> None:
        for folder in self.folders:
            if folder in self.done:
                continue
            away = folder.with_name(f".{folder.name}.away")
            try:
                os.rename(folder, away)
            except FileNotFoundError:  # pruned by the run after its files went
                self.done.add(folder)
                continue
            os.symlink(self.outside, folder)
            self._keep_mtime(folder.parent)
            os.unlink(folder)
            try:
                os.rename(away, folder)
            except FileNotFoundError:  # erase scans first: it erased the away folder too
                self.done.add(folder)
            self._keep_mtime(folder.parent)

    def _keep_mtime(self, parent: Path) -> None:
        try:
            os.utime(parent, ns=(self.mtimes[parent], self.mtimes[parent]))
        except FileNotFoundError:  # pruned by the run
            pass

    def undo(self) -> None:
        for folder in self.folders:
            away = folder.with_name(f".{folder.name}.away")
            if folder.is_symlink():
                os.unlink(folder)
            if away.exists():
                os.rename(away, folder)


@pytest.mark.parametrize("level", ["RAW", "shoot"])
@pytest.mark.parametrize("command", ["apply", "erase"])
def test_a_folder_swapped_for_a_symlink_in_a_loop_is_never_followed(tmp_path, command, level):
    """A folder inside the shoot (RAW), or the shoot folder itself, swapped for a symlink to an
    outside copy that has the same names, sizes and mtimes: only no-follow (and the inode check
    behind it) saves it."""
    studio = make_studio(tmp_path)
    names = shoot_names(4, 4)
    paths = [studio.shoot("studio", rel, BIG, mtime=OLD) for rel in names]
    outside = tmp_path / "outside"
    for name, data in BIG.items():
        (outside / name).parent.mkdir(parents=True, exist_ok=True)
        (outside / name).write_bytes(data)
        os.utime(outside / name, (OLD, OLD))
    studio.ok("scan")
    before = hashes(outside)
    raced = [p for p in paths if ANNA in p.name][:3] + [p for p in paths if MATTI in p.name][:2]
    if level == "RAW":
        swapper = SymlinkSwapper([p / "RAW" for p in raced], outside / "RAW")
    else:
        swapper = SymlinkSwapper(raced, outside)
    loop = Loop(swapper.step, swapper.undo)
    args = ["apply"] if command == "apply" else ["erase", "--customer", ANNA, "--yes"]
    result = loop.during(lambda: studio.cli(*args))
    no_traceback(result)
    assert loop.rounds_during_run > 0
    assert hashes(outside) == before
    volume = studio.volumes["studio"]
    files = archive(names, BIG)
    assert_nothing_lost(volume, files, erased_prefix="2015-03" if command == "erase" else None)
    unraced = [rel for rel in names if volume / rel not in raced]
    if command == "apply":  # the shoots nobody raced went to trash whole
        for rel in unraced:
            assert all(places(volume, f"{rel}/{n}", d) not in ([], ["place"])
                       for n, d in BIG.items()), rel
    else:  # Anna's unraced shoot is erased; Matti's shoots are all in place
        assert not (volume / unraced[0]).exists()
        for rel in names[4:]:
            assert all((volume / rel / n).read_bytes() == d for n, d in BIG.items())
    assert studio.cli("audit", "verify").returncode == 0


class SymlinkPlanter:
    """While a restore rebuilds a shoot: a symlink to the outside folder planted where RAW is
    about to be made, and taken away again, in a loop."""

    def __init__(self, shoots: list[Path], outside: Path):
        self.shoots, self.outside = shoots, outside

    def step(self) -> None:
        for shoot in self.shoots:
            raw = shoot / "RAW"
            if raw.is_symlink():
                os.unlink(raw)
            elif shoot.is_dir() and not raw.exists():
                try:
                    os.symlink(self.outside, raw)
                except (FileExistsError, FileNotFoundError):  # the restore got there first
                    pass

    def undo(self) -> None:
        for shoot in self.shoots:
            if (shoot / "RAW").is_symlink():
                os.unlink(shoot / "RAW")


def test_a_symlink_planted_in_a_loop_where_restore_rebuilds_a_folder_is_never_followed(tmp_path):
    studio = make_studio(tmp_path)
    names = shoot_names(3, 3)
    paths = [studio.shoot("studio", rel, BIG, mtime=OLD) for rel in names]
    studio.ok("scan")
    assert studio.cli("apply").returncode == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_bytes(b"outside")
    before = hashes(outside)
    groups = [item["id"] for item in studio.json("trash", "list")["items"]]
    assert len(groups) == len(names)
    for path in paths:  # someone made the shoot folders again: the planter starts at once
        path.mkdir()
    planter = SymlinkPlanter(paths, outside)
    loop = Loop(planter.step, planter.undo)
    results = loop.during(lambda: [studio.cli("trash", "restore", str(g)) for g in groups])
    for result in results:
        no_traceback(result)
    assert loop.rounds_during_run > 0
    assert hashes(outside) == before  # nothing restored into it, nothing made in it
    assert_nothing_lost(studio.volumes["studio"], archive(names, BIG))
    assert studio.cli("audit", "verify").returncode == 0


# -- 2. a file replaced between plan and apply, and again and again during it ------------------

def test_a_file_replaced_after_the_plan_is_skipped_reported_and_the_replacement_kept(tmp_path):
    studio = make_studio(tmp_path)
    names = shoot_names(3, 3)
    for rel in names:
        studio.shoot("studio", rel, FILES, mtime=OLD)
    studio.ok("scan")
    assert studio.cli("plan").returncode == 0
    volume = studio.volumes["studio"]
    targets = [volume / names[0] / "JPEG/IMG_1.jpg", volume / names[4] / "RAW/IMG_2.CR2"]
    # the folders' mtimes are put back after each replacement: only the file's own facts tell
    folders = {t.parent: t.parent.stat().st_mtime_ns for t in targets}
    latest: dict[Path, bytes] = {}
    rounds = iter(range(1, 10**9))

    def replace() -> None:
        k = next(rounds)
        for target in targets:
            data = b"replacement %d " % k * (k % 7 + 1)
            if k % 2:  # a new file renamed over the old name (a new inode)
                tmp = target.with_name(target.name + ".part")
                tmp.write_bytes(data)
                os.rename(tmp, target)
            else:  # rewritten in place (the same inode)
                target.write_bytes(data)
            latest[target] = data
            os.utime(target.parent, ns=(folders[target.parent],) * 2)

    replace()  # between plan and apply
    result = Loop(replace).during(lambda: studio.cli("apply"))
    no_traceback(result)
    for target in targets:
        assert target.read_bytes() == latest[target]  # the last replacement, intact, in place
        rel = str(target.relative_to(volume))
        assert places(volume, rel, latest[target]) == ["place"]
        shoot = rel.split("/", 1)[0]
        assert any(f"studio:{shoot}: " in line and "changed" in line
                   for line in result.stderr.splitlines()), result.stderr  # reported
    files = archive(names)
    for target in targets:
        del files[str(target.relative_to(volume))]
    assert_nothing_lost(volume, files)
    untouched = [rel for rel in names if rel not in (names[0], names[4])]
    for rel in untouched:  # the other shoots went to trash as planned
        assert all(places(volume, f"{rel}/{n}", d) not in ([], ["place"])
                   for n, d in FILES.items()), rel
    assert studio.cli("audit", "verify").returncode == 0


def test_files_added_to_shoots_in_a_loop_during_apply_stay(tmp_path):
    """New files (and folders) keep appearing in the due shoots while apply runs, the folders'
    mtimes put back each time so the whole-shoot check cannot see them: only planned files move,
    every new one stays where it was made."""
    studio = make_studio(tmp_path)
    names = shoot_names(3, 3)
    paths = [studio.shoot("studio", rel, BIG, mtime=OLD) for rel in names]
    studio.ok("scan")
    mtimes = {p / sub: (p / sub).stat().st_mtime_ns for p in paths for sub in ("RAW", "JPEG")}
    added: list[Path] = []
    rounds = iter(range(10**9))

    def add() -> None:
        k = next(rounds)
        for folder, mtime in mtimes.items():
            new = folder / f"new_{k}" / "IMG_9.CR2" if k % 3 == 0 else folder / f"NEW_{k}.jpg"
            try:
                new.parent.mkdir(exist_ok=True)
                new.write_bytes(b"new %d" % k)
            except FileNotFoundError:  # the run emptied and removed the folder: make it again
                continue
            added.append(new)
            os.utime(folder, ns=(mtime, mtime))

    result = Loop(add).during(lambda: studio.cli("apply"))
    no_traceback(result)
    assert added
    volume = studio.volumes["studio"]
    for new in added:
        assert new.read_bytes().startswith(b"new "), new
        assert places(volume, str(new.relative_to(volume)), new.read_bytes()) == ["place"]
    assert_nothing_lost(volume, archive(names, BIG))
    assert studio.cli("audit", "verify").returncode == 0


# -- 3. a bind mount appearing under a shoot, and going, in a loop -----------------------------

def mounted(path: Path) -> bool:
    """Is path a mount point? (os.path.ismount cannot see a bind mount of the same filesystem.)"""
    escaped = os.fsencode(path)
    for char in (b"\\", b" ", b"\t", b"\n"):
        escaped = escaped.replace(char, b"\\%03o" % ord(char))
    with open("/proc/self/mountinfo", "rb") as fh:
        return any(line.split()[4] == escaped for line in fh)


@pytest.mark.parametrize("command", ["apply", "erase"])
def test_a_bind_mount_coming_and_going_under_a_shoot_is_never_crossed(tmp_path, command):
    studio = make_studio(tmp_path)
    names = shoot_names(3, 2)
    paths = [studio.shoot("studio", rel, FILES, mtime=OLD) for rel in names]
    outside = tmp_path / "outside"  # the same filesystem as the volume: only the mount id tells
    outside.mkdir()
    for name, data in FILES.items():
        if name.startswith("JPEG/"):
            (outside / name[5:]).write_bytes(data)
            os.utime(outside / name[5:], (OLD, OLD))
    studio.ok("scan")
    before = hashes(outside)
    targets = [p / "JPEG" for p in paths[:2]] + [paths[3] / "JPEG"]
    first = subprocess.run(["mount", "--bind", str(outside), str(targets[0])],
                           capture_output=True, text=True)
    if first.returncode != 0:
        pytest.skip(f"cannot bind-mount here (needs root and mount rights): {first.stderr}")
    subprocess.run(["umount", str(targets[0])], check=True)

    def step() -> None:
        for target in targets:
            if target.is_dir() and not mounted(target):
                subprocess.run(["mount", "--bind", str(outside), str(target)],
                               capture_output=True)
        for target in targets:
            if mounted(target):
                subprocess.run(["umount", "--lazy", str(target)], capture_output=True)

    def undo() -> None:
        for target in targets:
            while mounted(target):
                subprocess.run(["umount", "--lazy", str(target)], check=True)

    args = ["apply"] if command == "apply" else ["erase", "--customer", ANNA, "--yes"]
    loop = Loop(step, undo)
    result = loop.during(lambda: studio.cli(*args))
    no_traceback(result)
    assert loop.rounds_during_run > 0
    assert not any(mounted(t) for t in targets)
    assert hashes(outside) == before
    assert_nothing_lost(studio.volumes["studio"], archive(names),
                        erased_prefix="2015-03" if command == "erase" else None)
    assert studio.cli("audit", "verify").returncode == 0


# -- 4. a drive emptied during apply ------------------------------------------------------------

def locations(volume: Path, away: Path, rel: str, data: bytes) -> list[str]:
    found = places(volume, rel, data)
    if (away / rel).is_file():
        assert (away / rel).read_bytes() == data
        found.append("away")
    return found


def moving_started(volume: Path) -> bool:
    trash = volume / ".archivekeeper" / "trash"
    return trash.is_dir() and any(trash.iterdir())


@pytest.mark.parametrize("how", ["files-moved-away", "marker-removed", "unmounted"])
def test_a_drive_emptied_during_apply_loses_nothing_and_says_so(tmp_path, how):
    """Once apply has begun moving: the shoots moved off the drive, or its marker taken away and
    put back again and again, or the drive (a bind mount at the volume path) unmounted, leaving
    the empty mount point."""
    (tmp_path / "s").mkdir()
    studio = Studio(tmp_path / "s", volumes=("studio",), extra=DUE_RULES)
    volume = studio.volumes["studio"]
    drive = tmp_path / "drive"  # what is on the drive, whatever happens to the mount point
    drive.mkdir()
    volume.mkdir(parents=True)
    if how == "unmounted":
        done = subprocess.run(["mount", "--bind", str(drive), str(volume)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot bind-mount here (needs root and mount rights): {done.stderr}")
    try:
        studio.init_volumes()
        names = shoot_names(6, 6)
        for rel in names:
            studio.shoot("studio", rel, BIG, mtime=OLD)
        studio.ok("scan")
        marker = volume / ".archivekeeper" / "volume.json"
        away = tmp_path / "away"  # the same filesystem: moving there is a rename
        away.mkdir()
        saved_marker = marker.read_bytes()

        def empty() -> None:
            if moving_started(volume):
                for entry in sorted(os.listdir(volume)):
                    if entry != ".archivekeeper":
                        os.rename(volume / entry, away / entry)

        def toggle_marker() -> None:
            os.rename(marker, away / "volume.json")
            os.rename(away / "volume.json", marker)

        def marker_back() -> None:
            if not marker.exists():
                marker.write_bytes(saved_marker)

        def unplug() -> None:
            if mounted(volume) and moving_started(volume):
                subprocess.run(["umount", "--lazy", str(volume)], check=True)

        step = {"files-moved-away": empty, "marker-removed": toggle_marker, "unmounted": unplug}
        loop = Loop(step[how], marker_back if how == "marker-removed" else lambda: None)
        result = loop.during(lambda: studio.cli("apply"))
        no_traceback(result)
        assert loop.rounds_during_run > 0
        if how == "unmounted":
            assert not mounted(volume)
            assert os.listdir(volume) == []  # nothing written on the empty mount point
            subprocess.run(["mount", "--bind", str(drive), str(volume)], check=True)
        if how == "files-moved-away":
            assert os.listdir(away)  # it happened mid-run
        files = archive(names, BIG)
        for rel, data in files.items():
            assert len(locations(volume, away, rel, data)) == 1, rel
        # what was skipped is named, one line each; the marker gone at apply's first look at
        # the drive also logs that the volume was refused (CI, 2026-12-02: all items skipped
        # as "volume is not online now", rightly, after that log line)
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        logged = [json.loads(ln) for ln in lines if ln.startswith("{")]
        assert all(e["event"] == "volume_refused" and e["volume"] == "studio"
                   for e in logged), result.stderr
        named = [ln for ln in lines if not ln.startswith("{")]
        assert all(ln.startswith("skipped: studio:") for ln in named), result.stderr
        skipped = int(result.stdout.split("skipped ")[1].split(";")[0])
        assert skipped == len(named)
        # the drive comes back whole: the next scan and apply finish the job
        for entry in os.listdir(away):
            if entry != "volume.json":
                os.rename(away / entry, volume / entry)
        for dirpath, _, _ in os.walk(volume):
            if ".archivekeeper" not in dirpath:
                os.utime(dirpath, (OLD, OLD))
        assert studio.cli("scan").returncode == 0
        again = studio.cli("apply")
        assert again.returncode == 0, again.stderr
        for rel, data in files.items():
            assert places(volume, rel, data) not in ([], ["place"]), rel
        assert studio.cli("audit", "verify").returncode == 0
    finally:
        while how == "unmounted" and mounted(volume):
            subprocess.run(["umount", "--lazy", str(volume)], check=True)


# -- 5. `hold add` from another process racing purge and erase --------------------------------

class HoldAdder:
    """Adds a shoot hold, one shoot after another, with the installed CLI; remembers which holds
    were committed (the command had returned) at each moment the run read the holds. The run
    waits at its first unlink, and again halfway, for one more hold to be committed, so the race
    overlaps the run however fast the machine; otherwise both go as fast as they can."""

    def __init__(self, studio: Studio, shoots: list[str], env: dict):
        self.studio, self.env = studio, env
        self.todo = list(shoots)
        self.committed: set[str] = set()
        self.lock = threading.Lock()
        self.reads: list[frozenset[str]] = []  # what was committed when each read began
        self.first_unlink: dict[str, int] = {}  # shoot -> index of the read that governed it
        self.added = threading.Event()
        self.gates = {0, len(shoots) * len(FILES) // 2}  # unlink counts at which the run waits
        self.unlinks = 0

    def step(self) -> bool:
        if not self.todo:
            return False
        rel = self.todo.pop()
        # --force: a shoot the run has already emptied is no longer indexed
        done = self.studio.cli("hold", "add", "--shoot", f"studio:{rel}", "--kind",
                               "legal-claim", "--reason", "claim", "--force", env=self.env)
        assert done.returncode == 0, done.stderr
        with self.lock:
            self.committed.add(rel)
        self.added.set()
        return True

    def patch(self, monkeypatch, method: str) -> None:
        real_holds, real_unlink = ops.all_holds, getattr(fsops.VolumeRoot, method)

        def all_holds(*args, **kwargs):
            with self.lock:
                self.reads.append(frozenset(self.committed))
            return real_holds(*args, **kwargs)

        def unlink(root, *args):
            relpath = next(a for a in args if isinstance(a, bytes)).decode()
            shoot = relpath.split("/JPEG/")[0].split("/RAW/")[0]
            if self.unlinks in self.gates and self.todo:  # (the last hold may be under way)
                self.added.clear()
                assert self.added.wait(60)
            self.unlinks += 1
            self.first_unlink.setdefault(shoot, len(self.reads) - 1)
            return real_unlink(root, *args)

        monkeypatch.setattr(ops, "all_holds", all_holds)
        monkeypatch.setattr(fsops.VolumeRoot, method, unlink)

    def check(self) -> set[str]:
        """Return the shoots that must have been kept: a hold committed before the read that
        governed the shoot's first unlink (a hold that came later may lose the race)."""
        late = {s for s, i in self.first_unlink.items() if s in self.reads[i]}
        assert not late, f"unlinked although a committed hold covered them: {late}"
        kept = {s for s in self.committed if s not in self.first_unlink}
        assert kept, "no hold came in time to keep anything: the race did not overlap"
        return kept


def trashed(volume: Path, rel: str) -> set[str]:
    trash = volume / ".archivekeeper" / "trash"
    return {str(p.relative_to(b / rel)) for b in trash.iterdir() for p in (b / rel).rglob("*")
            if p.is_file()} if trash.is_dir() else set()


def test_hold_add_racing_a_purge_never_loses_a_held_file(tmp_path, monkeypatch):
    studio = make_studio(tmp_path)
    names = [f"2015-{m:02d}-{d:02d} Asiakas {m}{d}" for m in (1, 2, 3) for d in range(1, 11)]
    for rel in names:
        studio.shoot("studio", rel, FILES, mtime=OLD)
    studio.ok("scan")
    studio.ok("apply")
    month = at(TODAY + timedelta(days=31))
    adder = HoldAdder(studio, names, month)  # from the last group backwards
    adder.patch(monkeypatch, "unlink_trash")
    loop = Loop(adder.step)
    result = loop.during(lambda: studio.run("trash", "purge", env=month))
    assert result.exit_code == 0, result.output
    assert loop.rounds_during_run > 0
    volume = studio.volumes["studio"]
    kept = adder.check()
    for rel in names:
        assert trashed(volume, rel) == (set(FILES) if rel in kept else set()), rel
    assert studio.cli("audit", "verify").returncode == 0


def test_hold_add_racing_an_erasure_never_loses_a_held_file(tmp_path, monkeypatch):
    studio = make_studio(tmp_path)
    names = [f"2015-{m:02d}-{d:02d} {ANNA}" for m in (1, 2, 3) for d in range(1, 9)]
    for rel in names:
        studio.shoot("studio", rel, FILES, mtime=OLD)
    studio.ok("scan")
    adder = HoldAdder(studio, names, {})
    adder.patch(monkeypatch, "unlink")
    loop = Loop(adder.step)
    result = loop.during(lambda: studio.run("erase", "--customer", ANNA, "--yes"))
    assert result.exit_code in (0, 1), result.output
    assert loop.rounds_during_run > 0
    volume = studio.volumes["studio"]
    kept = adder.check()
    for rel in names:
        on_disk = {n for n in FILES if (volume / rel / n).is_file()}
        if rel in kept:
            assert on_disk == set(FILES), rel
        elif rel in adder.first_unlink:
            assert on_disk == set(), rel
    assert studio.cli("audit", "verify").returncode == 0

