"""ONNX Runtime: CPU execution provider, and the CUDA provider where the installed build has it."""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from inferlab.backends.base import (
    Backend,
    Knob,
    LayerTiming,
    Scalar,
    Session,
    SessionInfo,
    bool_knob,
    choice_knob,
    cpus_knob,
    int_knob,
    is_async,
    oversubscribed,
    split_cores,
    usable_cores,
)
from inferlab.errors import BackendError, InputSpecError, ModelError
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.models.convert_tf import readable_by
from inferlab.models.tensors import TensorSpec, canonical_dtype

log = logging.getLogger(__name__)

_CUDA = re.compile(r"^cuda(:\d+)?$")
_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
           "all": "ORT_ENABLE_ALL"}


class OnnxRuntimeSession(Session):
    def __init__(self, sess: Any, inputs: list[TensorSpec], info: SessionInfo, recommended: int) -> None:
        self._sess = sess
        self.inputs = inputs
        self.outputs = [TensorSpec(o.name, tuple(d if isinstance(d, int) else -1 for d in o.shape),
                                   _ort_dtype(o.type)) for o in sess.get_outputs()]
        self._output_names = [o.name for o in self.outputs]
        self.info = info
        self._recommended = recommended

    def run(self, prepared: Any) -> Any:
        return self._sess.run(None, prepared)

    def outputs_of(self, raw: Any) -> dict[str, np.ndarray]:
        return dict(zip(self._output_names, raw, strict=True))

    def recommended_in_flight(self) -> int:
        return self._recommended

    def runtime_graph(self, folder: Path) -> Path | None:
        """The model after ONNX Runtime's graph rewrites, as a second session with this one's options and
        providers writes it (ORT keeps no optimised model of a session already created)."""
        import onnxruntime as ort

        # The source the session was created from: InferenceSession keeps it only in these attributes.
        source = self._sess._model_path or self._sess._model_bytes
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{Path(self._sess._model_path or 'model').stem}.optimized.onnx"
        opts = self._sess.get_session_options()  # the session's own copy: level, threads, config entries
        opts.optimized_model_filepath = str(path)
        providers = self._sess.get_providers()
        given = self._sess.get_provider_options()
        try:
            ort.InferenceSession(source, sess_options=opts, providers=providers,
                                 provider_options=[given.get(p, {}) for p in providers])
        except Exception as exc:
            raise BackendError(f"onnxruntime cannot write its optimised model to {path} "
                               f"({str(exc).splitlines()[0]})") from exc
        finally:
            opts.optimized_model_filepath = ""
        return path


class ProfiledOnnxRuntimeSession(OnnxRuntimeSession):
    """A session created with ORT's profiler on (SessionOptions.enable_profiling), its trace written under a
    folder of its own.

    ORT hands its trace over once: `end_profiling` writes it and stops the profiler for good (it cannot be
    restarted). So the profile has one window. The first `layer_profile` call marks where it starts and
    returns [] (the runs before it, the warm-ups, are dropped); the second ends the profiler and returns the
    runs between the two calls; later calls return []. That is the runner's sequence: warm-ups, a call to
    reset, N inferences, a call to read. The trace counts every node of every run, synchronous or in flight.

    On the CUDA provider a node's time is what the host spends in its kernel call, which launches the GPU
    work without waiting for it; this build of ORT has no CUDA provider to check against."""

    def __init__(self, sess: Any, inputs: list[TensorSpec], info: SessionInfo, recommended: int,
                 folder: Path, device: str) -> None:
        super().__init__(sess, inputs, info, recommended)
        self._folder = folder
        self._device = device
        self._lock = threading.Lock()
        self._runs = 0                 # runs since loading, to find the window's first run in the trace
        self._mark: int | None = None  # runs before the window
        self._ended = False

    def run(self, prepared: Any) -> Any:
        out = self._sess.run(None, prepared)
        with self._lock:  # runs in flight finish on several threads
            self._runs += 1
        return out

    def layer_profile(self) -> list[LayerTiming]:
        """Each node's kernel time summed over the window's runs (see the class): the node's name in the
        optimised graph, its op type, the provider as kernel and device, the precision of its first input."""
        with self._lock:
            runs = self._runs
        if self._ended:
            log.warning("onnxruntime: the profile was already read; ORT records nothing after end_profiling")
            return []
        if self._mark is None:
            self._mark = runs
            return []
        path = Path(self._sess.end_profiling())
        self._ended = True
        try:
            return _ort_layers(_trace(path), self._mark, runs - self._mark, self._device)
        finally:
            path.unlink(missing_ok=True)

    def close(self) -> None:
        super().close()
        if not self._ended:  # have ORT close its trace file before the folder goes
            self._sess.end_profiling()
            self._ended = True
        shutil.rmtree(self._folder, ignore_errors=True)


# ONNX element types as the profile records spell precisions.
_PRECISIONS = {"float": "FP32", "float16": "FP16", "bfloat16": "BF16", "double": "FP64", "int8": "I8",
               "uint8": "U8", "int4": "I4", "uint4": "U4", "int16": "I16", "uint16": "U16", "int32": "I32",
               "uint32": "U32", "int64": "I64", "uint64": "U64", "bool": "BOOL"}


def _trace(path: Path) -> list[dict[str, Any]]:
    """The trace's Node and model_run events, without their bulky args. ORT writes one event a line; a run
    of many inferences writes hundreds of MB, so lines are read one by one rather than as one document."""
    keep: list[dict[str, Any]] = []

    def take(event: dict[str, Any]) -> None:
        cat, name = event.get("cat"), str(event.get("name", ""))
        if cat == "Node" and name.endswith("_kernel_time"):
            args = event.get("args") or {}
            first = (args.get("input_type_shape") or [{}])[0]
            keep.append({"cat": cat, "name": name.removesuffix("_kernel_time"), "ts": event["ts"],
                         "dur": event["dur"], "op": args.get("op_name", ""), "provider": args.get("provider"),
                         "input": next(iter(first), None)})
        elif cat == "Session" and name == "model_run":
            keep.append({"cat": cat, "name": name, "ts": event["ts"], "dur": event["dur"]})

    with path.open() as f:
        try:
            for line in f:
                line = line.strip().rstrip(",")
                if line not in ("[", "]", ""):
                    take(json.loads(line))
        except json.JSONDecodeError:  # not one event a line after all: read it whole
            keep.clear()
            f.seek(0)
            for event in json.load(f):
                take(event)
    return keep


def _ort_layers(events: list[dict[str, Any]], skip: int, runs: int, device: str) -> list[LayerTiming]:
    """Sum the Node events of the runs after the first `skip` (by their model_run events, in time order) per
    node, in first-seen order. ORT stops recording at its cap on events (a million); should the trace hold
    fewer of the window's runs than were made, the sums are scaled to `runs` so that their mean holds."""
    if runs <= 0:
        return []
    done = sorted((e for e in events if e["cat"] == "Session"), key=lambda e: e["ts"])
    window = done[skip:]
    if not window:
        return []
    start, end = window[0]["ts"], window[-1]["ts"] + window[-1]["dur"]
    scale = runs / len(window) if len(window) < runs else 1.0
    totals: dict[str, list[Any]] = {}
    for e in sorted((e for e in events if e["cat"] == "Node" and start <= e["ts"] <= end), key=lambda e: e["ts"]):
        row = totals.setdefault(e["name"], [e["op"], e["provider"], e["input"], 0])
        row[3] += e["dur"]
    return [LayerTiming(name, str(op), dur * scale / 1e3, provider,
                        _PRECISIONS.get(str(first)) if first else None, None,
                        "cpu" if provider in (None, "CPUExecutionProvider") else device, order)
            for order, (name, (op, provider, first, dur)) in enumerate(totals.items())]


def _ort_dtype(type_name: str) -> str:
    inner = type_name.removeprefix("tensor(").removesuffix(")")
    try:
        return canonical_dtype(inner)
    except InputSpecError:
        return inner


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    formats = (ModelFormat.ONNX, ModelFormat.TORCH_EXPORT, ModelFormat.TORCH_FACTORY, ModelFormat.SAVED_MODEL,
               ModelFormat.KERAS)
    distribution = "onnxruntime"
    can_profile = True

    def available(self) -> bool:
        return importlib.util.find_spec("onnxruntime") is not None

    def devices(self) -> list[str]:
        import onnxruntime as ort

        devs = ["cpu"]
        if "CUDAExecutionProvider" in ort.get_available_providers():
            devs.append("cuda:0")
        return devs

    def accepts_device(self, device: str) -> bool:
        return device == "cpu" or bool(_CUDA.match(device))

    def knobs(self, device: str) -> dict[str, Knob]:
        return {k.name: k for k in (
            int_knob("intra_op_threads", "threads inside one operator, per request (0: auto: one per core "
                     "when one request runs at a time; in throughput modes the cores split across the "
                     "requests in flight)", 0),
            int_knob("inter_op_threads", "threads across operators in parallel mode (0: default)", 0),
            choice_knob("execution_mode", "run operators one by one or in parallel", "sequential",
                        ["sequential", "parallel"]),
            choice_knob("graph_optimization_level", "graph rewrites applied at load", "all", list(_LEVELS)),
            bool_knob("spinning", "intra-op threads spin while waiting for work (lower latency, more CPU)", True),
            int_knob("in_flight", "requests kept in flight in throughput mode (0: auto: enough to keep "
                     "every core busy, cores / intra_op_threads, one per core when both are auto; 1 on cuda)",
                     0, per_core=2, async_only=True),
            cpus_knob(),
        )}

    def cpu_share(self, params: Mapping[str, Scalar], cores: int) -> dict[str, Scalar]:
        return {**params, "intra_op_threads": params.get("intra_op_threads") or cores}

    def thread_environment(self, params: Mapping[str, Scalar]) -> dict[str, str]:
        threads = params.get("intra_op_threads") or 0
        return {"OMP_NUM_THREADS": str(threads)} if threads else {}

    def convert(self, model: Artifact, inputs: list[TensorSpec] | None) -> None:
        self._onnx(model, inputs)

    @staticmethod
    def _onnx(model: Artifact, inputs: list[TensorSpec] | None) -> Path:
        """The .onnx file of `model`: its own, or its conversion (cached)."""
        if model.format not in OnnxRuntimeBackend.formats:
            raise ModelError(f"{model.ref}: onnxruntime cannot load a {model.format.value} model")
        return readable_by(model, "onnx", inputs)

    def load(self, model: Artifact, device: str, params: Mapping[str, Scalar],
             inputs: list[TensorSpec] | None = None, mode: str = "latency", profile: bool = False) -> Session:
        import onnxruntime as ort

        path = self._onnx(model, inputs)
        cores = usable_cores()
        intra, in_flight = int(params.get("intra_op_threads") or 0), int(params.get("in_flight") or 0)
        if device == "cpu" and is_async(mode):
            # Concurrent Run calls on one session execute on their calling threads, sharing its intra-op
            # pool: N requests of one thread each run truly in parallel, one per core.
            in_flight, intra = split_cores(cores, in_flight, intra)
        else:
            in_flight = in_flight or (max(1, cores // intra) if intra and device == "cpu" else 1)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = intra
        opts.inter_op_num_threads = int(params.get("inter_op_threads") or 0)
        opts.execution_mode = (ort.ExecutionMode.ORT_PARALLEL if params.get("execution_mode") == "parallel"
                               else ort.ExecutionMode.ORT_SEQUENTIAL)
        level = str(params.get("graph_optimization_level") or "all")
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[level])
        spinning = bool(params.get("spinning", True))
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "1" if spinning else "0")
        if device == "cpu":
            providers: list[Any] = ["CPUExecutionProvider"]
        else:
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendError(f"device '{device}': this onnxruntime build has no CUDA execution provider; "
                                   "install onnxruntime-gpu or use device cpu")
            index = int(device.split(":")[1]) if ":" in device else 0
            providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        folder = None
        if profile:
            folder = Path(tempfile.mkdtemp(prefix="inferlab-ort-profile-"))
            opts.enable_profiling = True
            opts.profile_file_prefix = str(folder / "trace")
        try:
            sess = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            raise ModelError(f"{path}: onnxruntime cannot load the model ({str(exc).splitlines()[0]})") from exc
        threads = intra or cores
        notes: list[str] = []
        if is_async(mode) and in_flight > 1:
            if intra > 1:
                notes.append(f"onnxruntime: the {in_flight} requests in flight share the session's one pool of "
                             f"{intra} intra-op threads, each request's calling thread joining it")
            if device == "cpu" and (note := oversubscribed("onnxruntime", in_flight, threads, cores)):
                notes.append(note)
        info = SessionInfo(
            effective={"intra_op_threads": threads, "inter_op_threads": opts.inter_op_num_threads,
                       "execution_mode": str(params.get("execution_mode")),
                       "graph_optimization_level": level, "in_flight": in_flight, "spinning": spinning,
                       "providers": ",".join(sess.get_providers())},
            runtime={"onnxruntime": ort.__version__, "device": device},
            notes=notes,
        )
        specs = inputs if inputs is not None else []
        if folder is not None:
            return ProfiledOnnxRuntimeSession(sess, specs, info, in_flight, folder, device)
        return OnnxRuntimeSession(sess, specs, info, in_flight)
