"""Generate a realistic studio archive: N files in shoots of ~50 files (JPEG/RAW/sidecars),
folders in the SPEC's layouts, optional EXIF-only shoots with real JPEG EXIF dates.

    python benchmarks/make_archive.py ROOT --files 200000 [--exif-shoots 20]

Writes ROOT/volume (a marked volume) and ROOT/archivekeeper.yaml (state in ROOT/state).
"""

from __future__ import annotations

import argparse
import compileall
import os
import random
import sys
from datetime import date, datetime, timedelta
from pathlib import Path


def compile_package() -> None:
    """Write archivekeeper's bytecode, as `pip install` does for a regular install, so that an
    editable install under PYTHONDONTWRITEBYTECODE=1 is not timed recompiling every module on
    every run (10-30 ms per command measured here)."""
    package = Path(__file__).resolve().parents[1] / "archivekeeper"
    if not compileall.compile_dir(str(package), quiet=1):
        raise SystemExit(f"could not compile {package}")
    print(f"bytecode of {package} written (as an installed package has it)")


FIRST = ["Anna", "Matti", "Päivi", "Jyrki", "Eeva", "Ville", "Aino", "Tuula", "Mikko", "Väinö"]
LAST = ["Mäkinen", "Virtanen", "Korhonen", "Nieminen", "Hämäläinen", "Järvinen", "Laine",
        "Heikkinen", "Koskinen", "Räsänen", "Ylönen", "Salo"]
TYPES = ["wedding", "portrait", "passport", "family", "school"]

HEAD = """\
state_dir: {root}/state
volumes:
  - {{name: bench, path: {root}/volume}}
shoots:
  patterns:
    - "{{date}} {{customer}}"
    - "{{date}}_{{customer}}_{{type}}"
    - "{{customer}}/{{date}} {{type}}"
    - "Arkisto/{{customer}}"
"""
SPEC_RULES = """\
rules:
  - {{name: passport-photos, match: {{type: passport}}, delete_after: 6 months}}
  - {{name: raw-files-one-year, match: {{files: "*.{{cr2,cr3,nef,arw,dng,raf,orf}}"}},
     delete_after: 1 year}}
  - {{name: keep-backups-one-year, exclude: {{type: passport}}, keep_for: 1 year}}
  - {{name: unused-five-years, delete_after: 5 years, since: last_used}}
"""
OPEN_LIMITS = """\
safety:
  max_files_per_run: 10000000
  max_bytes_per_run: 100 TB
  max_fraction_per_volume: 1.0
"""
CONFIG = HEAD + SPEC_RULES + OPEN_LIMITS


def make(root: Path, files: int, exif_shoots: int, per_shoot: int = 50, seed: int = 1) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from archivekeeper.demo import jpeg_with_exif

    rng = random.Random(seed)
    vol = root / "volume"
    (vol / ".archivekeeper").mkdir(parents=True, exist_ok=True)
    (vol / ".archivekeeper" / "volume.json").write_text(
        '{"id": "bench-volume-0001", "name": "bench"}')
    today = date.today()
    jpeg_cache: dict[int, bytes] = {}
    made = n = 0
    while made < files:
        day = today - timedelta(days=rng.randint(10, 8 * 365))
        customer = f"{rng.choice(LAST)} {rng.choice(FIRST)} {n}"
        kind = rng.choice(TYPES)
        exif_only = n < exif_shoots
        layout = n % 3
        if exif_only:
            rel = f"Arkisto/{customer}"
        elif layout == 0:
            rel = f"{day.isoformat()} {customer}"
        elif layout == 1:
            rel = f"{day:%Y%m%d}_{customer.replace(' ', '_')}_{kind}"
        else:
            rel = f"{customer}/{day:%d.%m.%Y} {kind}"
        shoot = vol / rel
        (shoot / "RAW").mkdir(parents=True, exist_ok=True)
        (shoot / "JPEG").mkdir(exist_ok=True)
        count = min(per_shoot, files - made)
        stamp = datetime(day.year, day.month, day.day, 12).timestamp()
        for i in range(count):
            if i % 2 == 0:
                path = shoot / "JPEG" / f"IMG_{i:04d}.jpg"
                if exif_only:
                    key = day.toordinal()
                    if key not in jpeg_cache:
                        jpeg_cache[key] = jpeg_with_exif(
                            datetime(day.year, day.month, day.day, 12, 0), key)
                    data = jpeg_cache[key]
                else:
                    data = b"\xff\xd8" + bytes(200)
            elif i % 10 == 9:
                path = shoot / "JPEG" / f"IMG_{i - 1:04d}.xmp"
                data = b"<x/>"
            else:
                path = shoot / "RAW" / f"IMG_{i:04d}.CR2"
                data = b"II*\x00" + bytes(300)
            path.write_bytes(data)
            os.utime(path, (stamp, stamp))
        made += count
        n += 1
    old = datetime.now().timestamp() - 86400
    for dirpath, dirnames, _ in os.walk(vol):
        for d in dirnames:
            os.utime(os.path.join(dirpath, d), (old, old))
    config = root / "archivekeeper.yaml"
    config.write_text(CONFIG.format(root=root), encoding="utf-8")
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--exif-shoots", type=int, default=0)
    args = parser.parse_args()
    args.root.mkdir(parents=True, exist_ok=True)
    config = make(args.root, args.files, args.exif_shoots)
    print(f"made {args.files} files under {args.root / 'volume'}; config {config}")


if __name__ == "__main__":
    main()
