"""Scan lock benchmark: how long a terminal command waits while a scan writes the index.

    python benchmarks/bench_scan_lock.py [--files 100000] [--tries 20] [--keep DIR]

Generates a tree (make_archive.py; an existing one under --keep is reused), times `find` on it,
then runs `archivekeeper scan` (a first index) as a subprocess and meanwhile, from this process,
`archivekeeper hold add --customer X --kind other --reason test --force` then `hold release`,
`--tries` times back to back. Prints the hold add latencies (worst and median; those that ended
while the scan was still running, and all), the same command's latency with no scan running, and
the scan's time against find's. Target (issue 10): worst < 1 s at 1M files.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_archive import compile_package, make  # noqa: E402

AK = [sys.executable, "-m", "archivekeeper"]


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr[-2000:]}")
    return wall, result.stdout


def hold_cycle(ak: list[str]) -> float:
    """hold add then hold release; return the add's wall time."""
    wall, out = timed([*ak, "hold", "add", "--customer", "X", "--kind", "other",
                       "--reason", "test", "--force"])
    found = re.search(r"hold (\S+) added", out)
    if not found:
        raise SystemExit(f"hold add said {out!r}")
    timed([*ak, "hold", "release", found.group(1)])
    return wall


def summary(label: str, values: list[float]) -> str:
    if not values:
        return f"{label:34} none"
    return (f"{label:34} worst {max(values):6.3f} s   median {statistics.median(values):6.3f} s"
            f"   ({len(values)} tries)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="build the tree here (or reuse it) and keep it")
    args = parser.parse_args()
    compile_package()
    root = args.keep or Path(tempfile.mkdtemp(prefix="ak-bench-lock-"))
    config = root / "archivekeeper.yaml"
    if not config.exists():
        root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        make(root, args.files, 0)
        print(f"tree: {args.files} files, made in {time.perf_counter() - t0:.1f} s at {root}")
    os.sync()
    vol = str(root / "volume")
    find_cmd = ["find", vol, "-printf", "%s %T@ %p\n"]
    timed(find_cmd)  # warm the cache
    t_find = statistics.median(timed(find_cmd)[0] for _ in range(3))
    ak = [*AK, "--config", str(config)]

    shutil.rmtree(root / "state", ignore_errors=True)
    idle = [hold_cycle(ak) for _ in range(5)]  # also creates the index: the scan is a first one
    shutil.rmtree(root / "state", ignore_errors=True)
    timed([*ak, "hold", "list"])  # a fresh, empty index, as before a first scan

    start = time.perf_counter()
    scan = subprocess.Popen([*ak, "scan"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    ended: list[float] = []
    waiter = threading.Thread(target=lambda: (scan.wait(), ended.append(time.perf_counter())))
    waiter.start()
    during, after = [], []
    for _ in range(args.tries):
        wall = hold_cycle(ak)
        (during if not ended else after).append(wall)
    waiter.join()
    out, err = scan.communicate()
    t_scan = ended[0] - start
    if scan.returncode != 0:
        raise SystemExit(f"scan failed ({scan.returncode}): {err[-2000:]}")
    print(out.strip())
    print(f"find -printf:                      {t_find:8.3f} s")
    print(f"scan (first index):                {t_scan:8.3f} s   ratio to find "
          f"{t_scan / t_find:5.2f}x   (ended after {len(during)} of {args.tries} tries)")
    print(summary("hold add, no scan running:", idle))
    print(summary("hold add, ended during the scan:", during))
    print(summary("hold add, all tries:", during + after))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
