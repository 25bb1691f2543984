"""`inferlab cluster status`: the nodes of a Ray cluster, what each runs and each one's environment."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from inferlab.cli.app import app, console

cluster_app = typer.Typer(help="A Ray cluster whose nodes run trials (see the README's cluster section).",
                          no_args_is_help=True)
app.add_typer(cluster_app, name="cluster")


@cluster_app.command("status")
def status(cluster: Annotated[str, typer.Option("--cluster", help="the Ray address (HOST:PORT), or 'local'")]
           ) -> None:
    """List the cluster's nodes: address, alive, trial slot, backends with their devices, labels, environment."""
    from inferlab.api.cluster import cluster_status

    t = Table("node", "alive", "trials", "backends (devices)", "labels", "environment", header_style="bold")
    nodes = cluster_status(cluster)
    for n in nodes:
        env = n.environment
        have = ", ".join(f"{b} ({'/'.join(d)})" for b, d in sorted(n.backends.items())) or "—"
        what = (f"{env.get('cpu_model', '?')}, {env.get('cpu_threads', '?')} threads, "
                f"python {env.get('python', '?')} [{(n.fingerprint or '?')[:8]}]") if env else "—"
        t.add_row(f"{n.address} ({n.node_id[:8]})", "yes" if n.alive else "no", str(n.slots), have,
                  ", ".join(f"{k}={v}" for k, v in n.labels.items()) or "—", what)
    console.print(t)
    takers = sum(1 for n in nodes if n.alive and n.slots > 0)
    console.print(f"{len(nodes)} nodes, {takers} take trials (inferlab_trial resource)")
