"""The cluster as the API shows it: its nodes, what each can run, and each one's environment fingerprint
(DLI's node list, read from Ray instead of a hand-kept file)."""

from __future__ import annotations

from inferlab.execute.cluster import Node, connect, nodes


def cluster_status(address: str) -> list[Node]:
    """Every node of the Ray cluster at `address`: alive or not, its backends and devices, its labels, whether it
    takes trials (its `inferlab_trial` resource) and its environment fingerprint."""
    connect(address)
    return nodes()
