"""A TensorFlow SavedModel's signatures, read from saved_model.pb without TensorFlow.

Planning must not pay TensorFlow's import (4-5 s, 0.6 GB) to learn a model's inputs, so this reads the few
fields it needs straight from the protobuf wire format: SavedModel.meta_graphs (2) → MetaGraphDef: meta_info_def
(1) → tags (4), and signature_def (5), a map from the signature's key to SignatureDef: inputs (1) and outputs (2),
maps from the argument's name to TensorInfo: name (1), dtype (2), tensor_shape (3) → dim (2) → size (1)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inferlab.errors import ModelError
from inferlab.models.inputs import infer_batch_axes
from inferlab.models.tensors import TensorSpec

SERVING = "serving_default"

# tensorflow/core/framework/types.proto DataType -> numpy names
_DTYPES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string", 9: "int64",
           10: "bool", 14: "bfloat16", 17: "uint16", 19: "float16", 22: "uint32", 23: "uint64"}


@dataclass(frozen=True)
class Signature:
    key: str
    inputs: tuple[TensorSpec, ...]   # in the order of their names (TensorFlow calls signatures by keyword)
    outputs: tuple[TensorSpec, ...]


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """The message's (field number, value) pairs in order: ints for varints, bytes for length-delimited."""
    out: list[tuple[int, int | bytes]] = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            out.append((number, value))
        elif wire == 2:
            size, i = _varint(buf, i)
            if i + size > len(buf):
                raise ValueError("truncated field")
            out.append((number, buf[i:i + size]))
            i += size
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"wire type {wire}")
    return out


def _get(buf: bytes, number: int) -> list[int | bytes]:
    return [v for n, v in _fields(buf) if n == number]


def _map(buf: bytes, number: int) -> dict[str, bytes]:
    """A map<string, message> field: entries with key 1 and value 2."""
    out = {}
    for entry in _get(buf, number):
        assert isinstance(entry, bytes)
        kv = dict(_fields(entry))
        key, value = kv.get(1, b""), kv.get(2, b"")
        assert isinstance(key, bytes) and isinstance(value, bytes)
        out[key.decode()] = value
    return out


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _spec(name: str, info: bytes) -> TensorSpec:
    dtype = next((v for v in _get(info, 2) if isinstance(v, int)), 1)
    shape_msg = next((v for v in _get(info, 3) if isinstance(v, bytes)), b"")
    dims: list[int] = []
    for dim in _get(shape_msg, 2):
        assert isinstance(dim, bytes)
        size = next((v for v in _get(dim, 1) if isinstance(v, int)), 0)
        dims.append(_signed(size))
    return TensorSpec(name, tuple(d if d >= 0 else -1 for d in dims), _DTYPES.get(dtype, f"dtype{dtype}"))


def signatures(folder: Path) -> dict[str, Signature]:
    """The serving graph's signatures (the meta graph tagged 'serve', else the first)."""
    data = (folder / "saved_model.pb").read_bytes()
    graphs = [g for g in _get(data, 2) if isinstance(g, bytes)]
    if not graphs:
        raise ValueError("no meta graph")
    chosen = graphs[0]
    for g in graphs:
        info = next((v for v in _get(g, 1) if isinstance(v, bytes)), b"")
        if b"serve" in [t for t in _get(info, 4) if isinstance(t, bytes)]:
            chosen = g
            break
    out = {}
    for key, sig in _map(chosen, 5).items():
        ins = tuple(_spec(n, i) for n, i in sorted(_map(sig, 1).items()))
        outs = tuple(_spec(n, i) for n, i in sorted(_map(sig, 2).items()))
        out[key] = Signature(key, ins, outs)
    return out


def serving_signature(ref: str, folder: Path) -> Signature:
    """The `serving_default` signature, or a one-line error saying what the SavedModel has instead."""
    try:
        sigs = signatures(folder)
    except (OSError, ValueError, AssertionError) as exc:
        raise ModelError(f"{ref}: saved_model.pb cannot be read as a SavedModel ({exc}); re-export the model "
                         "with model.export(PATH) or tf.saved_model.save") from None
    if SERVING not in sigs:
        have = ", ".join(sorted(k for k in sigs if not k.startswith("__"))) or "none"
        raise ModelError(f"{ref}: the SavedModel has no '{SERVING}' serving signature (signatures: {have}); "
                         "export it with model.export(PATH), or tf.saved_model.save(obj, PATH, "
                         "signatures=obj.__call__.get_concrete_function(tf.TensorSpec(...)))")
    return sigs[SERVING]


def check_saved_model(ref: str, folder: Path) -> None:
    if not folder.is_dir():
        raise ModelError(f"{ref}: model not found (looked at {folder}); give a model file or a TensorFlow "
                         "SavedModel folder")
    if not (folder / "saved_model.pb").is_file():
        raise ModelError(f"{ref}: a folder without saved_model.pb, not a TensorFlow SavedModel; give the folder "
                         "that tf.saved_model.save or model.export wrote")
    sig = serving_signature(ref, folder)
    if not sig.inputs:
        raise ModelError(f"{ref}: the '{SERVING}' signature takes no inputs; export one that takes the model's "
                         "input tensors")


def saved_model_inputs(folder: Path) -> tuple[TensorSpec, ...]:
    return infer_batch_axes(list(serving_signature(str(folder), folder).inputs))
