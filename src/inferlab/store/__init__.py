"""The result database: runs, trials, results and environments (SQLite by default, any SQLAlchemy URL)."""

from inferlab.store.repository import RunInfo, Store, data_dir, default_location, resolve_url

__all__ = ["RunInfo", "Store", "data_dir", "default_location", "resolve_url"]
