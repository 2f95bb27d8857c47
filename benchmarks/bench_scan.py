"""Scan benchmark: one generated tree, timed against find (and exiftool for EXIF dates).

    python benchmarks/bench_scan.py --files 200000 [--exif-files 3000] [--keep DIR]

Prints, medians of 3 (warm cache): find's wall time, first-index time, unchanged-rescan time and
their ratios; EXIF dates per second against `exiftool -fast2 -DateTimeOriginal -r` when exiftool
is installed; peak RSS of the scan process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_archive import compile_package, make  # noqa: E402

BIN = Path(sys.executable).parent / "archivekeeper"


def run_measured(cmd: list[str]) -> tuple[float, int]:
    """Run cmd; return (wall seconds, child's peak RSS in MB) via wait4."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {err.decode()[-2000:]}")
    return wall, usage.ru_maxrss // 1024


def median_of(n: int, fn) -> float:
    return statistics.median(fn() for _ in range(n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--exif-files", type=int, default=3000)
    parser.add_argument("--keep", type=Path, help="build the tree here and keep it")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    compile_package()
    root = args.keep or Path(tempfile.mkdtemp(prefix="ak-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    config = make(root, args.files, 0)
    print(f"tree: {args.files} files, made in {time.perf_counter() - t0:.1f} s at {root}")
    os.sync()  # a real archive is not a minute old: its writeback is not timed with the scan
    vol = str(root / "volume")
    find_cmd = ["find", vol, "-printf", "%s %T@ %p\n"]
    run_measured(find_cmd)  # warm the cache
    t_find = median_of(args.runs, lambda: run_measured(find_cmd)[0])
    ak = [str(BIN), "--config", str(config)]

    firsts, rss_first = [], 0
    for _ in range(args.runs):
        shutil.rmtree(root / "state", ignore_errors=True)
        wall, rss = run_measured([*ak, "scan"])
        firsts.append(wall)
        rss_first = max(rss_first, rss)
    t_first = statistics.median(firsts)
    rescans = [run_measured([*ak, "scan"]) for _ in range(args.runs)]
    t_rescan = statistics.median(r[0] for r in rescans)
    t_full = median_of(args.runs, lambda: run_measured([*ak, "scan", "--full"])[0])
    print(f"find -printf:        {t_find:8.3f} s")
    print(f"first index:         {t_first:8.3f} s   ratio to find {t_first / t_find:5.2f}x"
          f"   (target <= 3x)   peak RSS {rss_first} MB")
    print(f"unchanged rescan:    {t_rescan:8.3f} s   ratio to find {t_rescan / t_find:5.2f}x"
          f"   (target <= 1x)")
    print(f"full rescan:         {t_full:8.3f} s   ratio to find {t_full / t_find:5.2f}x")

    if args.exif_files:
        exif_root = root / "exif"
        make(exif_root, args.exif_files, exif_shoots=10**9, per_shoot=2 * 50)
        jpegs = [str(p) for p in (exif_root / "volume").rglob("*.jpg")]
        sys.path.insert(0, str(HERE.parent))
        from archivekeeper.index.exif import ExifReader

        def ours() -> float:
            start = time.perf_counter()
            with ExifReader(workers=min(2, os.cpu_count() or 1)) as reader:
                dates = reader.read_dates(os.fsencode(p) for p in jpegs)
            assert sum(d is not None for d in dates.values()) == len(jpegs)
            return time.perf_counter() - start

        t_ours = median_of(args.runs, ours)
        print(f"EXIF dates (ours):   {len(jpegs) / t_ours:8.0f} files/s on {len(jpegs)} JPEGs")
        if shutil.which("exiftool"):
            cmd = ["exiftool", "-fast2", "-DateTimeOriginal", "-r", "-ext", "jpg",
                   str(exif_root / "volume")]
            t_tool = median_of(args.runs, lambda: run_measured(cmd)[0])
            print(f"EXIF dates exiftool: {len(jpegs) / t_tool:8.0f} files/s   ratio ours/exiftool "
                  f"{t_tool / t_ours:5.2f}x   (target >= 15x)")
        else:
            print("exiftool not installed: no EXIF comparison")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
