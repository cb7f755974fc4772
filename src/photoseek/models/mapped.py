"""A weightless copy of an ONNX graph whose weights ONNX Runtime memory-maps from the original file.

ONNX Runtime copies every weight stored inside an ``.onnx`` file while it creates a session (0.3 CPU-s
for a 254 MB CLIP text tower), but it memory-maps weights kept as external data. Rewriting the model
to external data would double its size on disk; instead the copy written here keeps the graph and
points each large weight at the bytes it already occupies in the original file (ONNX external data
may name any file, offset and length beside the graph). Only the small graph is written, once, next
to the original (next to the file a link points at, as in the Hugging Face cache, since ONNX Runtime
reads no data through links); a changed original (another size or modification time) gets a new one.

The protobuf wire format is walked by hand because the runtime carries no ``onnx`` package: only the
fields named below are touched, everything else is copied byte for byte.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import stat
from collections.abc import Iterator
from pathlib import Path

from photoseek.durable import write_atomically

log = logging.getLogger("photoseek")

MIN_EXTERNAL_BYTES = 1024
"""Weights smaller than this stay inside the graph, as ONNX's own converter does by default."""

_SUFFIX = ".mapped.onnx"

# Field numbers from onnx.proto3.
_MODEL_GRAPH = 7
_GRAPH_INITIALIZER = 5
_TENSOR_RAW_DATA = 9
_TENSOR_EXTERNAL_DATA = 13
_TENSOR_DATA_LOCATION = 14
_EXTERNAL = 1
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def mapped_graph(model: Path) -> Path:
    """The weightless graph for ``model``, written on first use; ``model`` itself when none can be made.

    Models whose weights are already external, models without large weights, unreadable files and
    read-only folders fall back to the original file, which loads the ordinary way.
    """
    try:
        real = model.resolve(strict=True)  # beside the real file: ONNX Runtime refuses data behind symlinks
        info = real.stat()
    except OSError:
        return model
    target = real.with_name(f".{real.name}.{info.st_size}-{info.st_mtime_ns}{_SUFFIX}")
    if target.is_file():
        return target
    try:
        graph = _weightless(real)
        if graph is None:
            return model
        _replace_stale(real, target, graph)
    except (OSError, ValueError) as exc:
        log.debug("Loading %s without memory-mapped weights: %s", model, exc)
        return model
    return target


def _replace_stale(model: Path, target: Path, graph: bytes) -> None:
    """Write ``target`` atomically and drop the graphs of earlier versions of ``model``."""
    for old in model.parent.glob(f".{model.name}.*{_SUFFIX}"):
        if old != target:  # another process may have just written the same graph
            with contextlib.suppress(OSError):
                old.unlink()
    write_atomically(target, graph, mode=stat.S_IMODE(model.stat().st_mode))  # readable by whoever can read the model


def _weightless(model: Path) -> bytes | None:
    """The serialized model with its large initializers pointing into ``model``; None if there are none."""
    with model.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        view = memoryview(data)
        try:
            out = bytearray()
            moved = 0
            for field, wire, start, end, value_start in _fields(view, 0, len(view)):
                if field == _MODEL_GRAPH and wire == _LEN:
                    graph, moved = _graph(view, value_start, end, model.name)
                    out += _key(field, _LEN) + _varint(len(graph)) + graph
                else:
                    out += view[start:end]
            return bytes(out) if moved else None
        finally:
            view.release()


def _graph(view: memoryview, start: int, end: int, location: str) -> tuple[bytes, int]:
    out = bytearray()
    moved = 0
    for field, wire, field_start, field_end, value_start in _fields(view, start, end):
        if field == _GRAPH_INITIALIZER and wire == _LEN:
            tensor, was_moved = _tensor(view, value_start, field_end, location)
            moved += was_moved
            out += _key(field, _LEN) + _varint(len(tensor)) + tensor
        else:
            out += view[field_start:field_end]
    return bytes(out), moved


def _tensor(view: memoryview, start: int, end: int, location: str) -> tuple[bytes, bool]:
    """One TensorProto, its raw_data replaced by a reference to where those bytes lie in the file."""
    fields = list(_fields(view, start, end))
    raw = next((f for f in fields if f[0] == _TENSOR_RAW_DATA and f[1] == _LEN), None)
    external = any(f[0] in (_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION) for f in fields)
    if raw is None or external or raw[3] - raw[4] < MIN_EXTERNAL_BYTES:
        return bytes(view[start:end]), False
    out = bytearray()
    for _, _, field_start, field_end, _ in (f for f in fields if f is not raw):
        out += view[field_start:field_end]
    for key, value in (("location", location), ("offset", str(raw[4])), ("length", str(raw[3] - raw[4]))):
        entry = _string(1, key) + _string(2, value)
        out += _key(_TENSOR_EXTERNAL_DATA, _LEN) + _varint(len(entry)) + entry
    out += _key(_TENSOR_DATA_LOCATION, _VARINT) + _varint(_EXTERNAL)
    return bytes(out), True


def _fields(view: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """(field number, wire type, field start, field end, value start) of each field in [start, end)."""
    pos = start
    while pos < end:
        key, value_start = _read_varint(view, pos)
        field, wire = key >> 3, key & 7
        if wire == _VARINT:
            _, field_end = _read_varint(view, value_start)
        elif wire == _I64:
            field_end = value_start + 8
        elif wire == _I32:
            field_end = value_start + 4
        elif wire == _LEN:
            length, value_start = _read_varint(view, value_start)
            field_end = value_start + length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if field_end > end:
            raise ValueError("truncated ONNX file")
        yield field, wire, pos, field_end, value_start
        pos = field_end


def _read_varint(view: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(view) or shift > 63:
            raise ValueError("malformed varint in ONNX file")
        byte = view[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return value, pos
        shift += 7


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _string(field: int, text: str) -> bytes:
    data = text.encode()
    return _key(field, _LEN) + _varint(len(data)) + data
