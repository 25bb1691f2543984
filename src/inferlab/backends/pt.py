"""PyTorch: CPU and CUDA; eager, torch.compile and CUDA graphs. CUDA runs synchronise before returning."""

from __future__ import annotations

import importlib.util
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from inferlab.backends.base import (
    Backend,
    Constraint,
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
from inferlab.backends.split import CROSSING, Placement, check_rules, split
from inferlab.errors import BackendError
from inferlab.models.artifact import Artifact, ModelFormat
from inferlab.models.convert import load_exported, load_torch_module
from inferlab.models.inputs import make_pool
from inferlab.models.tensors import TensorSpec

_CUDA = re.compile(r"^cuda(:\d+)?$")
# Requests in flight when left to inferlab. On cpu each request is a Python thread and the GIL serialises
# the Python between operators, so beyond a few requests more threads per request win (16 cores: 4x4 beat
# 16x1 and 8x2 on the example models, or came within 8%). On cuda a second request on its own stream
# gave no steady gain (H200, example CNNs, batch 1..128: 2 vs 1 request from -17% at batch 8 to +11% at 128).
CPU_MAX_IN_FLIGHT = 4
CUDA_IN_FLIGHT = 1
_default_threads: int | None = None  # torch's own intra-op thread count, before inferlab set any


class TorchSession(Session):
    def __init__(self, module: Any, device: str, dtype: Any, channels_last: bool, cuda_graphs: bool,
                 inference_mode: bool, inputs: list[TensorSpec], info: SessionInfo, in_flight: int) -> None:
        import torch

        self._torch = torch
        self._module = module
        self._device = torch.device(device)
        self._cuda = self._device.type == "cuda"
        self._dtype = dtype
        self._channels_last = channels_last
        self._use_graphs = cuda_graphs and self._cuda
        self._graph: Any = None
        self._static_in: list[Any] = []
        self._static_out: Any = None
        self._grad_ctx = torch.inference_mode if inference_mode else torch.no_grad
        self._local = threading.local()
        self.inputs = inputs
        self.outputs = []
        self.info = info
        self._in_flight = in_flight

    def recommended_in_flight(self) -> int:
        return self._in_flight

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> Any:
        torch = self._torch
        out = []
        for spec in self.inputs:
            t = torch.from_numpy(np.require(feeds[spec.name], requirements="C")).to(self._device)
            if t.is_floating_point():
                t = t.to(self._dtype)
                if self._channels_last and t.dim() == 4:
                    t = t.contiguous(memory_format=torch.channels_last)
            out.append(t)
        if self._cuda:
            torch.cuda.synchronize(self._device)
        return tuple(out)

    def _stream(self) -> Any:
        # Each worker thread of throughput mode gets its own CUDA stream, so requests overlap.
        s = getattr(self._local, "stream", None)
        if s is None:
            s = self._torch.cuda.Stream(self._device)
            self._local.stream = s
        return s

    def run(self, prepared: Any) -> Any:
        torch = self._torch
        if self._use_graphs:
            return self._replay(prepared)
        with self._grad_ctx():
            if self._cuda and threading.current_thread() is not threading.main_thread():
                stream = self._stream()
                with torch.cuda.stream(stream):
                    out = self._module(*prepared)
                stream.synchronize()
                return out
            out = self._module(*prepared)
        if self._cuda:
            torch.cuda.synchronize(self._device)
        return out

    def _replay(self, prepared: Any) -> Any:
        torch = self._torch
        if self._graph is None:
            self._static_in = [t.clone() for t in prepared]
            with self._grad_ctx():
                side = torch.cuda.Stream(self._device)
                side.wait_stream(torch.cuda.current_stream(self._device))
                with torch.cuda.stream(side):
                    for _ in range(3):  # warm up allocations outside the graph, as CUDA graphs require
                        self._module(*self._static_in)
                torch.cuda.current_stream(self._device).wait_stream(side)
                self._graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(self._graph):
                    self._static_out = self._module(*self._static_in)
        for dst, src in zip(self._static_in, prepared, strict=True):
            dst.copy_(src, non_blocking=True)
        self._graph.replay()
        torch.cuda.synchronize(self._device)
        return self._static_out

    def outputs_of(self, raw: Any) -> dict[str, np.ndarray]:
        torch = self._torch
        if isinstance(raw, torch.Tensor):
            raw = (raw,)
        elif isinstance(raw, dict):
            return {k: v.detach().float().cpu().numpy() for k, v in raw.items()}
        names = ["output"] if len(raw) == 1 else [f"output_{i}" for i in range(len(raw))]
        return {n: t.detach().float().cpu().numpy() if t.is_floating_point() else t.detach().cpu().numpy()
                for n, t in zip(names, raw, strict=True)}

    def close(self) -> None:
        super().close()
        self._graph = None
        if self._cuda:
            self._torch.cuda.empty_cache()


# The record each profiled inference runs in: the layers are its direct children in the profiler's tree.
INFERENCE_RECORD = "inferlab::inference"
_PRECISIONS = {"float32": "FP32", "float16": "FP16", "bfloat16": "BF16", "float64": "FP64"}


class ProfiledTorchSession(TorchSession):
    """An eager session whose inferences run under torch.profiler, each in a record named INFERENCE_RECORD,
    each layer in a record named by its module path (`layers`: record name -> layer type). The profiler
    runs from loading to the first `layer_profile` call, and from each call to the next.

    Requests in flight run on worker threads, which the profiler started on the loading thread may not see:
    a profile is taken from synchronous `run` calls on that thread, as the runner makes them."""

    def __init__(self, module: Any, device: str, dtype: Any, channels_last: bool, inference_mode: bool,
                 inputs: list[TensorSpec], info: SessionInfo, in_flight: int, layers: dict[str, str]) -> None:
        super().__init__(module, device, dtype, channels_last, False, inference_mode, inputs, info, in_flight)
        self._layers = layers
        self._precision = _PRECISIONS.get(str(dtype).replace("torch.", ""))
        self._profiler: Any = None
        self._start()

    def _start(self) -> None:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self._cuda else [])
        self._profiler = profile(activities=activities)
        self._profiler.start()

    def run(self, prepared: Any) -> Any:
        with self._torch.profiler.record_function(INFERENCE_RECORD):
            return super().run(prepared)

    def layer_profile(self) -> list[LayerTiming]:
        """Per layer, summed over the inferences since loading or the last call: on cpu the wall time of
        its record, on cuda the time of the GPU kernels launched under it (the host's time in `cpu_ms`);
        the kernel is the heaviest operator under it (on cuda, the heaviest GPU kernel). Operators outside
        any layer (a functional relu or add in a forward) are layers of their own, named by operator."""
        if self._profiler is None:
            return []
        self._profiler.stop()
        events = self._profiler.events()
        self._start()
        return _torch_layers(events, self._layers, str(self._device), self._cuda, self._precision)

    def close(self) -> None:
        if self._profiler is not None:
            self._profiler.stop()
            self._profiler = None
        super().close()


def _torch_layers(events: Any, layers: Mapping[str, str], device: str, cuda: bool,
                  precision: str | None) -> list[LayerTiming]:
    """Sum the layer records found directly under each inference record, in first-seen order."""
    from torch.autograd import DeviceType

    totals: dict[str, list[Any]] = {}  # name -> [type, time µs, host µs, {kernel: µs}]
    runs = sorted((e for e in events if e.name == INFERENCE_RECORD and e.device_type == DeviceType.CPU),
                  key=lambda e: e.time_range.start)
    for run in runs:
        seen: dict[str, int] = {}
        for child in sorted(run.cpu_children, key=lambda e: e.time_range.start):
            if child.name in layers:
                name, op_type = child.name, layers[child.name]
            elif "::" in child.name and not child.name.startswith("profiler::"):
                # An operator outside every layer: named by operator, numbered where it recurs in a run.
                seen[child.name] = seen.get(child.name, 0) + 1
                name = child.name if seen[child.name] == 1 else f"{child.name}#{seen[child.name]}"
                op_type = child.name
            else:  # the CUDA runtime's own calls (synchronise) and the like
                continue
            row = totals.setdefault(name, [op_type, 0.0, 0.0, {}])
            row[1] += child.device_time_total if cuda else child.cpu_time_total
            row[2] += child.cpu_time_total
            _heaviest(child, cuda, row[3])
    return [LayerTiming(name, op_type, time_us / 1e3, max(kernels, key=kernels.get) if kernels else None,
                        precision, host_us / 1e3 if cuda else None, device, order)
            for order, (name, (op_type, time_us, host_us, kernels)) in enumerate(totals.items())]


def _heaviest(event: Any, cuda: bool, kernels: dict[str, float]) -> None:
    """Add the time of what ran under `event` to `kernels`: on cpu each operator's own (self) time, on cuda
    each GPU kernel's; the heaviest of them names the layer's kernel."""
    stack = list(event.cpu_children)
    while stack:
        e = stack.pop()
        stack.extend(e.cpu_children)
        if cuda:
            for k in e.kernels:
                kernels[k.name] = kernels.get(k.name, 0.0) + k.duration
        elif "::" in e.name:
            kernels[e.name] = kernels.get(e.name, 0.0) + e.self_cpu_time_total


def instrument(module: Any) -> dict[str, str]:
    """Put each layer of `module` in a profiler record named by its module path; return record name -> layer
    type. An exported program's module (a GraphModule) has lost its leaf modules' forwards, but each node
    keeps the module stack it was traced in (nn_module_stack): records are inserted into its graph around
    each leaf module's run of nodes, and around each node a non-leaf forward runs itself (`stages.0.add`,
    typed by operator). A plain module gets forward hooks on its leaf modules."""
    import torch

    if isinstance(module, torch.fx.GraphModule) and any(n.meta.get("nn_module_stack") for n in module.graph.nodes):
        return _instrument_graph(module)
    return _instrument_hooks(module)


def _instrument_graph(gm: Any) -> dict[str, str]:
    import torch

    graph = gm.graph
    paths: set[str] = set()
    for node in graph.nodes:
        paths.update(str(v[0]) for v in (node.meta.get("nn_module_stack") or {}).values())

    def leaf(path: str) -> bool:
        return bool(path) and not any(p.startswith(path + ".") for p in paths)

    # Runs of consecutive nodes of one record: (name, type, first node, last node).
    groups: list[tuple[str, str, Any, Any]] = []
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        stack = node.meta.get("nn_module_stack") or {}
        path, cls = "", ""
        if stack:  # the innermost module the node was traced in
            where, kind = list(stack.values())[-1]
            path, cls = str(where), _class_name(kind)
        if leaf(path):
            if groups and groups[-1][0] == path and groups[-1][3].next is node:
                groups[-1] = (path, cls, groups[-1][2], node)
                continue
            groups.append((path, cls, node, node))
        else:
            groups.append((f"{path}.{node.name}" if path else node.name, _op_name(node.target), node, node))
    enter = torch.ops.profiler._record_function_enter_new.default
    leave = torch.ops.profiler._record_function_exit._RecordFunction
    for name, _, first, last in groups:
        with graph.inserting_before(first):
            handle = graph.call_function(enter, (name, None))
        with graph.inserting_after(last):
            graph.call_function(leave, (handle,))
    gm.recompile()
    return {name: cls for name, cls, _, _ in groups}


def _instrument_hooks(module: Any) -> dict[str, str]:
    import torch

    enter = torch.ops.profiler._record_function_enter_new.default
    leave = torch.ops.profiler._record_function_exit._RecordFunction
    layers: dict[str, str] = {}
    for path, sub in module.named_modules():
        if not path or next(sub.children(), None) is not None:
            continue  # the root is the whole model; a module with children is not a layer
        open_records: list[Any] = []  # a stack: a module may run inside its own forward

        def before(mod: Any, args: Any, name: str = path, records: list[Any] = open_records) -> None:
            records.append(enter(name, None))

        def after(mod: Any, args: Any, out: Any, records: list[Any] = open_records) -> None:
            leave(records.pop())

        sub.register_forward_pre_hook(before)
        sub.register_forward_hook(after)
        layers[path] = type(sub).__name__
    return layers


def _class_name(cls: Any) -> str:
    """A module class as nn_module_stack gives it (a class or its dotted name) -> Conv2d."""
    return cls.__name__ if isinstance(cls, type) else str(cls).rsplit(".", 1)[-1]


def _op_name(target: Any) -> str:
    """An FX call target as the profiler names it: aten.add.Tensor -> aten::add."""
    parts = str(target).split(".")
    return f"{parts[0]}::{parts[1]}" if len(parts) >= 2 else str(target)


class TorchBackend(Backend):
    name = "torch"
    formats = (ModelFormat.TORCH_EXPORT, ModelFormat.TORCH_FACTORY)
    distribution = "torch"
    can_profile = True
    can_split = True

    def available(self) -> bool:
        return importlib.util.find_spec("torch") is not None

    def devices(self) -> list[str]:
        import torch

        return ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]

    def accepts_device(self, device: str) -> bool:
        return device == "cpu" or bool(_CUDA.match(device))

    def device_kinds(self) -> list[str]:
        return ["cpu", "cuda:0"]

    def knobs(self, device: str) -> dict[str, Knob]:
        gpu = device != "cpu"
        return {k.name: k for k in (
            # CPU placement is fixed on a GPU trial unless named: the host threads only launch kernels there.
            int_knob("threads", "intra-op CPU threads, per request (0: auto: torch's default when one request "
                     "runs at a time; in throughput modes on cpu the cores split across the requests in "
                     "flight)", 0, searched=not gpu),
            int_knob("interop_threads", "inter-op CPU threads (0: torch's default)", 0, searched=not gpu),
            # On cuda half precision and the compiler are where the speed is, so a tuning tries them; on cpu
            # they are named to be searched (bfloat16 needs a CPU with bf16 units, compiling takes minutes).
            choice_knob("dtype", "compute precision of weights and float inputs", "float32",
                        ["float32", "float16", "bfloat16"], searched=gpu),
            bool_knob("channels_last", "NHWC memory layout for 4-D tensors", False),
            choice_knob("compile", "torch.compile mode (a tuning on cuda tries off, default and reduce-overhead; "
                        "max-autotune compiles for minutes and is searched when named)", "off",
                        ["off", "default", "reduce-overhead", "max-autotune"], searched=gpu,
                        search=("off", "default", "reduce-overhead")),
            bool_knob("cuda_graphs", "capture the forward pass as a CUDA graph and replay it (CUDA only)",
                      False, searched=gpu),
            bool_knob("inference_mode", "torch.inference_mode instead of no_grad", True, searched=not gpu),
            int_knob("in_flight", "requests kept in flight in throughput mode, each on its own thread "
                     f"(and CUDA stream); 0: auto: on cpu enough to keep every core busy (cores / threads, "
                     f"at most {CPU_MAX_IN_FLIGHT} when threads is auto too), on cuda {CUDA_IN_FLIGHT}", 0,
                     per_core=2, async_only=True, search=(1, 2, 4) if gpu else ()),
            cpus_knob(searched=not gpu),
        )}

    def constraints(self, device: str) -> tuple[Constraint, ...]:
        if device == "cpu":
            return ()
        graphs = ("reduce-overhead", "max-autotune")
        return (
            Constraint("cuda_graphs", (True,), "in_flight", (0, 1), "one captured graph replays into shared "
                       "buffers, so it serves one request at a time"),
            Constraint("compile", graphs, "cuda_graphs", (False,), "these compile modes capture CUDA graphs "
                       "themselves"),
            Constraint("compile", graphs, "in_flight", (0, 1), "the CUDA graphs these compile modes capture "
                       "serve one request at a time"),
        )

    def seeds(self, device: str) -> tuple[dict[str, Scalar], ...]:
        # On a GPU: half precision, the compiler, NHWC and a captured graph, the usual fastest path for CNNs
        return () if device == "cpu" else (
            {"dtype": "float16", "compile": "default", "channels_last": True, "cuda_graphs": True},)

    def precision_of(self, params: Mapping[str, Scalar]) -> str | None:
        return {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}.get(str(params.get("dtype", "float32")))

    def cpu_share(self, params: Mapping[str, Scalar], cores: int) -> dict[str, Scalar]:
        # torch's intra-op thread count is process-wide: the last member loaded sets it for all
        return {**params, "threads": params.get("threads") or cores}

    def thread_environment(self, params: Mapping[str, Scalar]) -> dict[str, str]:
        threads = params.get("threads") or 0
        return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else {}

    def cache_environment(self, folder: str) -> dict[str, str]:
        # inductor's FX graph cache (on by default) and Triton's kernels, kept with the run instead of /tmp
        return {"TORCHINDUCTOR_CACHE_DIR": f"{folder}/inductor", "TRITON_CACHE_DIR": f"{folder}/triton",
                "TORCHINDUCTOR_FX_GRAPH_CACHE": "1"}

    def load(self, model: Artifact, device: str, params: Mapping[str, Scalar],
             inputs: list[TensorSpec] | None = None, mode: str = "latency", profile: bool = False) -> Session:
        return self._load(model, device, params, inputs, mode, profile)

    def check_split(self, model: Artifact, affinity: Sequence[tuple[str, str]], inputs: list[TensorSpec]) -> None:
        if affinity:
            check_rules(_graph_module(model, inputs), affinity, model.name)

    def load_split(self, model: Artifact, devices: Sequence[str], params: Mapping[str, Scalar],
                   inputs: list[TensorSpec] | None, mode: str, affinity: Sequence[tuple[str, str]]) -> Session:
        return self._load(model, f"hetero:{','.join(devices)}", params, inputs, mode, False, (devices, affinity))

    def _load(self, model: Artifact, device: str, params: Mapping[str, Scalar], inputs: list[TensorSpec] | None,
              mode: str, profile: bool,
              split_over: tuple[Sequence[str], Sequence[tuple[str, str]]] | None = None) -> Session:
        import torch

        global _default_threads
        members = list(split_over[0]) if split_over else [device]
        if any(d != "cpu" for d in members) and not torch.cuda.is_available():
            raise BackendError(f"device '{device}': this torch build sees no CUDA device; use device cpu")
        if split_over and (params.get("compile") not in (None, "off") or params.get("cuda_graphs")):
            raise BackendError(f"device '{device}': a model split across devices runs eagerly; set compile off "
                               "and cuda_graphs false")
        if _default_threads is None:
            _default_threads = torch.get_num_threads()
        compile_mode = str(params.get("compile") or "off")
        cuda_graphs = bool(params.get("cuda_graphs"))
        if profile and (compile_mode != "off" or cuda_graphs):
            # A compiled or captured forward runs fused kernels with no module boundaries left to record.
            raise BackendError("torch: a per-layer profile needs compile off and cuda_graphs false (compiled "
                               "and captured graphs keep no layer boundaries); profile an eager trial")
        threads, in_flight = int(params.get("threads") or 0), int(params.get("in_flight") or 0)
        cores = usable_cores()
        if device == "cpu" and is_async(mode):
            in_flight, threads = split_cores(cores, in_flight, threads, CPU_MAX_IN_FLIGHT)
        elif device != "cpu" and is_async(mode):
            in_flight = in_flight or CUDA_IN_FLIGHT
        in_flight = in_flight or 1
        # The thread count is process-wide; set it on every load so a session does not inherit another's.
        torch.set_num_threads(threads or _default_threads)
        if params.get("interop_threads"):
            torch.set_num_interop_threads(int(params["interop_threads"] or 0))
        dtype = getattr(torch, str(params.get("dtype") or "float32"))
        if dtype is torch.float16 and device == "cpu":
            raise BackendError("torch dtype float16 is not supported on cpu here; use bfloat16 or float32")
        placement = None
        if split_over:
            module = _graph_module(model, list(inputs or [])).to(dtype=dtype)
            placement = split(module, members, split_over[1])
            device = members[0]  # where inputs go in
        else:
            module = load_torch_module(model).to(device=device, dtype=dtype)
        channels_last = bool(params.get("channels_last"))
        if channels_last:
            module = module.to(memory_format=torch.channels_last)
        layers = instrument(module) if profile else {}
        if compile_mode != "off":
            module = torch.compile(module, mode=compile_mode)
        if cuda_graphs and device == "cpu":
            raise BackendError("cuda_graphs: CUDA graphs need a cuda device; set it false for cpu")
        if cuda_graphs and in_flight > 1:
            raise BackendError("cuda_graphs: one captured graph replays into shared buffers, so it cannot "
                               "serve several requests in flight; use in_flight 0 or 1 with it")
        runtime: dict[str, Scalar] = {"torch": torch.__version__, "device": device}
        gpu = next((d for d in members if d != "cpu"), None)
        if gpu is not None:
            runtime["device_name"] = torch.cuda.get_device_name(torch.device(gpu))
            runtime["cuda"] = torch.version.cuda
        if placement is not None:
            runtime["device"] = f"hetero:{','.join(members)}"
            runtime["placement"] = placement.summary()
            runtime["layers_per_device"] = ", ".join(
                f"{d}: {sum(1 for v in placement.layers.values() if v == d)}" for d in placement.ops)
        notes: list[str] = []
        if is_async(mode) and in_flight > 1:
            where = ("each on its own CUDA stream" if device != "cpu"
                     else f"each with {threads} intra-op thread{'s' * (threads != 1)}")
            notes.append(f"torch on {device}: the {in_flight} requests in flight run on Python threads, {where}; "
                         "the Python between operators holds the GIL, so requests overlap only while "
                         "operators run")
            if device == "cpu" and (note := oversubscribed("torch", in_flight, torch.get_num_threads(), cores)):
                notes.append(note)
        elif is_async(mode) and device != "cpu" and not int(params.get("in_flight") or 0):
            notes.append(f"torch on {device}: 1 request in flight (in_flight 0), as requests on separate CUDA "
                         "streams measured no steady gain; set in_flight to overlap requests")
        info = SessionInfo(
            effective={"threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
                       "dtype": str(dtype).replace("torch.", ""), "channels_last": channels_last,
                       "compile": compile_mode, "cuda_graphs": cuda_graphs,
                       "inference_mode": bool(params.get("inference_mode", True)),
                       "in_flight": in_flight},
            runtime=runtime, notes=notes)
        if profile:
            return ProfiledTorchSession(module, device, dtype, channels_last, bool(params.get("inference_mode", True)),
                                        list(inputs or []), info, in_flight, layers)
        if placement is not None:
            return SplitTorchSession(module, members, dtype, channels_last, bool(params.get("inference_mode", True)),
                                     list(inputs or []), info, in_flight, placement)
        return TorchSession(module, device, dtype, channels_last, cuda_graphs,
                            bool(params.get("inference_mode", True)), list(inputs or []), info, in_flight)


def _graph_module(model: Artifact, inputs: list[TensorSpec]) -> Any:
    """The model as a torch.export graph module on the CPU: a .pt2's own program, a factory's exported at the
    trial's input shapes."""
    import torch

    if model.format is ModelFormat.TORCH_EXPORT:
        return load_exported(model).module()
    example = tuple(torch.from_numpy(feeds) for feeds in make_pool(inputs, 1, 0)[0].values())
    return torch.export.export(load_torch_module(model), example).module()


class SplitTorchSession(TorchSession):
    """A model split across devices (`hetero:A,B`): inputs go to the first device, and a run waits for every
    CUDA device of the split. The bytes that cross devices per inference are counted and recorded at close."""

    def __init__(self, module: Any, devices: Sequence[str], dtype: Any, channels_last: bool, inference_mode: bool,
                 inputs: list[TensorSpec], info: SessionInfo, in_flight: int, placement: Placement) -> None:
        super().__init__(module, devices[0], dtype, channels_last, False, inference_mode, inputs, info, in_flight)
        self._gpus = [self._torch.device(d) for d in dict.fromkeys(devices) if d != "cpu"]
        self._runs = 0
        self.placement = placement

    def run(self, prepared: Any) -> Any:
        with self._grad_ctx():
            out = self._module(*prepared)
        for d in self._gpus:
            self._torch.cuda.synchronize(d)
        self._runs += 1
        return out

    def crossing_bytes(self) -> float | None:
        """Bytes copied between devices per inference, over the runs so far."""
        counter = getattr(self._module, CROSSING, None)
        return counter.bytes / self._runs if counter is not None and self._runs else None

    def close(self) -> None:
        per = self.crossing_bytes()
        if per is not None:
            self.info.runtime["crossing_mb_per_inference"] = round(per / 2**20, 3)
        super().close()
