"""The result database: runs, trials, results and environments (SQLite by default, any SQLAlchemy URL)."""

from inferlab.store.repository import DB_HELP, RunInfo, Store, data_dir, default_location, resolve_url

__all__ = ["DB_HELP", "RunInfo", "Store", "data_dir", "default_location", "resolve_url"]
