"""Fixtures for tests against a real multi-node Ray cluster: a head plus worker nodes in network namespaces."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.cluster.netns import Cluster, cleanup_stale, environment_problem, start_cluster

WORKER_LABELS = [{"inferlab-node": "w1"}, {"inferlab-node": "w2"}]


def _sigterm_as_interrupt() -> Callable[[], None]:
    """While the cluster lives, SIGTERM (a CI or `timeout` stopping pytest) interrupts like Ctrl-C, so the
    fixture's teardown runs. Not while this process is a Ray driver: `ray.init` installs its own SIGTERM handlers,
    and Ray's C++ one ends the process a moment later. Then, as after a SIGKILL, `cleanup_stale()` of the next
    session removes what is left."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        return lambda: None

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    return lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A head (no `inferlab_trial` resource) and workers w1, w2 (`inferlab_trial: 1`, label inferlab-node=wN).

    Tests may add nodes (`add_node`) and kill the ones they added; they must leave w1 and w2 running.
    """
    problem = environment_problem()
    if problem is not None:
        pytest.skip(f"no Ray cluster in network namespaces here: {problem}")
    cleanup_stale()  # what a crashed session left (its creator's PID is gone)
    restore = _sigterm_as_interrupt()
    try:
        # Short: Ray's AF_UNIX socket paths under each node's temp dir must stay within 107 bytes.
        cluster = start_cluster(tmp_path_factory.mktemp("ray"), workers=2, worker_labels=WORKER_LABELS)
        try:
            yield cluster
        finally:
            cluster.shutdown()  # also registered with atexit, should this finalizer never run
    finally:
        restore()
    left = cluster.leftovers()
    assert not left, f"cluster teardown left {left}"


@pytest.fixture(scope="module")
def ray_driver(ray_cluster: Cluster) -> Iterator[Any]:
    """This test process connected to `ray_cluster` as a driver (token auth), per module; yields the `ray` module."""
    with ray_cluster.connect() as ray:
        yield ray
