"""The netns Ray cluster itself: token auth, placement on worker nodes, the trial resource, node death, teardown."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.cluster.netns import TRIAL_RESOURCE, Cluster, environment_problem, start_cluster

ray = pytest.importorskip("ray", reason="ray is not installed (inferlab[cluster])")
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # noqa: E402

pytestmark = pytest.mark.slow

TRIAL = {TRIAL_RESOURCE: 1}


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _pinned(node_id: str | None) -> NodeAffinitySchedulingStrategy:
    assert node_id is not None
    return NodeAffinitySchedulingStrategy(node_id, soft=False)


@ray.remote
def _where_am_i(head_ip: str) -> dict[str, Any]:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((head_ip, 9))  # no packet is sent; the kernel picks the source address of this namespace
        route_ip = s.getsockname()[0]
    return {"ray_ip": ray.util.get_node_ip_address(), "route_ip": route_ip,
            "netns_inode": os.stat("/proc/self/ns/net").st_ino,
            "node_id": ray.get_runtime_context().get_node_id()}


@ray.remote
def _interval(sleep_s: float) -> tuple[float, float]:
    start = time.time()  # one kernel clock for every namespace
    time.sleep(sleep_s)
    return start, time.time()


@ray.remote
def _meet(folder: str, others: int) -> bool:
    """Say it started (a file in `folder`), then wait up to 60 s for `others` more to start: True when they
    did, so two of these both returning True ran at the same time however slowly their workers started."""
    Path(folder, str(os.getpid())).touch()
    deadline = time.monotonic() + 60
    while len(list(Path(folder).iterdir())) < others + 1:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@ray.remote
def _hold(flag: str) -> None:
    Path(flag).touch()  # the namespaces share the file system
    time.sleep(600)


def test_driver_connects_with_token(ray_cluster: Cluster, ray_driver: Any) -> None:
    assert ray_driver.is_initialized()
    assert ray_driver.get_runtime_context().gcs_address == ray_cluster.address
    assert ray_cluster.driver_env == {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": ray_cluster.token}
    # The head runs no trials: only the live workers carry the trial resource (w1 and w2, unless a test added one).
    live_slots = sum(n.resources.get(TRIAL_RESOURCE, 0) for n in ray_cluster.workers if n.alive)
    assert live_slots >= 2
    assert ray_driver.cluster_resources()[TRIAL_RESOURCE] == live_slots


def test_three_alive_nodes_with_distinct_ips_and_labels(ray_cluster: Cluster, ray_driver: Any) -> None:
    alive = {n["NodeManagerAddress"]: n for n in ray_driver.nodes() if n["Alive"]}
    assert sorted(alive) == sorted(n.ip for n in ray_cluster.nodes if n.alive)
    head = ray_cluster.head
    assert len({head.ip, ray_cluster.node("w1").ip, ray_cluster.node("w2").ip}) == 3
    assert alive[head.ip]["NodeID"] == head.node_id
    assert TRIAL_RESOURCE not in alive[head.ip]["Resources"]
    for name in ("w1", "w2"):
        node = ray_cluster.node(name)
        assert alive[node.ip]["NodeID"] == node.node_id
        assert alive[node.ip]["Resources"][TRIAL_RESOURCE] == 1
        assert alive[node.ip]["Labels"]["inferlab-node"] == name


def test_pinned_task_runs_inside_the_workers_namespace(ray_cluster: Cluster, ray_driver: Any) -> None:
    for name in ("w1", "w2"):
        node = ray_cluster.node(name)
        got = ray_driver.get(_where_am_i.options(resources=TRIAL, num_cpus=0, scheduling_strategy=_pinned(
            node.node_id)).remote(ray_cluster.head_ip), timeout=60)
        assert got["node_id"] == node.node_id
        assert got["ray_ip"] == got["route_ip"] == node.ip
        assert got["netns_inode"] == os.stat(f"/run/netns/{node.namespace}").st_ino


def test_label_selector_places_task_on_the_labelled_node(ray_cluster: Cluster, ray_driver: Any) -> None:
    got = ray_driver.get(_where_am_i.options(resources=TRIAL, num_cpus=0, label_selector={"inferlab-node": "w2"})
                         .remote(ray_cluster.head_ip), timeout=60)
    assert got["ray_ip"] == ray_cluster.node("w2").ip


def test_trial_resource_serialises_tasks_on_a_node(ray_cluster: Cluster, ray_driver: Any, tmp_path: Path) -> None:
    w1, w2 = ray_cluster.node("w1"), ray_cluster.node("w2")
    # num_cpus=0 so that the trial resource alone decides; the control on w2 asks for nothing and does overlap
    # (each waits for the other to start: a worker that starts slowly on a busy machine still meets the other).
    serial = [_interval.options(resources=TRIAL, num_cpus=0, scheduling_strategy=_pinned(w1.node_id)).remote(0.7)
              for _ in range(3)]
    control = [_meet.options(num_cpus=0, scheduling_strategy=_pinned(w2.node_id)).remote(str(tmp_path), 1)
               for _ in range(2)]
    spans = sorted(ray_driver.get(serial, timeout=60))
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, f"trial tasks overlapped on one node: {spans}"
    assert ray_driver.get(control, timeout=90) == [True, True], "control tasks without the resource did not overlap"


def test_killed_node_is_marked_dead_and_its_tasks_fail(
    ray_cluster: Cluster, ray_driver: Any, tmp_path: Path, record_property: Any
) -> None:
    # Two trial slots so that one task without retries and one with Ray's default retries run there at once.
    victim = ray_cluster.add_node("victim", resources={TRIAL_RESOURCE: 2}, labels={"inferlab-node": "victim"})
    flags = {k: tmp_path / k for k in ("no_retry", "retried")}
    opts = {"resources": TRIAL, "num_cpus": 0, "scheduling_strategy": _pinned(victim.node_id)}
    refs = {"no_retry": _hold.options(max_retries=0, **opts).remote(str(flags["no_retry"])),
            "retried": _hold.options(**opts).remote(str(flags["retried"]))}  # default max_retries=3
    deadline = time.monotonic() + 60
    while not all(f.exists() for f in flags.values()):
        assert time.monotonic() < deadline, "tasks never started on the new node"
        time.sleep(0.1)

    killed_at = time.monotonic()
    pids = ray_cluster.kill_node("victim")
    kill_s = time.monotonic() - killed_at
    assert len(pids) >= 3, pids  # `ray start`, raylet, the two task workers, agents
    assert [p for p in pids if _running(p)] == []
    in_netns = subprocess.run(["ip", "netns", "pids", victim.namespace], capture_output=True, text=True,
                              check=True).stdout.split()
    assert [p for p in in_netns if _running(int(p))] == []

    failed: dict[str, tuple[float, BaseException]] = {}
    dead_after = None
    while time.monotonic() < killed_at + 60 and (dead_after is None or len(failed) < len(refs)):
        if dead_after is None and any(n["NodeID"] == victim.node_id and not n["Alive"] for n in ray_driver.nodes()):
            dead_after = time.monotonic() - killed_at
        for key, ref in refs.items():
            if key not in failed and ray_driver.wait([ref], timeout=0)[0]:
                with pytest.raises(ray.exceptions.RayError) as info:
                    ray_driver.get(ref)
                failed[key] = (time.monotonic() - killed_at, info.value)
        time.sleep(0.05)
    timings = {"kill_s": round(kill_s, 2), "dead_after_s": dead_after,
               **{k: (round(t, 2), type(e).__name__) for k, (t, e) in failed.items()}}
    print(f"node death: {timings}")
    record_property("node_death", json.dumps(timings))

    # Ray's defaults: the GCS health-checks raylets every 3 s and gives up after 5 misses.
    assert dead_after is not None and dead_after < 30, timings
    assert set(failed) == set(refs), timings
    # A running task without retries fails as soon as its owner sees the node go, before the GCS marks it dead;
    # with retries, the retry stays pinned to the dead node and fails once the GCS has marked it dead.
    assert isinstance(failed["no_retry"][1], ray.exceptions.NodeDiedError), timings
    assert isinstance(failed["retried"][1], ray.exceptions.TaskUnschedulableError), timings

    w1 = ray_cluster.node("w1")
    got = ray_driver.get(_where_am_i.options(resources=TRIAL, num_cpus=0, scheduling_strategy=_pinned(
        w1.node_id)).remote(ray_cluster.head_ip), timeout=60)
    assert got["ray_ip"] == w1.ip


_CONNECT = r"""
import json, sys
import ray
try:
    ray.init(address=sys.argv[1], log_to_driver=False)
    print(json.dumps({"connected": True, "nodes": len(ray.nodes())}))
except BaseException as exc:
    chain, e = [], exc
    while e is not None:
        chain.append([type(e).__module__ + "." + type(e).__name__, str(e)])
        e = e.__cause__ or e.__context__
    print(json.dumps({"connected": False, "chain": chain}))
"""


def test_connections_without_the_right_token_are_refused(ray_cluster: Cluster, tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    base["HOME"] = str(tmp_path)  # no ~/.ray/auth_token to fall back on
    base["RAY_gcs_server_port_wait_time_s"] = "1"  # one connection attempt instead of 20 (one a second)
    cases = {
        "right_token": ray_cluster.driver_env,
        "no_token": {"RAY_AUTH_MODE": "token"},
        "wrong_token": {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64},
        "auth_disabled_in_client": {"RAY_AUTH_MODE": "disabled"},
    }
    procs = {name: subprocess.Popen([sys.executable, "-c", _CONNECT, ray_cluster.address], env={**base, **env},
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for name, env in cases.items()}
    out = {}
    for name, proc in procs.items():
        stdout, _ = proc.communicate(timeout=120)
        out[name] = json.loads(stdout.strip().splitlines()[-1])
    print(json.dumps({k: v if v.get("connected") else [t for t, _ in v["chain"]] for k, v in out.items()}))

    assert out["right_token"]["connected"] is True and out["right_token"]["nodes"] >= 3
    # Without a token the client refuses before it sends anything.
    assert out["no_token"]["connected"] is False
    assert out["no_token"]["chain"][0][0] == "ray.exceptions.AuthenticationError"
    # A wrong or absent token reaches the GCS, which answers InvalidAuthToken (an AuthenticationError that ray.init
    # reports inside a RuntimeError's text, wrapped in ConnectionError).
    for name in ("wrong_token", "auth_disabled_in_client"):
        chain = out[name]["chain"]
        assert out[name]["connected"] is False
        assert chain[0][0] == "builtins.ConnectionError", chain
        assert any("AuthenticationError" in msg and "InvalidAuthToken" in msg for _, msg in chain), chain


def test_shutdown_leaves_no_namespace_link_or_process(tmp_path_factory: pytest.TempPathFactory) -> None:
    problem = environment_problem()
    if problem is not None:
        pytest.skip(f"no Ray cluster in network namespaces here: {problem}")
    cluster = start_cluster(tmp_path_factory.mktemp("rayt"), workers=1)
    try:
        namespaces = [n.namespace for n in cluster.nodes if n.namespace]
        links = [cluster.bridge, *(n.host_veth for n in cluster.nodes if n.host_veth)]
        pids = [p.pid for n in cluster.nodes for p in cluster.node_processes(n.name)]
        assert namespaces and len(pids) >= 6  # per node at least `ray start`, raylet and its agents
        assert all(ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
                   for ns in namespaces)
    finally:
        cluster.shutdown()
    assert cluster.leftovers() == []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert not [ns for ns in namespaces if ns in netns]
    for link in links:
        assert subprocess.run(["ip", "link", "show", link], capture_output=True).returncode != 0, link
    assert [p for p in pids if _running(p)] == []
