"""TensorFlow: a SavedModel's serving signature or a Keras .keras model, run as a graph (tf.function) with or
without XLA (jit_compile), on the CPU and on a GPU that TensorFlow sees."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from inferlab.backends.base import (
    Backend,
    Constraint,
    Knob,
    Scalar,
    Session,
    SessionInfo,
    bool_knob,
    choice_knob,
    cpus_knob,
    int_knob,
    is_async,
    usable_cores,
)
from inferlab.errors import BackendError, ModelError
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.models.convert_tf import import_tf, load_keras, quiet_environment
from inferlab.models.tensors import TensorSpec

_CUDA = re.compile(r"^cuda(:\d+)?$")
# TensorFlow's grappler rewrites that run a graph in a lower precision (the model's weights stay float32)
_REWRITES = {"bf16": "auto_mixed_precision_onednn_bfloat16", "fp16": "auto_mixed_precision"}


def tf_device(device: str) -> str:
    return "/CPU:0" if device == "cpu" else f"/GPU:{device.split(':')[1] if ':' in device else 0}"


class TensorFlowSession(Session):
    def __init__(self, fn: Any, inputs: list[TensorSpec], outputs: list[TensorSpec], info: SessionInfo,
                 device: str, recommended: int, keep: Any) -> None:
        self._fn = fn
        self._keep = keep  # the loaded object: its functions fail once it is collected
        self.inputs = inputs
        self.outputs = outputs
        self.info = info
        self._device = device
        self._gpu = device != "cpu"
        self._recommended = recommended

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> Any:
        import tensorflow as tf

        with tf.device(tf_device(self._device)):  # on a GPU the inputs are copied there once, untimed
            return [tf.identity(tf.constant(np.asarray(feeds[s.name], dtype=s.dtype))) for s in self.inputs]

    def run(self, prepared: Any) -> Any:
        out = self._fn(*prepared)
        if self._gpu:  # a GPU's work is queued: wait for it, so that what is timed is the inference
            import tensorflow as tf

            tf.test.experimental.sync_devices()
        return out

    def outputs_of(self, raw: Any) -> dict[str, np.ndarray]:
        return {o.name: np.asarray(raw[o.name]) for o in self.outputs}

    def recommended_in_flight(self) -> int:
        return self._recommended


def _set_threads(tf: Any, intra: int, inter: int) -> list[str]:
    """Set TensorFlow's process-wide thread pools; they are fixed at its first op, so a second session in one
    process keeps the first one's (said in a note)."""
    notes = []
    for what, want, get, put in (
            ("intra-op", intra, tf.config.threading.get_intra_op_parallelism_threads,
             tf.config.threading.set_intra_op_parallelism_threads),
            ("inter-op", inter, tf.config.threading.get_inter_op_parallelism_threads,
             tf.config.threading.set_inter_op_parallelism_threads)):
        try:
            put(want)
        except RuntimeError:
            if get() != want:
                notes.append(f"tensorflow: {what} threads stay {get() or 'auto'} (fixed at this process's first "
                             f"TensorFlow op), not {want or 'auto'}")
    return notes


def _signature_fn(tf: Any, artifact: Artifact) -> tuple[Any, Any, list[str]]:
    """(callable taking the inputs by name, the object to keep alive, output names) of a SavedModel's serving
    signature or a Keras model."""
    if artifact.format is ModelFormat.SAVED_MODEL:
        try:
            loaded = tf.saved_model.load(str(artifact.path))
        except Exception as exc:
            raise ModelError(f"{artifact.ref}: TensorFlow cannot load the SavedModel "
                             f"({str(exc).strip().splitlines()[0][:200]})") from exc
        sig = loaded.signatures.get("serving_default")
        if sig is None:
            raise ModelError(f"{artifact.ref}: the SavedModel has no 'serving_default' serving signature; export it "
                             "with model.export(PATH)")
        names = sorted(sig.structured_outputs)
        return (lambda **kw: sig(**kw)), loaded, names
    model = load_keras(artifact.path)
    names = list(getattr(model, "output_names", None) or [f"output_{i}" for i in range(len(model.outputs))])

    def call(**kw: Any) -> dict[str, Any]:
        args = [kw[t.name.split(":")[0]] if t.name.split(":")[0] in kw else next(iter(kw.values()))
                for t in model.inputs]
        out = model(args[0] if len(args) == 1 else args, training=False)
        outs = out if isinstance(out, list | tuple) else [out]
        return dict(zip(names, outs, strict=True))
    return call, model, names


def _xla_error(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    ops = sorted(set(re.findall(r"(\w+) \(No registered '", text)))
    if ops:
        return f"no XLA kernel for {', '.join(ops)}"
    m = re.search(r"unsupported operations[^:]*:?\s*(.{0,160})", text, re.IGNORECASE)
    return m.group(1) if m else text[:200]


class TensorFlowBackend(Backend):
    name = "tensorflow"
    formats = (ModelFormat.SAVED_MODEL, ModelFormat.KERAS)
    distribution = "tensorflow-cpu"

    def available(self) -> bool:
        return importlib.util.find_spec("tensorflow") is not None

    def version(self) -> str | None:
        from importlib.metadata import PackageNotFoundError, version

        for dist in ("tensorflow-cpu", "tensorflow"):
            try:
                return version(dist)
            except PackageNotFoundError:
                continue
        return None

    def devices(self) -> list[str]:
        from importlib.metadata import PackageNotFoundError, version

        try:
            version("tensorflow")
        except PackageNotFoundError:  # tensorflow-cpu alone: no GPU to ask for, and no 5 s import to ask
            return ["cpu"]
        tf = import_tf()
        return ["cpu", *(f"cuda:{i}" for i, _ in enumerate(tf.config.list_physical_devices("GPU")))]

    def accepts_device(self, device: str) -> bool:
        return device == "cpu" or bool(_CUDA.match(device))

    def device_kinds(self) -> list[str]:
        return ["cpu", "cuda:0"]

    def knobs(self, device: str) -> dict[str, Knob]:
        precisions = ["fp32", "bf16"] if device == "cpu" else ["fp32", "fp16", "bf16"]
        return {k.name: k for k in (
            bool_knob("jit_compile", "compile the graph with XLA (tf.function(jit_compile=True))", False),
            int_knob("intra_op_threads", "threads inside one op (0: TensorFlow's default, every core)", 0),
            int_knob("inter_op_threads", "ops run side by side (0: TensorFlow's default)", 0),
            choice_knob("precision", "compute precision: TensorFlow's auto mixed precision rewrite of the graph "
                        "(bf16 through oneDNN on a CPU, fp16 on a GPU); weights stay float32", "fp32", precisions,
                        searched=False),
            int_knob("in_flight", "requests kept in flight in throughput mode (0: auto: cores / intra_op_threads "
                     "when the threads are given, else 1)", 0, per_core=1, async_only=True),
            cpus_knob(),
        )}

    def constraints(self, device: str) -> tuple[Constraint, ...]:
        return (Constraint("jit_compile", (True,), "precision", ("fp32",),
                           "TensorFlow's mixed-precision rewrite does not reach a graph XLA compiles"),)

    def precision_of(self, params: Mapping[str, Scalar]) -> str | None:
        return str(params.get("precision") or "fp32")

    def cpu_share(self, params: Mapping[str, Scalar], cores: int) -> dict[str, Scalar]:
        return {**params, "intra_op_threads": params.get("intra_op_threads") or cores}

    def thread_environment(self, params: Mapping[str, Scalar]) -> dict[str, str]:
        return quiet_environment()

    def preflight(self, model: Artifact, device: str, params: Sequence[Mapping[str, Scalar]],
                  inputs: list[TensorSpec]) -> None:
        """With jit_compile asked for, check in a process of its own that XLA compiles the model on `device`,
        so that a model XLA cannot take is refused before any trial runs."""
        if not any(p.get("jit_compile") for p in params):
            return
        probe = {"ref": model.ref, "format": model.format.value, "device": tf_device(device),
                 "inputs": [[s.name, list(s.shape), s.dtype] for s in inputs]}
        proc = subprocess.run([sys.executable, "-m", "inferlab.backends.tf", json.dumps(probe)], capture_output=True,
                              text=True, env={**os.environ, **quiet_environment()}, timeout=600)
        if proc.returncode != 0:
            lines = [line for line in proc.stdout.splitlines() if line.startswith("XLA:")]
            why = lines[-1][4:].strip() if lines else (proc.stderr.strip().splitlines() or ["no message"])[-1][:200]
            raise BackendError(f"jit_compile: XLA cannot compile {model.rel} on {device} ({why}); set jit_compile "
                               "false for this model")

    def load(self, model: Artifact, device: str, params: Mapping[str, Scalar],
             inputs: list[TensorSpec] | None = None, mode: str = "latency", profile: bool = False) -> Session:
        tf = import_tf()
        intra, inter = int(params.get("intra_op_threads") or 0), int(params.get("inter_op_threads") or 0)
        notes = _set_threads(tf, intra, inter)
        precision = str(params.get("precision") or "fp32")
        tf.config.optimizer.set_experimental_options({v: k == precision for k, v in _REWRITES.items()})
        if device != "cpu" and not tf.config.list_physical_devices("GPU"):
            raise BackendError(f"device '{device}': TensorFlow sees no GPU here (tensorflow-cpu has no GPU support); "
                               "use device cpu, or install TensorFlow with CUDA")
        if inputs is None:
            raise ModelError(f"{model.ref}: loading a TensorFlow model needs the input specs")
        jit = bool(params.get("jit_compile"))
        with tf.device(tf_device(device)):
            call, keep, out_names = _signature_fn(tf, model)
            names = [s.name for s in inputs]
            fn = tf.function(lambda *xs: call(**dict(zip(names, xs, strict=True))), jit_compile=jit,
                             input_signature=[tf.TensorSpec(s.shape, s.dtype, name=s.name) for s in inputs])
            try:  # trace (and with XLA compile) now, so that load time includes it and a failure names the cause
                first = fn(*[tf.zeros(s.shape, s.dtype) for s in inputs])
            except Exception as exc:
                if jit:
                    raise BackendError(f"jit_compile: XLA cannot compile {model.rel} ({_xla_error(exc)}); set "
                                       "jit_compile false for this model") from exc
                raise ModelError(f"{model.ref}: TensorFlow cannot run the model "
                                 f"({' '.join(str(exc).split())[:200]})") from exc
        outputs = [TensorSpec(n, tuple(int(d) for d in first[n].shape), np.dtype(first[n].dtype.as_numpy_dtype).name)
                   for n in out_names]
        cores = usable_cores()
        in_flight = int(params.get("in_flight") or 0) or (max(1, cores // intra) if intra and is_async(mode) else 1)
        info = SessionInfo(
            effective={"jit_compile": jit, "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads()
                       or cores, "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
                       "precision": precision, "in_flight": in_flight},
            runtime={"tensorflow": tf.__version__, "device": tf_device(device)}, notes=notes)
        return TensorFlowSession(fn, inputs, outputs, info, device, in_flight, keep)


def _probe(arg: str) -> int:
    """`python -m inferlab.backends.tf PROBE`: compile a model with XLA (see preflight); prints `XLA: why`."""
    spec = json.loads(arg)
    tf = import_tf()
    artifact = Artifact("probe", spec["ref"], ModelFormat(spec["format"]), "")
    inputs = [TensorSpec(n, tuple(s), d) for n, s, d in spec["inputs"]]
    with tf.device(spec["device"]):
        call, keep, _ = _signature_fn(tf, artifact)
        names = [s.name for s in inputs]
        fn = tf.function(lambda *xs: call(**dict(zip(names, xs, strict=True))), jit_compile=True)
        try:
            fn.experimental_get_compiler_ir(*[tf.zeros(s.shape, s.dtype) for s in inputs])(stage="hlo")
        except Exception as exc:
            print(f"XLA: {_xla_error(exc)}")
            return 1
    del keep
    return 0


if __name__ == "__main__":
    sys.exit(_probe(sys.argv[1]))
