"""OpenVINO: CPU and any device OpenVINO reports; throughput through AsyncInferQueue."""

from __future__ import annotations

import importlib.util
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from inferlab.backends.base import (
    Backend,
    DoneCallback,
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
)
from inferlab.errors import BackendError, ModelError
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.models.convert_tf import readable_by
from inferlab.models.tensors import TensorSpec

CACHE_VARIABLE = "INFERLAB_OPENVINO_CACHE_DIR"  # set by the trial process of a tuning (cache_environment)
# OpenVINO's own device names; `multi:` is inferlab's dispatcher over OpenVINO sessions (backends/multi.py), and
# OpenVINO's native spreading is `auto:cpu,gpu` with performance_hint CUMULATIVE_THROUGHPUT
_DEVICE = re.compile(r"^(cpu|gpu(\.\d+)?|npu|auto(:.+)?|hetero:.+)$", re.IGNORECASE)
_PROPS = ("PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS", "INFERENCE_PRECISION_HINT",
          "OPTIMAL_NUMBER_OF_INFER_REQUESTS", "ENABLE_CPU_PINNING", "EXECUTION_MODE_HINT")


def ov_device(device: str) -> str:
    """inferlab device string -> OpenVINO's ("gpu.1" -> "GPU.1", "cpu" -> "CPU")."""
    return device.upper()


def _input_order(compiled: Any, names: list[str]) -> list[int]:
    """For each of the compiled model's inputs, the index in `names` of the input it is (by any of its tensor
    names), else its own position."""
    out = []
    for i, port in enumerate(compiled.inputs):
        have = set(port.get_names())
        out.append(next((k for k, n in enumerate(names) if n in have), i))
    return out


class OpenVinoSession(Session):
    def __init__(self, compiled: Any, inputs: list[TensorSpec], info: SessionInfo, nireq: int) -> None:
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self.inputs = inputs
        self.outputs = [TensorSpec(o.get_any_name(), tuple(o.get_partial_shape().get_min_shape()),
                                   str(o.get_element_type().to_dtype())) for o in compiled.outputs]
        self.info = info
        self._nireq = nireq
        self._queue: Any = None

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> Any:
        import openvino as ov

        # Tensors share the caller's memory: no copy per request, as benchmark_app fills them once. They go in
        # the compiled model's input order, found by name (a converted model may order its inputs otherwise).
        order = _input_order(self._compiled, [s.name for s in self.inputs])
        return [ov.Tensor(np.require(feeds[self.inputs[k].name], requirements="C"), shared_memory=True)
                for k in order]

    def run(self, prepared: Any) -> Any:
        req = self._request
        for i, tensor in enumerate(prepared):
            req.set_input_tensor(i, tensor)
        req.infer()
        return req

    def outputs_of(self, raw: Any) -> dict[str, np.ndarray]:
        return {o.name: np.array(raw.get_output_tensor(i).data, copy=True) for i, o in enumerate(self.outputs)}

    def recommended_in_flight(self) -> int:
        return self._nireq

    def start_async(self, depth: int) -> None:
        import openvino as ov

        self._queue = ov.AsyncInferQueue(self._compiled, depth)
        self._queue.set_callback(_on_request_done)

    def wait_slot(self) -> None:
        self._queue.get_idle_request_id()  # the queue itself keeps the in-flight bound

    def submit(self, prepared: Any, on_done: DoneCallback) -> None:
        self._queue.start_async(dict(enumerate(prepared)), on_done, share_inputs=True)

    def wait_all(self) -> None:
        if self._queue is not None:
            self._queue.wait_all()

    def stop_async(self) -> None:
        self.wait_all()
        self._queue = None

    def runtime_graph(self, folder: Path) -> Path | None:
        """The executed graph (fused layers; exec type and precision in each layer's data) as IR; its layers
        have no opset, so Netron opens it but OpenVINO cannot read it back. The session does not know the model's
        file name: the caller names the files."""
        import openvino as ov

        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "model.runtime.xml"
        ov.save_model(self._compiled.get_runtime_model(), str(path), compress_to_fp16=False)
        return path


def _plain(value: Any) -> Scalar:
    """An OpenVINO property as a plain value: Type -> 'f32', enums -> their name."""
    if isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "get_type_name"):
        return str(value.get_type_name())
    return str(getattr(value, "name", value))


def _on_request_done(request: Any, on_done: DoneCallback) -> None:
    on_done(None)


# OpenVINO's precision words (runtimePrecision, an exec type's suffix) as the profile records spell them.
_PRECISIONS = {"f32": "FP32", "fp32": "FP32", "f16": "FP16", "fp16": "FP16", "bf16": "BF16", "f64": "FP64",
               "i8": "I8", "u8": "U8", "i4": "I4", "u4": "U4", "i16": "I16", "u16": "U16", "i32": "I32",
               "u32": "U32", "i64": "I64", "u64": "U64", "u1": "U1", "boolean": "BOOL", "bin": "U1"}


def _precision(word: str) -> str | None:
    return _PRECISIONS.get(word.strip().lower())


class _LayerTotals:
    """Per-node counters of every profiled inference, added up in execution order. Requests of the async
    queue report from OpenVINO's threads, hence the lock."""

    def __init__(self, precisions: Mapping[str, str], device: str) -> None:
        self._precisions = precisions
        self._device = device
        self._lock = threading.Lock()
        self._totals: dict[str, list[Any]] = {}  # name -> [op type, exec type, real ms, cpu ms]

    def add(self, infos: Any) -> None:
        import openvino as ov

        executed = ov.ProfilingInfo.Status.EXECUTED
        with self._lock:
            for p in infos:
                if p.status != executed:  # fused into a neighbour (its time is that node's) or optimised out
                    continue
                row = self._totals.get(p.node_name)
                if row is None:
                    # First seen is the execution order: the counters come in the order the nodes ran.
                    row = self._totals[p.node_name] = [p.node_type, p.exec_type, 0.0, 0.0]
                row[2] += p.real_time.total_seconds() * 1e3
                row[3] += p.cpu_time.total_seconds() * 1e3

    def on_request_done(self, request: Any, on_done: DoneCallback) -> None:
        """AsyncInferQueue's callback: add the request's counters, then tell the driver."""
        try:
            self.add(request.get_profiling_info())
        except BaseException as exc:  # reported to the driver like a failed inference
            on_done(exc)
            return
        on_done(None)

    def take(self) -> list[LayerTiming]:
        with self._lock:
            totals, self._totals = self._totals, {}
        out = []
        for order, (name, (op_type, kernel, real_ms, cpu_ms)) in enumerate(totals.items()):
            # The exec type's suffix names its precision too (brgconv_avx512_I8), but runtimePrecision is
            # finer (u8 activations of that I8 kernel); the suffix covers nodes the runtime model lacks.
            precision = self._precisions.get(name) or _precision(str(kernel).rsplit("_", 1)[-1])
            out.append(LayerTiming(name, str(op_type), real_ms, str(kernel), precision, cpu_ms, self._device,
                                   order))
        return out


class ProfiledOpenVinoSession(OpenVinoSession):
    """A session compiled with PERF_COUNT. OpenVINO's counters describe a request's last inference only, so
    they are added up after every inference: `run` on the synchronous request, the queue's callback for
    requests in flight. Reading them costs a little after each inference, never inside the runtime's call."""

    def __init__(self, compiled: Any, inputs: list[TensorSpec], info: SessionInfo, nireq: int,
                 device: str) -> None:
        super().__init__(compiled, inputs, info, nireq)
        self._layers = _LayerTotals(_runtime_precisions(compiled), device)

    def run(self, prepared: Any) -> Any:
        req = super().run(prepared)
        self._layers.add(req.get_profiling_info())
        return req

    def start_async(self, depth: int) -> None:
        super().start_async(depth)
        # The callback holds the totals, not the session: OpenVINO may drop its last reference on a request's
        # own thread, and a session freed there would join that thread from itself (std::terminate).
        self._queue.set_callback(self._layers.on_request_done)

    def layer_profile(self) -> list[LayerTiming]:
        """Each executed node's real (wall) and CPU time summed over the inferences since loading or the
        last call, its exec type as the kernel, the precision it ran in; nodes fused into another (NOT_RUN)
        are left out, their time being the other node's."""
        return self._layers.take()


def _runtime_precisions(compiled: Any) -> dict[str, str]:
    """Each executed node's runtimePrecision, from the compiled model's runtime graph (the names match
    the profiling counters' node names)."""
    out: dict[str, str] = {}
    try:
        ops = compiled.get_runtime_model().get_ordered_ops()
    except Exception:  # a device without a runtime model: the exec types' suffixes still tell
        return out
    for op in ops:
        info = op.get_rt_info()
        if "runtimePrecision" in info and (p := _precision(info["runtimePrecision"].astype(str))):
            out[op.get_friendly_name()] = p
    return out


class OpenVinoBackend(Backend):
    name = "openvino"
    formats = (ModelFormat.OPENVINO, ModelFormat.ONNX, ModelFormat.TORCH_EXPORT, ModelFormat.TORCH_FACTORY,
               ModelFormat.SAVED_MODEL, ModelFormat.KERAS)
    distribution = "openvino"
    can_profile = True

    def available(self) -> bool:
        return importlib.util.find_spec("openvino") is not None

    def devices(self) -> list[str]:
        import openvino as ov

        return [d.lower() for d in ov.Core().available_devices]

    def accepts_device(self, device: str) -> bool:
        return bool(_DEVICE.match(device))

    def cpu_share(self, params: Mapping[str, Scalar], cores: int) -> dict[str, Scalar]:
        # unpinned: two compiled models would otherwise pin their threads to the same first cores
        return {**params, "inference_threads": params.get("inference_threads") or cores, "pinning": False}

    def knobs(self, device: str) -> dict[str, Knob]:
        return {k.name: k for k in (
            choice_knob("performance_hint", "OpenVINO's high-level tuning goal (left out: THROUGHPUT in the "
                        "throughput modes, LATENCY otherwise)", "LATENCY",
                        ["LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT", "none"]),
            int_knob("num_streams", "parallel execution streams (0: chosen by the hint)", 0),
            int_knob("num_requests", "infer requests kept in flight in throughput mode (0: auto: the "
                     "compiled model's OPTIMAL_NUMBER_OF_INFER_REQUESTS)", 0, per_core=2, async_only=True),
            int_knob("inference_threads", "CPU threads for inference (0: all)", 0),
            choice_knob("inference_precision", "precision of computation (set explicitly: this CPU "
                        "defaults to bf16)", "f32", ["f32", "bf16", "f16"], searched=False),
            bool_knob("pinning", "pin inference threads to cores", True),
            cpus_knob(),
        )}

    def mode_defaults(self, device: str, mode: str) -> dict[str, Scalar]:
        # What benchmark_app does for throughput: the THROUGHPUT hint, and the device's optimal number of
        # requests (num_requests 0) in flight.
        return {"performance_hint": "THROUGHPUT"} if is_async(mode) else {}

    def precision_of(self, params: Mapping[str, Scalar]) -> str | None:
        return {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}.get(str(params.get("inference_precision", "f32")))

    def cache_environment(self, folder: str) -> dict[str, str]:
        return {CACHE_VARIABLE: f"{folder}/openvino"}

    def convert(self, model: Artifact, inputs: list[TensorSpec] | None) -> None:
        self._readable(model, inputs)

    @staticmethod
    def _readable(model: Artifact, inputs: list[TensorSpec] | None) -> Path:
        """A file OpenVINO reads for `model`: its own (IR, ONNX), or a conversion (cached)."""
        return readable_by(model, "openvino", inputs)

    def load(self, model: Artifact, device: str, params: Mapping[str, Scalar],
             inputs: list[TensorSpec] | None = None, mode: str = "latency", profile: bool = False) -> Session:
        import openvino as ov

        core = ov.Core()
        dev = ov_device(device)
        if device.lower() in ("cpu", "gpu") or device.lower().startswith("gpu."):
            present = [d.upper() for d in core.available_devices]
            if dev not in present and not (dev == "GPU" and any(p.startswith("GPU") for p in present)):
                raise BackendError(f"device '{device}' is not present for OpenVINO here; available: "
                                   f"{[p.lower() for p in present]}")
        path = self._readable(model, inputs)
        try:
            ov_model = core.read_model(str(path))
        except Exception as exc:
            raise ModelError(f"{path}: OpenVINO cannot read the model ({str(exc).splitlines()[0]})") from exc
        if inputs:
            # Static shapes for the trial's batch: the fastest plan, and what benchmark_app -shape does.
            ov_model.reshape({s.name: ov.PartialShape(list(s.shape)) for s in inputs})
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": str(params.get("inference_precision") or "f32"),
                                  "PERF_COUNT": "YES" if profile else "NO"}
        hint = str(params.get("performance_hint") or self.mode_defaults(device, mode).get("performance_hint")
                   or "LATENCY")
        if hint != "none":
            config["PERFORMANCE_HINT"] = hint
        if params.get("num_streams"):
            config["NUM_STREAMS"] = str(params["num_streams"])
        if params.get("inference_threads"):
            config["INFERENCE_NUM_THREADS"] = int(params["inference_threads"] or 0)
        if params.get("num_requests"):
            config["PERFORMANCE_HINT_NUM_REQUESTS"] = int(params["num_requests"] or 0)
        if dev == "CPU":
            config["ENABLE_CPU_PINNING"] = bool(params.get("pinning", True))
        if os.environ.get(CACHE_VARIABLE):  # a tuning: the compiled model is kept for its later trials
            config["CACHE_DIR"] = os.environ[CACHE_VARIABLE]
        try:
            compiled = core.compile_model(ov_model, dev, config)
        except Exception as exc:
            raise BackendError(f"OpenVINO cannot compile for '{device}' ({str(exc).splitlines()[0]})") from exc
        effective: dict[str, Scalar] = {}
        for prop in _PROPS:
            try:
                effective[prop.lower()] = _plain(compiled.get_property(prop))
            except Exception:  # a device may not report every property
                continue
        nireq = int(params.get("num_requests") or 0) or int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        effective["in_flight"] = nireq
        notes = []
        streams = effective.get("num_streams")
        if is_async(mode) and nireq > 1 and isinstance(streams, int) and streams == 1:
            notes.append(f"openvino: {nireq} requests in flight on 1 execution stream run one after another, "
                         f"not in parallel (performance_hint {hint}; THROUGHPUT or num_streams > 1 runs them "
                         "side by side)")
        info = SessionInfo(effective=effective, notes=notes,
                           runtime={"openvino": ov.get_version(), "device": dev,
                                    "device_name": str(core.get_property(dev.split(".")[0], "FULL_DEVICE_NAME"))
                                    if dev in ("CPU", "GPU") else dev})
        specs = inputs if inputs is not None else [
            TensorSpec(i.get_any_name(), tuple(i.get_partial_shape().get_min_shape()),
                       str(i.get_element_type().to_dtype())) for i in compiled.inputs]
        if profile:
            return ProfiledOpenVinoSession(compiled, specs, info, nireq, device.lower())
        return OpenVinoSession(compiled, specs, info, nireq)
