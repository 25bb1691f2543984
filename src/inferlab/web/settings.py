"""What one workbench server is: its database, its data folder (uploads, kept by content hash), the address
it binds to, the token every request must carry when that address is not this machine's loopback, and the
size limits of uploads."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Settings:
    db: str | None
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None            # required on every request when set
    max_upload_mb: float = 512.0        # one uploaded file
    max_archive_mb: float = 2048.0      # a dataset archive, unpacked

    @classmethod
    def make(cls, db: str | None, data_dir: Path, host: str = "127.0.0.1", port: int = 8765,
             token: str | None = None, **limits: float) -> Settings:
        """A server's settings: off the loopback a token is required, generated when none is given."""
        if token is None and not is_loopback(host):
            token = secrets.token_urlsafe(24)
        return cls(db, data_dir.expanduser().resolve(), host, port, token, **limits)

    @property
    def local(self) -> bool:
        return is_loopback(self.host)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)
