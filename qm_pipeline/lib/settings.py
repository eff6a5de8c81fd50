"""Where things live and which warehouse to use, from the environment.

One SQLAlchemy URL selects the warehouse (`QM_DATABASE_URL`); the default is a DuckDB file under
`QM_DATA_DIR` (default `./qm_data`). Everything the pipeline writes to disk lives under that
folder: the raw archive, the drop folder, the published analyst copy and reports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    date_order: str = "auto"  # auto | MDY | DMY: MDY/DMY force the d/M order of slashed dates
    date_order_fallback: str = "MDY"  # used, and reported, when a file cannot tell

    @property
    def archive_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def inbox_dir(self) -> Path:
        return self.data_dir / "inbox"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def published_path(self) -> Path:
        return self.data_dir / "published" / "warehouse.duckdb"


def default_database_url(data_dir: Path) -> str:
    return f"duckdb:///{(data_dir / 'warehouse.duckdb').resolve()}"


def load_settings(
    data_dir: str | os.PathLike[str] | None = None, database_url: str | None = None
) -> Settings:
    root = Path(data_dir or os.environ.get("QM_DATA_DIR") or "qm_data")
    return Settings(
        data_dir=root,
        database_url=database_url or os.environ.get("QM_DATABASE_URL")
        or default_database_url(root),
        date_order=os.environ.get("QM_DATE_ORDER", "auto"),
        date_order_fallback=os.environ.get("QM_DATE_ORDER_FALLBACK", "MDY"),
    )
