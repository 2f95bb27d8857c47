"""apply throughput: a plan of N due files (default 20,000), every safety check on.

    python benchmarks/bench_apply.py [--files 20000]

Builds a tree with make_archive, makes every file due (notice 0 days, delete after 1 day),
scans, then times `archivekeeper apply` (moving to trash, intent rows, audit per shoot).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_archive import HEAD, OPEN_LIMITS, compile_package, make  # noqa: E402

BIN = Path(sys.executable).parent / "archivekeeper"
# every file due at once: notice 0, delete after 1 day, limits open
RULES = HEAD + """\
rules:
  - {{name: everything, delete_after: 1 day}}
""" + OPEN_LIMITS + "  notice_period: 0 days\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=20_000)
    args = parser.parse_args()
    compile_package()
    root = Path(tempfile.mkdtemp(prefix="ak-apply-"))
    try:
        config = make(root, args.files, 0)
        config.write_text(RULES.format(root=root))
        ak = [str(BIN), "--config", str(config)]
        subprocess.run([*ak, "scan"], check=True, capture_output=True)
        subprocess.run([*ak, "plan", "--json"], check=True, capture_output=True)
        start = time.perf_counter()
        out = subprocess.run([*ak, "apply"], check=True, capture_output=True, text=True)
        wall = time.perf_counter() - start
        print(out.stdout.strip())
        print(f"apply: {args.files} files in {wall:.2f} s = {args.files / wall:.0f} files/s "
              "(target >= 2000 files/s), whole command including start-up and planning")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
