"""LiteRT (TensorFlow Lite) through ai-edge-litert: a .tflite model, float or INT8, with or without the XNNPACK
delegate; a Keras or SavedModel model is converted to a float .tflite first (cached, needs TensorFlow)."""

from __future__ import annotations

import importlib.util
import queue
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
    cpus_knob,
    int_knob,
    is_async,
    oversubscribed,
    split_cores,
    usable_cores,
)
from inferlab.errors import ModelError
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.models.tensors import TensorSpec
from inferlab.models.tflite import Port, dequantize, interpreter, ports, quantize


class LiteRtSession(Session):
    """One interpreter per request in flight (an interpreter runs one inference at a time), taken from a pool."""

    def __init__(self, interpreters: list[Any], ins: list[Port], outs: list[Port], info: SessionInfo) -> None:
        self._free: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for it in interpreters:
            self._free.put(it)
        self._count = len(interpreters)
        self._ins, self._outs = ins, outs
        self.inputs = [p.spec() for p in ins]
        self.outputs = [p.spec() for p in outs]
        self.info = info

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> Any:
        # real values to the stored integers of an INT8 model's input, once, untimed
        return [np.ascontiguousarray(quantize(feeds[p.name], p)) for p in self._ins]

    def run(self, prepared: Any) -> Any:
        it = self._free.get()
        try:
            for port, x in zip(self._ins, prepared, strict=True):
                it.set_tensor(port.index, x)
            it.invoke()
            return [it.get_tensor(p.index) for p in self._outs]  # copies: the interpreter reuses its buffers
        finally:
            self._free.put(it)

    def outputs_of(self, raw: Any) -> dict[str, np.ndarray]:
        return {p.name: dequantize(q, p) for p, q in zip(self._outs, raw, strict=True)}

    def recommended_in_flight(self) -> int:
        return self._count


def _sized(path: Any, threads: int, xnnpack: bool, inputs: list[TensorSpec] | None) -> Any:
    """An interpreter with its inputs resized to the trial's shapes."""
    it = interpreter(path, threads, xnnpack)
    if inputs:
        ins = {p.name: p for p in ports(it)[0]}
        current = {d["index"]: tuple(int(x) for x in d["shape"]) for d in it.get_input_details()}
        changed = False
        for s in inputs:
            port = ins.get(s.name)
            if port is None:
                raise ModelError(f"{path}: the model has no input '{s.name}' (it has {sorted(ins)})")
            if current[port.index] != tuple(s.shape):
                it.resize_tensor_input(port.index, list(s.shape), strict=False)
                changed = True
        if changed:
            try:
                it.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                raise ModelError(f"{path}: LiteRT cannot run the model at shapes "
                                 f"{[list(s.shape) for s in inputs]} ({' '.join(str(exc).split())[:200]})") from None
    return it


class LiteRtBackend(Backend):
    name = "litert"
    formats = (ModelFormat.TFLITE, ModelFormat.KERAS, ModelFormat.SAVED_MODEL)
    distribution = "ai-edge-litert"

    def available(self) -> bool:
        return importlib.util.find_spec("ai_edge_litert") is not None

    def knobs(self, device: str) -> dict[str, Knob]:
        return {k.name: k for k in (
            int_knob("threads", "threads per interpreter (0: auto: every core when one request runs at a time; in "
                     "throughput modes the cores split across the requests in flight)", 0),
            bool_knob("xnnpack", "run the ops it covers through the XNNPACK delegate (LiteRT's default); false: "
                      "LiteRT's own builtin kernels", True),
            int_knob("in_flight", "requests kept in flight in throughput mode, one interpreter each (0: auto: one "
                     "per core)", 0, per_core=1, async_only=True),
            cpus_knob(),
        )}

    def cpu_share(self, params: Mapping[str, Scalar], cores: int) -> dict[str, Scalar]:
        return {**params, "threads": params.get("threads") or cores}

    def convert(self, model: Artifact, inputs: list[TensorSpec] | None) -> None:
        self._tflite(model)

    @staticmethod
    def _tflite(model: Artifact) -> Path:
        """The .tflite file of `model`: its own, or the float conversion of a TensorFlow model (cached)."""
        if model.format in (ModelFormat.KERAS, ModelFormat.SAVED_MODEL):
            from inferlab.models.convert_tf import converted

            return converted(model, "tflite")
        if model.format is not ModelFormat.TFLITE:
            raise ModelError(f"{model.ref}: LiteRT cannot load a {model.format.value} model")
        return model.path

    def load(self, model: Artifact, device: str, params: Mapping[str, Scalar],
             inputs: list[TensorSpec] | None = None, mode: str = "latency", profile: bool = False) -> Session:
        from importlib.metadata import version

        path = self._tflite(model)
        cores = usable_cores()
        threads, in_flight = int(params.get("threads") or 0), int(params.get("in_flight") or 0)
        if is_async(mode):
            in_flight, threads = split_cores(cores, in_flight, threads)
        else:
            in_flight, threads = in_flight or 1, threads or cores
        xnnpack = bool(params.get("xnnpack", True))
        interpreters = [_sized(path, threads, xnnpack, inputs) for _ in range(in_flight)]
        ins, outs = ports(interpreters[0])
        notes = []
        if is_async(mode) and (note := oversubscribed("litert", in_flight, threads, cores)):
            notes.append(note)
        quantized = any(p.quant for p in ins + outs)
        info = SessionInfo(
            effective={"threads": threads, "xnnpack": xnnpack, "in_flight": in_flight,
                       "io": "int8, quantized from float by inferlab" if quantized else "float"},
            runtime={"ai-edge-litert": version("ai-edge-litert"), "device": "cpu"}, notes=notes)
        session = LiteRtSession(interpreters, ins, outs, info)
        if inputs is not None:  # the trial's shapes (a resized batch), in the trial's order
            by_name = {p.name: p.spec() for p in ins}
            session.inputs = [TensorSpec(s.name, s.shape, by_name[s.name].dtype) for s in inputs]
        return session
