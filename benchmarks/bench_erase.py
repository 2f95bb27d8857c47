"""erase (art. 17) of one customer on a big index: the preview, and the erasure of their files
including the WAL checkpoint, against `find` over the same tree.

    python benchmarks/bench_erase.py [--files 200000] [--root DIR] [--shoots 10 --per-shoot 50]

Builds a tree with make_archive (or reuses DIR made by it, e.g. a 1,000,000-file one kept
between runs), adds one customer with shoots x per-shoot files, scans, then times
`archivekeeper erase --customer NAME` (preview) and `erase --yes` as whole commands.
Targets (issue 12, 1,000,000 files): preview <= 2 s, erasure of 500 files <= 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_archive import compile_package, make  # noqa: E402

BIN = Path(sys.executable).parent / "archivekeeper"
CUSTOMER = "Erasure Target"
OLD = time.time() - 3 * 365 * 86400


def add_customer(volume: Path, shoots: int, per_shoot: int) -> int:
    made = 0
    for n in range(shoots):
        shoot = volume / f"2019-01-{n + 1:02d} {CUSTOMER}"
        for i in range(per_shoot):
            path = shoot / ("RAW" if i % 2 else "JPEG") / f"IMG_{i:04d}.{'CR2' if i % 2 else 'jpg'}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x" * 1000)
            os.utime(path, (OLD, OLD))
            made += 1
        for folder in [*shoot.rglob("*"), shoot]:
            if folder.is_dir():
                os.utime(folder, (OLD, OLD))
    return made


def timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {out.returncode}\n{out.stderr}")
    return wall, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--root", type=Path, help="an archive made by make_archive, reused")
    parser.add_argument("--shoots", type=int, default=10)
    parser.add_argument("--per-shoot", type=int, default=50)
    args = parser.parse_args()
    compile_package()
    root = args.root or Path(tempfile.mkdtemp(prefix="ak-erase-"))
    try:
        config = root / "archivekeeper.yaml"
        if args.root is None:
            config = make(root, args.files, 0)
        ak = [str(BIN), "--config", str(config)]
        made = add_customer(root / "volume", args.shoots, args.per_shoot)
        subprocess.run([*ak, "scan"], check=True, capture_output=True)
        volumes = json.loads(subprocess.run([*ak, "volume", "list", "--json"], check=True,
                                            capture_output=True).stdout)["volumes"]
        find, _ = timed(["find", str(root / "volume"), "-type", "f"])
        preview, out = timed([*ak, "erase", "--customer", CUSTOMER, "--json"])
        listed = sum(v["files"] for v in json.loads(out.stdout)["volumes"].values())
        erase, out = timed([*ak, "erase", "--customer", CUSTOMER, "--yes"])
        wal = Path(f"{root}/state/index.sqlite-wal")
        print(f"index: {sum(v['shoots'] for v in volumes)} shoots; customer: {made} files "
              f"in {args.shoots} shoots (preview lists {listed})")
        print(out.stdout.strip())
        print(f"preview: {preview:.2f} s (target <= 2 s); erase --yes: {erase:.2f} s "
              f"(target <= 5 s); find -type f over the volume: {find:.2f} s "
              f"(preview {preview / find:.2f}x, erase {erase / find:.2f}x find)")
        print(f"WAL after the erasure: {wal.stat().st_size if wal.exists() else 0} bytes")
    finally:
        if args.root is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
