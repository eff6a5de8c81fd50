"""The raw archive: every report kept byte for byte, addressed by its SHA-256, before parsing.

`QM_DATA_DIR/raw/<sha[:2]>/<sha>.xml` holds the bytes; `raw/pending/<sha>.json` marks a report
waiting to be loaded (with where it came from); a report that failed to load moves its marker to
`raw/failed/<sha>.json` with the error, so the nightly run does not retry it forever, and
archiving the same bytes again re-queues it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class ArchivedReport:
    sha256: str
    path: Path
    original_name: str
    source: str  # "drop-folder", "web-service", "cli"
    received_at: str
    already_archived: bool = False


class Archive:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.xml"

    def _marker(self, state: str, sha256: str) -> Path:
        return self.root / state / f"{sha256}.json"

    def add_file(self, source_path: Path, source: str) -> ArchivedReport:
        """Copy a file into the archive and queue it.

        The kernel copies (a Python loop that hashed and wrote each block took four times as
        long for a 150 MB report), then the copy is hashed: the digest names exactly the
        archived bytes even if the source changes meanwhile."""
        with self._temp() as (tmp, _):
            shutil.copyfile(source_path, tmp)
            with tmp.open("rb") as copy:
                digest = hashlib.file_digest(copy, "sha256")
        return self._commit(tmp, digest.hexdigest(), source_path.name, source)

    def add_bytes(self, payload: bytes, name: str, source: str) -> ArchivedReport:
        with self._temp() as (tmp, out):
            out.write(payload)
        return self._commit(tmp, hashlib.sha256(payload).hexdigest(), name, source)

    def _temp(self):
        self.root.mkdir(parents=True, exist_ok=True)
        return _TempFile(self.root)

    def _commit(self, tmp: Path, sha256: str, name: str, source: str) -> ArchivedReport:
        target = self.path_for(sha256)
        already = target.exists()
        if already:
            tmp.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
            target.chmod(0o444)
        report = ArchivedReport(sha256, target, name, source,
                                datetime.now(UTC).isoformat(timespec="seconds"), already)
        self.queue(report)
        return report

    def queue(self, report: ArchivedReport) -> None:
        marker = self._marker("pending", report.sha256)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({k: str(v) for k, v in asdict(report).items()}))
        self._marker("failed", report.sha256).unlink(missing_ok=True)

    def pending(self) -> list[ArchivedReport]:
        folder = self.root / "pending"
        found = []
        for marker in sorted(folder.glob("*.json")) if folder.exists() else []:
            data = json.loads(marker.read_text())
            found.append(ArchivedReport(
                data["sha256"], Path(data["path"]), data["original_name"], data["source"],
                data["received_at"], data["already_archived"] == "True",
            ))
        return sorted(found, key=lambda r: (r.received_at, r.original_name))

    def done(self, sha256: str) -> None:
        self._marker("pending", sha256).unlink(missing_ok=True)

    def failed(self, sha256: str, error: str) -> None:
        pending = self._marker("pending", sha256)
        data = json.loads(pending.read_text()) if pending.exists() else {"sha256": sha256}
        target = self._marker("failed", sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({**data, "error": error}))
        pending.unlink(missing_ok=True)


class _TempFile:
    """A temporary file beside the archive, so the final rename is atomic."""

    def __init__(self, root: Path) -> None:
        handle, name = tempfile.mkstemp(dir=root, prefix=".incoming-")
        self.path = Path(name)
        self.stream = os.fdopen(handle, "wb")

    def __enter__(self):
        return self.path, self.stream

    def __exit__(self, kind, value, traceback) -> None:
        self.stream.close()
        if kind is not None:
            self.path.unlink(missing_ok=True)
