"""The parent/child protocol: the spec goes in on stdin as JSON; JSON lines come back on a dedicated pipe
(never stdout, which runtimes may write to): phase, progress, then exactly one result or error."""

from __future__ import annotations

import base64
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inferlab.records.trial import TrialResult


def encode_result(result: TrialResult) -> dict[str, Any]:
    d = result.to_json(with_samples=False)
    if result.latencies_ns is not None:
        d["latencies_b64"] = base64.b64encode(result.latencies_ns.astype("<i8").tobytes()).decode()
    return d


def decode_result(d: dict[str, Any]) -> TrialResult:
    d = dict(d)
    blob = d.pop("latencies_b64", None)
    result = TrialResult.from_json(d)
    if blob is not None:
        result = result.with_(latencies_ns=np.frombuffer(base64.b64decode(blob), dtype="<i8").copy())
    return result


@dataclass
class Channel:
    """The child's end of the message pipe."""

    fd: int
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, kind: str, **payload: Any) -> None:
        """Thread-safe: drivers may report progress from a helper thread."""
        line = json.dumps({"t": kind, **payload}, separators=(",", ":")) + "\n"
        data = line.encode()
        with self._lock:
            while data:
                n = os.write(self.fd, data)
                data = data[n:]

    # Events protocol of the drivers
    def phase(self, name: str) -> None:
        self.send("phase", name=name)

    def progress(self, elapsed_s: float, planned_s: float, requests: int) -> None:
        self.send("progress", elapsed_s=round(elapsed_s, 3), planned_s=planned_s, requests=requests)
