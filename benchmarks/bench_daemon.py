"""Daemon figures (issue 10): idle CPU and RSS over an indexed archive, how soon a new shoot
folder is in `shoots --json`, how soon a drive unplugged is offline and plugged in is online.

    python benchmarks/bench_daemon.py [--files 200000] [--idle 600] [--dir DIR]

Builds the archive (shoots of 100 empty files) on a fixed volume and a removable one, indexes it
with `archivekeeper scan`, then runs `archivekeeper daemon` (debounce 1 s, no schedule firing)
with a notify socket, and reads /proc/PID for its CPU time and memory.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

BIN = Path(sys.executable).parent / "archivekeeper"
CONFIG = """\
state_dir: {root}/state
volumes:
  - {{name: studio, path: {root}/studio}}
  - {{name: backup-1, path: {root}/backup-1, removable: true}}
shoots:
  patterns: ["{{date}} {{customer}}"]
daemon: {{debounce: 1 second}}
schedule: {{scan: "0 3 1 1 *", full_scan: "0 3 1 1 *", apply: "0 3 1 1 *", report: "0 3 1 1 *"}}
"""


def cli(config: Path, *args: str) -> str:
    return subprocess.run([str(BIN), "--config", str(config), *args], check=True,
                          capture_output=True, text=True).stdout


def build(root: Path, files: int) -> Path:
    for name in ("studio", "backup-1"):
        (root / name).mkdir(parents=True)
    config = root / "ak.yaml"
    config.write_text(CONFIG.format(root=root))
    for i in range(max(1, files // 100)):
        folder = root / ("studio" if i % 10 else "backup-1") / f"2020-01-{i % 28 + 1:02d} C{i:06d}"
        folder.mkdir()
        for j in range(100):
            os.close(os.open(folder / f"IMG_{j:03d}.jpg", os.O_WRONLY | os.O_CREAT, 0o644))
    for name in ("studio", "backup-1"):
        cli(config, "volume", "init", str(root / name), "--name", name)
    cli(config, "scan")
    return config


class Watch:
    """The daemon's notify datagrams and stdout events, with the monotonic time of each."""

    def __init__(self, config: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        name = f"ak-bench-{uuid.uuid4().hex}"
        self.sock.bind("\0" + name)
        env = {**os.environ, "NOTIFY_SOCKET": "@" + name}
        self.proc = subprocess.Popen([str(BIN), "--config", str(config), "daemon"],
                                     stdout=subprocess.PIPE, text=True, env=env)
        self.notes: list[tuple[float, str]] = []
        self.events: list[tuple[float, dict]] = []
        threading.Thread(target=self._notes, daemon=True).start()
        threading.Thread(target=self._events, daemon=True).start()

    def _notes(self):
        while True:
            try:
                data = self.sock.recv(65536).decode()
            except OSError:
                return
            self.notes.append((time.monotonic(), data))

    def _events(self):
        for line in self.proc.stdout:
            self.events.append((time.monotonic(), json.loads(line)))

    def until(self, check, timeout: float = 600):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(0.05)
        raise SystemExit("timed out")

    def idle(self) -> bool:
        statuses = [n for _, m in self.notes for n in m.split("\n") if n.startswith("STATUS=")]
        return bool(statuses) and statuses[-1].startswith("STATUS=idle")

    def event(self, name: str, after: float, **fields) -> float | None:
        return next((t for t, e in self.events if t >= after and e["event"] == name
                     and all(e.get(k) == v for k, v in fields.items())), None)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_mb(self, key: str) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
        return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--idle", type=float, default=600)
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ak-bench-daemon-", dir=args.dir))
    started = time.monotonic()
    config = build(root, args.files)
    print(f"archive: {args.files} files built and indexed in {time.monotonic() - started:.1f} s")
    watch = Watch(config)
    try:
        watch.until(watch.idle)
        print(f"daemon idle (start scan and first-start catch-up done) after "
              f"{time.monotonic() - started:.1f} s; RSS {watch.memory_mb('VmRSS'):.1f} MB")
        cpu0, t0 = watch.cpu_seconds(), time.monotonic()
        time.sleep(args.idle)
        cpu = (watch.cpu_seconds() - cpu0) / (time.monotonic() - t0) * 100
        print(f"idle {args.idle:.0f} s: {cpu:.2f} % of one core, RSS "
              f"{watch.memory_mb('VmRSS'):.1f} MB, peak RSS {watch.memory_mb('VmHWM'):.1f} MB")

        made = time.monotonic()
        folder = root / "studio" / "2024-06-01 New Customer"
        folder.mkdir()
        for j in range(3):
            (folder / f"IMG_{j}.jpg").write_bytes(b"x")
        watch.until(lambda: "New Customer" in cli(config, "shoots", "--json",
                                                  "--volume", "studio"))
        print(f"new shoot folder in shoots --json after {time.monotonic() - made:.1f} s "
              "(debounce 1 s)")

        marker, kept = root / "backup-1" / ".archivekeeper", root / "kept-marker"
        pulled = time.monotonic()
        marker.rename(kept)
        gone = watch.until(lambda: watch.event("volume_offline", pulled, volume="backup-1"))
        print(f"drive unplugged (marker removed): offline after {gone - pulled:.1f} s")
        plugged = time.monotonic()
        kept.rename(marker)
        back = watch.until(lambda: watch.event("volume_online", plugged, volume="backup-1"))
        scanned = watch.until(lambda: watch.event("job_finished", plugged, job="scan",
                                                  volume="backup-1"))
        print(f"drive plugged in: online after {back - plugged:.1f} s, scanned after "
              f"{scanned - plugged:.1f} s")
    finally:
        watch.proc.terminate()
        stopping = time.monotonic()
        code = watch.proc.wait(30)
        print(f"SIGTERM: exit {code} after {time.monotonic() - stopping:.1f} s")
        print(f"(archive left in {root})")


if __name__ == "__main__":
    main()
