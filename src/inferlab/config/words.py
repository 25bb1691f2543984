"""Errors in the words of the command the user typed: a config's field path ("x.yaml: backends[0].name"), or,
for an experiment built from `bench` flags, the flag that set it ("--backend")."""

from __future__ import annotations

import re

from inferlab.models.inputs import Wording

# config field (a regex over its path) -> the bench flag that sets it; \1 is carried over
_FLAGS: tuple[tuple[str, str], ...] = (
    (r"models\[\d+\]\.inputs\.(\w+)\.shape", r"--shape \1"),
    (r"models\[\d+\]\.inputs\.(\w+)\.batch_axis", r"--batch-axis \1"),
    (r"models\[\d+\]\.inputs\.(\w+)(\.\w+)?", r"--input \1"),
    (r"models\[\d+\]\.inputs", "--shape/--input"),
    (r"models\[\d+\]\.framework", "--framework"),
    (r"models\[\d+\](\.path)?", "MODEL"),
    (r"backends\[\d+\]\.params\.(\w+)", r"--param \1"),
    (r"backends\[\d+\]\.params", "--param"),
    (r"backends\[\d+\]\.devices", "--device"),
    (r"backends(\[\d+\](\.name)?)?", "--backend"),
    (r"devices", "--device"),
    (r"batch", "--batch"),
    (r"mode", "--mode"),
    (r"profile", "--profile"),
    (r"scenario", "--scenario"),
    (r"measure\.min_duration_s|measure\.max_duration_s", "--time"),
    (r"measure\.in_flight", "--in-flight"),
    (r"loadgen\.target_qps", "--qps"),
    (r"loadgen\.latency_bound_ms", "--latency-ms"),
    (r"loadgen\.samples_per_query", "--samples-per-query"),
    (r"loadgen\.test_mode", "--test-mode"),
    (r"loadgen\.user_conf", "--user-conf"),
)


def flag_for(path: str) -> str | None:
    """The bench flag for a config field path, or None when no flag sets it."""
    for pattern, flag in _FLAGS:
        m = re.fullmatch(pattern, path)
        if m:
            return m.expand(flag)
    return None


class Where:
    """Names fields for messages: `where("backends[0].name")`."""

    def __init__(self, source: str | None, cli: bool) -> None:
        self.source = source
        self.cli = cli

    def __call__(self, path: str) -> str:
        if self.cli:
            return flag_for(path) or path
        return f"{self.source}: {path}" if self.source else path

    def prefix(self) -> str:
        """What starts a message about the experiment as a whole."""
        return "" if self.cli or not self.source else f"{self.source}: "

    def inputs(self, model_index: int) -> Wording:
        return Wording(None) if self.cli else Wording(self(f"models[{model_index}]"))
