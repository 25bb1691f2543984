"""The Ray executor on a real cluster (a head and worker nodes in network namespaces): a grid run across
nodes matches a local run, a node killed mid-trial loses nothing, a head killed mid-run resumes, and a trial
no node can take is refused before the run exists."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferlab import api
from inferlab.errors import ClusterError
from inferlab.store import Store
from tests.cluster.netns import Cluster

pytestmark = pytest.mark.slow
MEASURE = {"warmup_iterations": 2, "min_iterations": 10, "min_duration_s": 0.3, "max_duration_s": 5,
           "timeout_s": 120}


@pytest.fixture(scope="module")
def driver(ray_cluster: Cluster) -> Iterator[Cluster]:
    """This process as the cluster's driver: the token in the environment; inferlab's executor joins the
    cluster itself (shipping inferlab in its runtime environment) on first use."""
    import ray

    with ray_cluster.driver_auth():
        try:
            yield ray_cluster
        finally:
            ray.shutdown()


def _grid(tmp_path: Path, models: dict[str, str], **changes: Any) -> Path:
    """The quickstart's grid shape on the tiny model: three runtimes, two batches, latency and throughput."""
    exp: dict[str, Any] = {
        "name": "grid", "models": [{"name": "tiny", "path": models["tiny.onnx"],
                                    "alternates": [models["tiny.xml"], models["tiny.pt2"]]}],
        "backends": [{"name": "onnxruntime"}, {"name": "openvino", "params": {"inference_precision": "f32"}},
                     {"name": "torch"}],
        "batch": [1, 8], "mode": ["latency", "throughput"], "measure": MEASURE}
    exp.update(changes)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(exp))
    return path


def test_grid_across_nodes_runs_the_trials_a_local_run_would(driver: Cluster, tiny_models: dict[str, str],
                                                              tmp_path: Path) -> None:
    from inferlab import config

    cfg = _grid(tmp_path, tiny_models, batch=[1])
    remote = api.run(cfg, db=str(tmp_path / "cluster.db"), cluster=driver.address)
    local = config.plan(config.load(cfg))  # what `inferlab run` here would measure (its trials are tested locally)
    assert len(remote.results) == len(local.specs) == 6
    assert sorted(r.spec.key() for r in remote.results) == sorted(s.key() for s in local.specs)
    assert all(r.status == "ok" for r in remote.results), [r.reason for r in remote.results]
    workers = {n.ip for n in driver.workers}
    ran_on = {r.runtime["node"] for r in remote.results}
    assert ran_on <= workers and len(ran_on) == 2, ran_on  # the head takes no trials; both workers did
    store = Store(str(tmp_path / "cluster.db"))
    try:
        envs = {r.environment_id for r in remote.results}
        assert len(envs) == 2  # each result with the environment of the node that measured it
        for env_id in envs:
            env = store.environment(env_id)
            assert env is not None and env["node_address"] in workers
        assert store.run_info(remote.id).status == "finished"
    finally:
        store.close()


def test_a_trial_no_node_can_take_is_refused_before_the_run(driver: Cluster, tiny_models: dict[str, str],
                                                            tmp_path: Path) -> None:
    cfg = _grid(tmp_path, tiny_models, backends=[{"name": "torch"}], devices=["cuda:0"], batch=[1],
                mode=["latency"])
    db = tmp_path / "gpu.db"
    with pytest.raises(ClusterError, match=r"no node of the cluster runs torch on cuda:0"):
        api.run(cfg, db=str(db), cluster=driver.address)
    store = Store(str(db))
    try:
        assert store.runs() == []  # nothing of the run was written
    finally:
        store.close()


def _runner_on(cluster: Cluster, name: str) -> bool:
    return any("inferlab.execute.runner" in " ".join(p.cmdline()) for p in cluster.node_processes(name))


def test_a_node_killed_mid_trial_has_its_trial_run_elsewhere(driver: Cluster, tiny_models: dict[str, str],
                                                             tmp_path: Path) -> None:
    node = driver.add_node("w3", labels={"inferlab-node": "w3"})
    slow = {**MEASURE, "min_duration_s": 4.0, "max_duration_s": 8}
    cfg = _grid(tmp_path, tiny_models, backends=[{"name": "onnxruntime"}], batch=[1, 2, 4], mode=["latency"],
                measure=slow)
    killed: list[float] = []

    def kill_when_measuring() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _runner_on(driver, "w3"):
            time.sleep(0.2)
        time.sleep(2.0)  # into the trial
        driver.kill_node("w3")
        killed.append(time.monotonic())

    killer = threading.Thread(target=kill_when_measuring, daemon=True)
    killer.start()
    run = api.run(cfg, db=str(tmp_path / "kill.db"), cluster=driver.address)
    killer.join(timeout=5)
    assert killed, "node w3 never ran a trial"
    assert len(run.results) == 3 and len({r.spec.key() for r in run.results}) == 3  # none lost, none twice
    assert all(r.status == "ok" for r in run.results), [r.reason for r in run.results]
    again = [r for r in run.results if any("ran again on node" in w for w in r.warnings)]
    assert len(again) == 1 and again[0].runtime["node"] != node.ip
    assert node.ip in " ".join(again[0].warnings)


def test_head_killed_mid_run_resumes_without_running_finished_trials(driver: Cluster, tiny_models: dict[str, str],
                                                                      tmp_path: Path) -> None:
    cfg = _grid(tmp_path, tiny_models, backends=[{"name": "onnxruntime"}], batch=[1, 2, 3, 4, 5, 6],
                mode=["latency"], measure={**MEASURE, "min_duration_s": 1.0})
    db = tmp_path / "head.db"
    code = ("import sys; from inferlab import api; "
            "api.run(sys.argv[1], db=sys.argv[2], cluster=sys.argv[3], resume=(sys.argv[4] or None))")
    env = {**os.environ, **driver.driver_env}
    head = subprocess.Popen([sys.executable, "-c", code, str(cfg), str(db), driver.address, ""], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    store = Store(str(db))
    try:
        while time.monotonic() < deadline and head.poll() is None:
            runs = store.runs() if db.exists() else []
            if runs and runs[0].done >= 2:
                break
            time.sleep(0.3)
        os.kill(head.pid, signal.SIGKILL)
        head.wait()
        (info,) = store.runs()
        first = {r.spec.key(): r.finished_at for r in store.results(info.id)}
        assert 2 <= len(first) < 6, "the kill should land mid-run"
        time.sleep(3)  # the cluster notices its driver is gone and stops the job's trials
        assert not any(_runner_on(driver, w.name) for w in driver.workers if w.alive)
        out = subprocess.run([sys.executable, "-c", code, str(cfg), str(db), driver.address, info.id], env=env,
                             capture_output=True, text=True, timeout=300, check=False)
        assert out.returncode == 0, out.stderr[-2000:]
        results = store.results(info.id)
        assert len(results) == 6 and len({r.spec.key() for r in results}) == 6
        for r in results:  # what finished before the kill was not measured again
            if r.spec.key() in first:
                assert r.finished_at == first[r.spec.key()]
        assert store.run_info(info.id).status == "finished"
    finally:
        store.close()


def test_ctrl_c_cancels_running_trials_on_the_nodes_and_resume_continues(driver: Cluster,
                                                                         tiny_models: dict[str, str],
                                                                         tmp_path: Path) -> None:
    cfg = _grid(tmp_path, tiny_models, backends=[{"name": "onnxruntime"}], batch=[1, 2, 3], mode=["latency"],
                measure={**MEASURE, "min_duration_s": 3.0})
    db = tmp_path / "int.db"
    code = ("import sys; from inferlab import api; "
            "api.run(sys.argv[1], db=sys.argv[2], cluster=sys.argv[3], resume=(sys.argv[4] or None))")
    env = {**os.environ, **driver.driver_env}
    head = subprocess.Popen([sys.executable, "-c", code, str(cfg), str(db), driver.address, ""], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and head.poll() is None and \
            not all(_runner_on(driver, w.name) for w in driver.workers if w.alive):
        time.sleep(0.2)
    head.send_signal(signal.SIGINT)
    _, stderr = head.communicate(timeout=60)
    assert "interrupted; finished trials are stored" in stderr and "--resume" in stderr  # and how to go on
    time.sleep(2)
    assert not any(_runner_on(driver, w.name) for w in driver.workers if w.alive), "a trial outlived Ctrl-C"
    store = Store(str(db))
    try:
        (info,) = store.runs()
        assert info.status == "interrupted"
        out = subprocess.run([sys.executable, "-c", code, str(cfg), str(db), driver.address, info.id], env=env,
                             capture_output=True, text=True, timeout=300, check=False)
        assert out.returncode == 0, out.stderr[-2000:]
        assert len(store.results(info.id)) == 3 and store.run_info(info.id).status == "finished"
    finally:
        store.close()


def test_node_labels_choose_where_trials_run(driver: Cluster, tiny_models: dict[str, str], tmp_path: Path) -> None:
    cfg = _grid(tmp_path, tiny_models, backends=[{"name": "onnxruntime"}], batch=[1, 2], mode=["latency"],
                nodes={"inferlab-node": "w2"})
    run = api.run(cfg, db=str(tmp_path / "labels.db"), cluster=driver.address)
    assert {r.runtime["node"] for r in run.results} == {driver.node("w2").ip}
    cfg = _grid(tmp_path, tiny_models, backends=[{"name": "onnxruntime"}], batch=[1], mode=["latency"],
                nodes={"inferlab-node": "nowhere"})
    with pytest.raises(ClusterError, match=r"no node takes trials with the labels nodes: \{inferlab-node=nowhere\}"):
        api.run(cfg, db=str(tmp_path / "none.db"), cluster=driver.address)


def test_cluster_status_lists_every_node_with_what_it_runs(driver: Cluster) -> None:
    from inferlab.api.cluster import cluster_status

    listed = {n.address: n for n in cluster_status(driver.address) if n.alive}
    for w in (driver.node("w1"), driver.node("w2")):
        node = listed[w.ip]
        assert node.slots == 1 and "cpu" in node.backends["onnxruntime"]
        assert node.labels.get("inferlab-node") == w.name
        assert node.fingerprint and node.environment["node_address"] == w.ip
    assert listed[driver.head.ip].slots == 0  # the head stores results and takes no trials
    assert listed[driver.node("w1").ip].fingerprint != listed[driver.node("w2").ip].fingerprint
