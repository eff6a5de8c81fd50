"""Where reports come from, all ending in the archive: explicit paths, the drop folder, and
IB's Flex Web Service (pulled in windows of at most 365 days)."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from qm_pipeline.lib.flex.archive import Archive, ArchivedReport
from qm_pipeline.lib.flex.webservice import FlexWebServiceClient


def report_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files named, and the *.xml files under folders named, in a stable order."""
    found: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            found += sorted(p for p in entry.rglob("*.xml") if p.is_file())
        elif entry.is_file():
            found.append(entry)
        else:
            raise FileNotFoundError(f"{entry}: no such file or folder")
    return found


def archive_paths(archive: Archive, paths: Iterable[str | Path]) -> list[ArchivedReport]:
    return [archive.add_file(path, "cli") for path in report_files(paths)]


def archive_drop_folder(archive: Archive, inbox: Path) -> list[ArchivedReport]:
    """Archive reports saved by hand in the drop folder, then move them to `processed/`."""
    if not inbox.exists():
        return []
    archived = []
    done = inbox / "processed"
    for path in sorted(p for p in inbox.glob("*.xml") if p.is_file()):
        archived.append(archive.add_file(path, "drop-folder"))
        done.mkdir(exist_ok=True)
        shutil.move(path, done / path.name)
    return archived


def archive_web_service(archive: Archive, client: FlexWebServiceClient, query_id: str,
                        start: date, end: date) -> list[ArchivedReport]:
    archived = []
    for window_start, window_end, payload in client.fetch_windows(query_id, start, end):
        name = f"flex_{query_id}_{window_start:%Y%m%d}_{window_end:%Y%m%d}.xml"
        archived.append(archive.add_bytes(payload, name, "web-service"))
    return archived
