"""MLPerf-style results: one row per scenario result, with the system it ran on (from the stored environment
fingerprint), LoadGen's headline and verdict, and the speedup over a reference system's result."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.table import Table

from inferlab.records.trial import TrialResult
from inferlab.report import numbers

COLUMNS = ["system", "processor", "accelerator", "accelerators", "software", "model", "scenario", "backend",
           "device", "batch", "metric", "result", "unit", "verdict", "speedup", "reference"]


def _accelerator(device: str, env: dict[str, Any]) -> tuple[str, int]:
    if device.startswith("cuda"):
        gpus = env.get("gpus") or []
        names = sorted({g.get("name", "GPU") for g in gpus})
        return (", ".join(names) or "CUDA GPU"), 1  # a trial runs on one device
    if device == "cpu":
        return "none", 0
    return device, 1


def system_of(env: dict[str, Any] | None, result: TrialResult) -> dict[str, Any]:
    """MLPerf's system description fields, from an environment fingerprint."""
    env = env or {}
    accelerator, count = _accelerator(result.spec.device, env)
    cores = env.get("cpu_cores")
    version = (env.get("backends") or {}).get(result.spec.backend)
    return {
        "system": env.get("hostname") or "unknown",
        "processor": f"{env.get('cpu_model') or 'unknown CPU'}" + (f" ({cores} cores)" if cores else ""),
        "accelerator": accelerator,
        "accelerators": count,
        "software": f"{result.spec.backend} {version or ''}".strip() + f", Python {env.get('python', '?')}",
    }


def _key(r: TrialResult) -> tuple[str, str, str]:
    assert r.loadgen is not None
    return r.spec.model.name, r.spec.mode, r.loadgen.test_mode


def _references(reference: Sequence[TrialResult]) -> dict[tuple[str, str, str], TrialResult]:
    """Per (model, scenario, test mode), the reference system's best VALID result."""
    best: dict[tuple[str, str, str], TrialResult] = {}
    for r in reference:
        lg = r.loadgen
        if lg is None or not lg.valid or lg.value is None:
            continue
        old = best.get(_key(r))
        old_lg = old.loadgen if old is not None else None
        if old_lg is None or old_lg.value is None or (
                lg.value > old_lg.value if lg.higher_is_better else lg.value < old_lg.value):
            best[_key(r)] = r
    return best


def speedup(result: TrialResult, ref: TrialResult | None) -> float | None:
    """How many times better than the reference: a rate over the reference's, or the reference's latency
    over this one's. Only VALID results are compared, as MLPerf does."""
    lg, rl = result.loadgen, ref.loadgen if ref is not None else None
    if lg is None or rl is None or not lg.valid or not rl.valid or not lg.value or not rl.value:
        return None
    return lg.value / rl.value if lg.higher_is_better else rl.value / lg.value


def mlperf_rows(results: Sequence[TrialResult], environment: Callable[[str], dict[str, Any] | None],
                reference: Sequence[TrialResult] = (), reference_name: str | None = None) -> list[dict[str, Any]]:
    refs = _references(reference)
    rows = []
    for r in results:
        lg = r.loadgen
        if lg is None:
            continue
        env = environment(r.environment_id) if r.environment_id else None
        ref = refs.get(_key(r))
        verdict = lg.validity or (f"{lg.test_mode}" if r.status == "ok" else r.status)
        rows.append({**system_of(env, r), "model": r.spec.model.name, "scenario": r.spec.mode,
                     "backend": r.spec.backend, "device": r.spec.device, "batch": r.spec.batch,
                     "metric": lg.metric, "result": lg.value, "unit": lg.unit, "verdict": verdict,
                     "speedup": speedup(r, ref),
                     "reference": (f"{reference_name}: {ref.spec.backend}/{ref.spec.device} b{ref.spec.batch}"
                                   if ref is not None else None)})
    return rows


def mlperf_table(rows: Sequence[dict[str, Any]], title: str | None = None) -> Table:
    t = Table(title=title, header_style="bold")
    for col in ("system", "accelerator", "software", "model", "scenario", "batch", "result", "verdict",
                "speedup"):
        t.add_column(col, justify="right" if col in ("batch", "result", "speedup") else "left")
    for row in rows:
        value = row["result"]
        result = "—" if value is None else (f"{numbers.ms(value)} ms" if row["unit"] == "ms"
                                             else f"{value:,.1f} {row['unit']}")
        verdict = {"VALID": "[green]VALID[/]", "INVALID": "[yellow]INVALID[/]"}.get(row["verdict"], row["verdict"])
        accel = row["accelerator"] if not row["accelerators"] else f"{row['accelerators']}× {row['accelerator']}"
        t.add_row(f"{row['system']}\n[dim]{row['processor']}[/]", accel, row["software"], row["model"],
                  f"{row['scenario']}\n[dim]{row['metric']}[/]", str(row["batch"]), result, verdict,
                  "—" if row["speedup"] is None else f"{row['speedup']:.2f}×")
    if any(row["reference"] for row in rows):
        refs = sorted({row["reference"] for row in rows if row["reference"]})
        t.caption = "speedup over " + "; ".join(refs)
    return t
