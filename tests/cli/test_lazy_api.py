"""The API's names resolve from their modules on first use, so a command imports only what it calls."""

from __future__ import annotations

import subprocess
import sys


def test_every_api_name_resolves_and_bench_does_not_import_the_tuner_or_the_report() -> None:
    code = ("import sys, inferlab.api as api\n"
            "assert set(api.__all__) == set(api._MODULE)\n"
            "api.benchmark, api.Run\n"
            "print(sorted(m for m in ('optuna', 'plotly', 'jinja2', 'scipy') if m in sys.modules))\n"
            "[getattr(api, n) for n in api.__all__]\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
