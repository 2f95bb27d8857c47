"""Volume markers and the online/offline decision.

A volume is online only when its path exists and holds `.archivekeeper/volume.json` whose id is
the one the index recorded for that name (the first sight registers it). Anything else is offline,
and offline means: nothing on it is touched, its shoots stay in the index as they were.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

MARKER_DIR = ".archivekeeper"
MARKER = f"{MARKER_DIR}/volume.json"


class VolumeError(Exception):
    pass


@dataclass(frozen=True)
class VolumeStatus:
    name: str
    path: Path
    online: bool
    reason: str = ""  # why offline
    volume_id: str | None = None
    dev: int | None = None
    removable: bool = False


def read_marker(path: Path) -> dict | None:
    """Given a volume path, return its marker's content, or None if it has no readable marker."""
    try:
        fd = os.open(path / MARKER, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as fh:
            data = json.loads(fh.read(65536))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        return None
    return data


def init_volume(path: Path, name: str, now: datetime) -> tuple[dict, bool]:
    """Write the marker at `path`. Return (marker, created). Raise VolumeError when the path is
    missing or already carries a marker of another name."""
    if not path.is_dir():
        raise VolumeError(f"{path}: not a directory (mount the drive first)")
    existing = read_marker(path)
    if existing is not None:
        if existing.get("name") != name:
            raise VolumeError(
                f"{path}: already a volume named {existing.get('name')!r} "
                f"(id {existing['id']}); refusing to rename it to {name!r}"
            )
        return existing, False
    if (path / MARKER).exists() or (path / MARKER).is_symlink():
        raise VolumeError(f"{path / MARKER}: exists but is not a readable marker; fix it by hand")
    marker = {"id": str(uuid.uuid4()), "name": name, "created": now.isoformat()}
    (path / MARKER_DIR).mkdir(exist_ok=True)
    tmp = path / MARKER_DIR / "volume.json.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(marker, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path / MARKER)
    return marker, True


def probe(volumes, recorded_ids: dict[str, str]) -> list[VolumeStatus]:
    """Given configured volumes (objects with name, path, removable) and the ids the index
    recorded per name, return each one's status. Never writes."""
    seen: list[tuple[object, dict | None, int | None, str]] = []
    ids: list[str] = []  # every marker id found, also on paths offline for another reason
    for vol in volumes:
        path = Path(vol.path)
        try:
            st = os.stat(path)
        except OSError as exc:
            seen.append((vol, None, None, f"{path} is not reachable ({exc.strerror})"))
            continue
        marker = read_marker(path)
        if marker is None:
            reason = f"{path} has no volume marker (drive not mounted, or run `volume init`)"
            seen.append((vol, None, st.st_dev, reason))
            continue
        ids.append(marker["id"])
        expected = recorded_ids.get(vol.name)
        if expected is not None and marker["id"] != expected:
            reason = (f"{path} holds another drive (id {marker['id']}, named "
                      f"{marker.get('name')!r}); expected id {expected}")
            seen.append((vol, None, st.st_dev, reason))
            continue
        if marker.get("name") not in (None, vol.name):
            reason = f"{path} holds the volume named {marker.get('name')!r}, not {vol.name!r}"
            seen.append((vol, None, st.st_dev, reason))
            continue
        seen.append((vol, marker, st.st_dev, ""))
    out = []
    for vol, marker, dev, reason in seen:
        if marker is not None and ids.count(marker["id"]) > 1:
            marker, reason = None, f"{vol.path}: two online paths carry the same volume id"
        out.append(VolumeStatus(
            name=vol.name, path=Path(vol.path), online=marker is not None, reason=reason,
            volume_id=marker["id"] if marker else None, dev=dev,
            removable=getattr(vol, "removable", False),
        ))
    return out
