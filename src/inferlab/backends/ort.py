"""ONNX Runtime: CPU execution provider, and the CUDA provider where the installed build has it."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from inferlab.backends.base import (
    Backend,
    Knob,
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
from inferlab.models.convert import torch_to_onnx
from inferlab.models.tensors import TensorSpec, canonical_dtype

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


def _ort_dtype(type_name: str) -> str:
    inner = type_name.removeprefix("tensor(").removesuffix(")")
    try:
        return canonical_dtype(inner)
    except InputSpecError:
        return inner


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    formats = (ModelFormat.ONNX, ModelFormat.TORCH_EXPORT, ModelFormat.TORCH_FACTORY)
    distribution = "onnxruntime"

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

    def thread_environment(self, params: Mapping[str, Scalar]) -> dict[str, str]:
        threads = params.get("intra_op_threads") or 0
        return {"OMP_NUM_THREADS": str(threads)} if threads else {}

    def load(self, model: Artifact, device: str, params: Mapping[str, Scalar],
             inputs: list[TensorSpec] | None = None, mode: str = "latency", profile: bool = False) -> Session:
        import onnxruntime as ort

        path = model.path
        if model.format in (ModelFormat.TORCH_EXPORT, ModelFormat.TORCH_FACTORY):
            if inputs is None:
                raise ModelError(f"{model.ref}: converting to ONNX needs the input specs")
            path = torch_to_onnx(model, inputs)
        elif model.format is not ModelFormat.ONNX:
            raise ModelError(f"{model.ref}: onnxruntime cannot load a {model.format.value} model")
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
        try:
            sess = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:
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
        return OnnxRuntimeSession(sess, specs, info, in_flight)
