"""A faulty environment, driven through the real CLI with real SQLite files: where the database lives by
default, a file that is not a database, a disk that fills up mid-run, an artifacts folder that is or becomes
read-only, and user errors that must leave no run behind. Each ends in one line that names the file and the
fix (exit 2), keeps what finished, and, mid-run, names the command that continues the run. A process manager's
SIGTERM stops a run as Ctrl-C does.

Full and read-only disks are real: small tmpfs mounts (root only; skipped elsewhere, saying why)."""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import yaml

from inferlab import config as cfg
from inferlab.cli.main import main
from inferlab.errors import Interrupted
from inferlab.store import Store
from tests.fixtures.datasets import centroid_classifier

ROOT = Path(__file__).resolve().parents[2]
QUICK = {"warmup_iterations": 1, "min_iterations": 5, "min_duration_s": 0.05, "max_duration_s": 1, "timeout_s": 120}


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_line(code: int, err: str, *needles: str) -> str:
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def _results(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return int(con.execute("select count(*) from results").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0
    finally:
        con.close()


def _in_background(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[threading.Thread, list[int]]:
    """The CLI in a thread of this process, so the test can break its environment while it runs."""
    box: list[int] = []
    thread = threading.Thread(target=lambda: box.append(main(list(args))), daemon=True)
    thread.start()
    return thread, box


def _wait_for(predicate: Callable[[], bool], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def _resume_with_hint(capsys: pytest.CaptureFixture[str], line: str) -> tuple[int, str, str]:
    """Paste the command the error names (between backticks), as a user would."""
    command = line.split("`")[-2]
    args = shlex.split(command)
    assert args[0] == "inferlab" and "--resume" in args, command
    return _cli(capsys, *args[1:])


@pytest.fixture
def mount() -> Iterator[Callable[..., Path]]:
    """Mount small tmpfs file systems (a disk that can fill up, or a read-only one); unmounted afterwards."""
    mounted: list[Path] = []

    def make(path: Path, size: str = "4m", read_only: bool = False) -> Path:
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("a real full or read-only disk needs root to mount a tmpfs")
        path.mkdir(parents=True, exist_ok=True)
        opts = f"size={size},mode=0755" + (",ro" if read_only else "")
        out = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "inferlab-test", str(path)], capture_output=True,
                             text=True, check=False)
        if out.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs CAP_SYS_ADMIN): {out.stderr.strip()}")
        mounted.append(path)
        return path

    yield make
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def _remount(path: Path, mode: str) -> None:
    for _ in range(100):  # "busy" while a file there is open for writing: try again
        if subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], capture_output=True,
                          check=False).returncode == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"could not remount {path} {mode}")


def _null_config(tmp_path: Path, model: str, batches: list[int], measure: dict[str, float] = QUICK) -> Path:
    path = tmp_path / "null.yaml"
    path.write_text(yaml.safe_dump({"name": "faults", "models": [{"path": model}], "backends": [{"name": "null"}],
                                    "batch": batches, "measure": measure}))
    return path


def _accuracy_config(tmp_path: Path, batches: list[int]) -> Path:
    """Accuracy trials keep their outputs in the artifacts folder (for `compare`)."""
    model = centroid_classifier(tmp_path / "centroids.onnx")
    path = tmp_path / "acc.yaml"
    path.write_text(yaml.safe_dump({
        "name": "acc", "models": [{"path": str(model)}], "backends": [{"name": "onnxruntime"}], "mode": "accuracy",
        "batch": batches, "dataset": {"format": "digits", "split": "test", "subset": 60}, "measure": QUICK}))
    return path


# where the database lives ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_default_database_is_found_from_any_folder(tiny_models: dict[str, str], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """`cd examples && inferlab bench ...`, then `inferlab results RUN` and `report RUN` from elsewhere."""
    examples = ROOT / "examples"
    before = set(os.listdir(examples))
    monkeypatch.chdir(examples)
    code, out, err = _cli(capsys, "bench", tiny_models["tiny.onnx"], "--backend", "null", "--time", "0.05")
    assert code == 0, out + err
    db = tmp_path / "xdg-data" / "inferlab" / "inferlab.db"  # conftest points XDG_DATA_HOME into tmp_path
    assert f"results stored in sqlite:///{db} as run" in " ".join(out.split())
    left = {n for n in set(os.listdir(examples)) - before if n.startswith(("inferlab.db", "inferlab-artifacts"))}
    assert not left  # nothing left in the folder the command ran from
    run_id = Store(str(db)).runs()[-1].id

    monkeypatch.chdir(tmp_path)
    code, out, err = _cli(capsys, "results", run_id)
    assert code == 0 and run_id in out, err
    code, out, err = _cli(capsys, "report", run_id, "-o", str(tmp_path / "r.html"))
    assert code == 0 and (tmp_path / "r.html").stat().st_size > 0, err


# a file that is not a database ----------------------------------------------------------------------------


def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "corrupt.db"
    bad.write_bytes(b"PK\x03\x04 this is a zip archive, not a database " * 40)
    for command in (["results"], ["results", "--runs"], ["export", "latest"], ["report", "-o",
                                                                               str(tmp_path / "r.html")]):
        code, _, err = _cli(capsys, *command, "--db", str(bad))
        _one_line(code, err, f"{bad}: not an SQLite database", "give another --db path")
    assert bad.read_bytes().startswith(b"PK\x03\x04")  # untouched


# user errors leave no run behind --------------------------------------------------------------------------


def test_config_and_plan_errors_leave_no_run_row(tiny_models: dict[str, str], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "r.db"
    good = _null_config(tmp_path, tiny_models["tiny.onnx"], [1, 2])
    store = Store(str(db))
    run_id = store.create_run("earlier", {}, cfg.plan(cfg.load(good)).specs, str(good))  # a run stored before
    store.close()

    wrong_shape = tmp_path / "shape.yaml"
    wrong_shape.write_text(f"models: [{{path: {tiny_models['tiny.onnx']}, inputs: {{x: {{shape: [-1, 3, 8, 8]}}}}}}]\n"
                           "backends: [{name: 'null'}]\n")
    (tmp_path / "other").mkdir()
    other = _null_config(tmp_path / "other", tiny_models["tiny.onnx"], [1, 2, 4])
    two_models = tmp_path / "tune.yaml"
    two_models.write_text(yaml.safe_dump({"models": [{"path": tiny_models["tiny.onnx"]}] * 2,
                                          "backends": [{"name": "onnxruntime"}], "tune": {"max_trials": 2}}))
    cases = [
        (["run", str(wrong_shape)], "inputs.x.shape [-1, 3, 8, 8]"),
        (["run", str(other), "--resume", run_id], "planned from a different config"),
        (["run", str(good), "--resume", "nosuchrun"], "run 'nosuchrun' is not in"),
        (["tune", str(two_models)], "a tuning searches for one model"),
    ]
    for args, needle in cases:
        code, _, err = _cli(capsys, *args, "--db", str(db))
        _one_line(code, err, needle)
    (info,) = Store(str(db)).runs()
    assert (info.id, info.status, info.trials, info.done) == (run_id, "running", 2, 0)


# a full disk ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_disk_that_fills_up_mid_run_stops_it_cleanly(tiny_models: dict[str, str], tmp_path: Path,
                                                        mount: Callable[..., Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    disk = mount(tmp_path / "disk", "4m")
    db = disk / "r.db"
    config = _null_config(tmp_path, tiny_models["tiny.onnx"], [1, 2, 3])
    thread, code = _in_background(capsys, "run", str(config), "--db", str(db))
    _wait_for(lambda: db.exists() and _results(db) >= 1)
    filler = disk / "filler"
    try:  # fill every byte left, while the second trial measures
        with filler.open("wb") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
    except OSError as exc:  # the run's own writes (the database's journal) may have filled it already
        assert exc.errno == errno.ENOSPC
    thread.join(timeout=600)
    assert not thread.is_alive()
    line = _one_line(code[0], capsys.readouterr().err, f"{db}: the database's disk is full (database or disk is full)",
                     "1 of 3 results are stored", f"--db {db} --resume")
    (info,) = Store(str(db)).runs()
    assert info.done == 1 and info.trials == 3
    # marking the run is one more write: on a disk full to the last byte it may fail too, and the line says so
    marked = "it is marked 'stopped'" in line
    assert marked or "it could not be marked 'stopped' (the database takes no writes) and still reads 'running'" in line
    assert info.status == ("stopped" if marked else "running")

    filler.unlink(missing_ok=True)  # free space, then paste the command the error named
    code2, out, err = _resume_with_hint(capsys, line)
    assert code2 == 0, out + err
    info = Store(str(db)).run_info(info.id)
    assert (info.status, info.done) == ("finished", 3)


# an artifacts folder that cannot be written ---------------------------------------------------------------


@pytest.mark.slow
def test_an_unwritable_artifacts_folder_is_refused_before_the_run(tmp_path: Path, mount: Callable[..., Path],
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    config = _accuracy_config(tmp_path, [1])
    db = tmp_path / "r.db"
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    monkeypatch.setenv("INFERLAB_ARTIFACTS", str(not_a_folder / "artifacts"))
    code, _, err = _cli(capsys, "run", str(config), "--db", str(db))
    _one_line(code, err, f"{not_a_folder}/artifacts: trial files", "Not a directory", "INFERLAB_ARTIFACTS")
    assert Store(str(db)).runs() == []  # nothing of the run was written

    read_only = mount(tmp_path / "ro", read_only=True)
    monkeypatch.setenv("INFERLAB_ARTIFACTS", str(read_only))
    code, _, err = _cli(capsys, "run", str(config), "--db", str(db))
    _one_line(code, err, f"{read_only}: trial files (LoadGen logs, accuracy outputs) cannot be written there "
                         "(Read-only file system); make it writable, or set INFERLAB_ARTIFACTS to a writable folder")
    assert Store(str(db)).runs() == []


@pytest.mark.slow
def test_an_artifacts_folder_failing_mid_run_stops_it_cleanly(tmp_path: Path, mount: Callable[..., Path],
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    artifacts = mount(tmp_path / "artifacts")
    monkeypatch.setenv("INFERLAB_ARTIFACTS", str(artifacts))
    config = _accuracy_config(tmp_path, [1, 2])
    db = tmp_path / "r.db"
    thread, code = _in_background(capsys, "run", str(config), "--db", str(db))
    _wait_for(lambda: db.exists() and _results(db) >= 1)
    _remount(artifacts, "ro")
    thread.join(timeout=600)
    assert not thread.is_alive()
    line = _one_line(code[0], capsys.readouterr().err, "stopped: ", "(Read-only file system)",
                     "1 of 2 results are stored and it is marked 'stopped'", f"--db {db} --resume")
    (info,) = Store(str(db)).runs()
    assert (info.status, info.done) == ("stopped", 1)
    assert all(r.status == "ok" for r in Store(str(db)).results(info.id))  # the failure was not stored as a trial's

    _remount(artifacts, "rw")
    code2, out, err = _resume_with_hint(capsys, line)
    assert code2 == 0, out + err
    results = Store(str(db)).results(info.id)
    assert [r.status for r in results] == ["ok", "ok"]
    assert all(r.accuracy and r.accuracy.outputs_path and Path(r.accuracy.outputs_path).is_file() for r in results)


# a process manager stops the run ----------------------------------------------------------------------------

RUNNER = "inferlab.execute.runner"  # the trial process: `python -m inferlab.execute.runner`


def _runners(marker: str) -> list[psutil.Process]:
    """Live trial processes started by the CLI under test: the runner's command line, and the marker the test put
    in the CLI's environment (a trial process inherits it; it runs in a session of its own and outlives its
    parent as an orphan, so neither the process tree nor the session finds it after the CLI has exited)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if RUNNER in " ".join(p.info["cmdline"] or ()) and p.environ().get("INFERLAB_TEST_MARK") == marker \
                    and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _run_stored(db: Path) -> bool:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return con.execute("select count(*) from runs").fetchone()[0] > 0
        finally:
            con.close()
    except sqlite3.Error:  # not created yet, or its tables not yet
        return False


@pytest.mark.slow
def test_sigterm_stops_a_run_as_ctrl_c_does(tiny_models: dict[str, str], tmp_path: Path) -> None:
    """`kill PID` (systemd, a job scheduler, a container stop) during a trial: the trial process is killed, the
    run is marked 'interrupted' and the command exits with Ctrl-C's code, naming how to resume."""
    config = _null_config(tmp_path, tiny_models["tiny.onnx"], [1, 2],
                          {**QUICK, "min_duration_s": 120, "max_duration_s": 240, "timeout_s": 300})
    db = tmp_path / "r.db"
    marker = uuid.uuid4().hex
    proc = subprocess.Popen([sys.executable, "-m", "inferlab.cli.main", "run", str(config), "--db", str(db)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "INFERLAB_TEST_MARK": marker})
    try:
        trial: list[psutil.Process] = []

        def measuring() -> bool:  # the run is stored and a trial process of ours (a child of the CLI) has
            # run for a second (it may have been started early, while the command imported and planned)
            assert proc.poll() is None, proc.communicate()[1]
            if not _run_stored(db):
                return False
            trial[:] = [c for c in psutil.Process(proc.pid).children(recursive=True)
                        if RUNNER in " ".join(c.cmdline()) and time.time() - c.create_time() > 1.0]
            return bool(trial)

        _wait_for(measuring, timeout=120)
        assert _runners(marker), "the marker should find the trial process"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == Interrupted.exit_code, err
    assert "interrupted; finished trials are stored" in err and f"--db {db} --resume" in err, err
    (info,) = Store(str(db)).runs()
    assert (info.status, info.done, info.trials) == ("interrupted", 0, 2)
    time.sleep(1.0)
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in trial)
    assert _runners(marker) == []
