"""Volume markers and the online/offline decision.

A volume is online only when its path exists and holds `.archivekeeper/volume.json` whose id is
the one the index recorded for that name (the first sight registers it). Anything else is offline,
and offline means: nothing on it is touched, its shoots stay in the index as they were.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from archivekeeper.index import markers

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


def read_marker(path: Path) -> tuple[dict | None, int]:
    """Given a volume's path, return (its marker or None if it has none, st_dev of its
    root). Raise VolumeError if the root cannot be opened or its marker is unusable (a symlink,
    a FIFO, not a small JSON file with an id): the reason says which."""
    try:
        root_fd = markers.open_root(str(path))
    except markers.RootError as exc:
        raise VolumeError(f"{path}: {exc.reason}") from exc
    try:
        return markers.read_marker(root_fd), os.fstat(root_fd).st_dev
    except markers.MarkerError as exc:
        raise VolumeError(f"{path}: {exc}") from exc
    except OSError as exc:
        raise VolumeError(f"{path}: {exc.strerror}") from exc
    finally:
        os.close(root_fd)


def probe(volumes, recorded_ids: dict[str, str]) -> list[VolumeStatus]:
    """Given configured volumes (objects with name, path, removable) and the ids the index
    recorded per name, return each one's status. Never writes."""
    seen: list[tuple[object, dict | None, int | None, str]] = []
    ids: list[str] = []  # every marker id found, also on paths offline for another reason
    for vol in volumes:
        path = Path(vol.path)
        try:
            marker, dev = read_marker(path)
        except VolumeError as exc:
            seen.append((vol, None, None, str(exc)))
            continue
        if marker is None:
            reason = f"{path} has no volume marker (drive not mounted, or run `volume init`)"
            seen.append((vol, None, dev, reason))
            continue
        ids.append(marker["id"])
        expected = recorded_ids.get(vol.name)
        if expected is not None and marker["id"] != expected:
            reason = (f"{path} holds another drive (id {marker['id']}, named "
                      f"{marker.get('name')!r}); expected id {expected}")
            seen.append((vol, None, dev, reason))
            continue
        if marker.get("name") not in (None, vol.name):
            reason = f"{path} holds the volume named {marker.get('name')!r}, not {vol.name!r}"
            seen.append((vol, None, dev, reason))
            continue
        seen.append((vol, marker, dev, ""))
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
