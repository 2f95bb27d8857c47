"""plan over a large index, generated straight into SQLite (scanning 1M files takes long).

    python benchmarks/bench_plan.py [--shoots 20000] [--files-per-shoot 50]

Prints the wall time and peak RSS of `archivekeeper plan --json` (first run: announces every
listed item; second run: announcements already stored) against the target <= 15 s, <= 500 MB.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_archive import HEAD, SPEC_RULES, compile_package  # noqa: E402

from archivekeeper.index.filelist import pack_files  # noqa: E402
from archivekeeper.index.store import Store  # noqa: E402

BIN = Path(sys.executable).parent / "archivekeeper"
CONFIG = HEAD.replace("name: bench", "name: studio") + SPEC_RULES + """\
holds:
  - {{customer: "Virtanen Matti 7", kind: invoice, reason: "open invoice", until: 2030-01-31}}
"""


def build(root: Path, shoots: int, per_shoot: int) -> Path:
    (root / "volume" / ".archivekeeper").mkdir(parents=True)
    (root / "volume" / ".archivekeeper" / "volume.json").write_text(
        '{"id": "bench-plan", "name": "studio"}')
    store = Store(root / "state")
    rng = random.Random(3)
    today = date.today()
    db = store.db
    with store.transaction():
        store.register_volume("studio", "bench-plan", str(root / "volume"))
        for n in range(shoots):
            day = today - timedelta(days=rng.randint(10, 8 * 365))
            kind = rng.choice(["wedding", "portrait", "passport", "family"])
            customer = f"Virtanen Matti {n % 997}"
            rel = f"{day.isoformat()} {customer} {n}".encode()
            mtime_ns = int(time.mktime(day.timetuple())) * 10**9
            cur = db.execute(
                "INSERT INTO shoots (volume, path, customer, customer_key, date, date_source, "
                "type, files, bytes, newest_mtime_ns, first_seen) VALUES "
                "('studio', ?, ?, ?, ?, 'folder', ?, ?, ?, ?, ?)",
                (rel, customer, customer.lower(), day.isoformat(), kind, per_shoot,
                 per_shoot * 300, mtime_ns, today.isoformat()))
            sid = cur.lastrowid
            store.replace_files(sid, "studio", pack_files([
                (rel + (b"/RAW/IMG_%04d.CR2" % i if i % 2 else b"/JPEG/IMG_%04d.jpg" % i), 300,
                 mtime_ns, sid * 1000 + i, "raw" if i % 2 else "image")
                for i in range(per_shoot)]), [])
    store.close()
    config = root / "archivekeeper.yaml"
    config.write_text(CONFIG.format(root=root))
    return config


def measured(cmd: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd} failed: {err.decode()[-2000:]}")
    return time.perf_counter() - start, usage.ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shoots", type=int, default=20_000)
    parser.add_argument("--files-per-shoot", type=int, default=50)
    args = parser.parse_args()
    compile_package()
    root = Path(tempfile.mkdtemp(prefix="ak-plan-"))
    try:
        t0 = time.perf_counter()
        config = build(root, args.shoots, args.files_per_shoot)
        total = args.shoots * args.files_per_shoot
        print(f"index: {args.shoots} shoots, {total} files, built in "
              f"{time.perf_counter() - t0:.1f} s")
        cmd = [str(BIN), "--config", str(config), "plan", "--json"]
        for label in ("first plan (announces)", "second plan"):
            wall, rss = measured(cmd)
            print(f"{label:24s} {wall:6.2f} s  peak RSS {rss} MB   (target <= 15 s, <= 500 MB)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
