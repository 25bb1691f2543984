"""The result database: runs, trials, results and environments (SQLite by default, any SQLAlchemy URL)."""

from inferlab.store.repository import RunInfo, Store, resolve_url

__all__ = ["RunInfo", "Store", "resolve_url"]
