"""`volume init`: write a volume's marker, through directory handles and never through a
symlink (fsops.write_marker), refusing a path that already carries another volume's marker."""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime
from pathlib import Path

from archivekeeper.act import fsops
from archivekeeper.index import markers
from archivekeeper.index.volumes import VolumeError


def init_volume(path: Path, name: str, now: datetime) -> tuple[dict, bool]:
    """Write the marker at `path`, never through a symlink. Return (marker, created). Raise
    VolumeError when the path is missing, is a symlink, already carries a marker of another
    name, or one that is unusable."""
    try:
        root_fd = markers.open_root(str(path.absolute()))
    except markers.RootError as exc:
        raise VolumeError(f"{path}: {exc.reason}") from exc
    try:
        try:
            existing = markers.read_marker(root_fd)
        except markers.MarkerError as exc:
            raise VolumeError(f"{path}: {exc}; fix it by hand") from exc
        if existing is not None:
            if existing.get("name") != name:
                raise VolumeError(
                    f"{path}: already a volume named {existing.get('name')!r} "
                    f"(id {existing['id']}); refusing to rename it to {name!r}"
                )
            return existing, False
        marker = {"id": str(uuid.uuid4()), "name": name, "created": now.isoformat()}
        try:
            fsops.write_marker(root_fd, json.dumps(marker, indent=2).encode())
        except markers.MarkerError as exc:
            raise VolumeError(f"{path}: {exc}; nothing was written") from exc
        except OSError as exc:
            raise VolumeError(f"{path}: cannot write the marker: {exc.strerror}") from exc
        return marker, True
    finally:
        os.close(root_fd)
