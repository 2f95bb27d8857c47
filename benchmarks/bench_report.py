"""report over the plan benchmark's index (generated straight into SQLite).

    python benchmarks/bench_report.py [--shoots 20000] [--files-per-shoot 50]

Prints the wall time and peak RSS of `archivekeeper report --out DIR` (first run: announces
every listed item; second run: announcements already stored) against the target <= 20 s,
<= 500 MB, and the size of the HTML with how many upcoming shoots it covers (target: under
2 MB for a week of 2,000 upcoming shoots).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_plan import BIN, build, measured  # noqa: E402
from make_archive import compile_package  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shoots", type=int, default=20_000)
    parser.add_argument("--files-per-shoot", type=int, default=50)
    args = parser.parse_args()
    compile_package()
    root = Path(tempfile.mkdtemp(prefix="ak-report-"))
    try:
        t0 = time.perf_counter()
        config = build(root, args.shoots, args.files_per_shoot)
        print(f"index: {args.shoots} shoots, {args.shoots * args.files_per_shoot} files, "
              f"built in {time.perf_counter() - t0:.1f} s")
        out = root / "reports"
        cmd = [str(BIN), "--config", str(config), "report", "--out", str(out)]
        for label in ("first report (announces)", "second report"):
            wall, rss = measured(cmd)
            print(f"{label:26s} {wall:6.2f} s  peak RSS {rss} MB   (target <= 20 s, <= 500 MB)")
        (html,) = out.glob("*.html")
        (doc,) = out.glob("*.json")
        upcoming = json.loads(doc.read_text(encoding="utf-8"))["upcoming"]
        print(f"HTML {html.stat().st_size / 1e6:.2f} MB for {upcoming['shoots']} upcoming shoots "
              f"({upcoming['items']} items; at most 2,500 listed)   (target < 2 MB for 2,000)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
