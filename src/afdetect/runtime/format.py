"""The compressed model file: one versioned, checksummed binary.

Layout (little endian)::

    b"AFDQ" | u16 format version | u32 header length | header (UTF-8 JSON) | payload | SHA-256

The SHA-256 covers every byte before it. The payload holds, per layer in order, the sparse
index streams, the packed weight codes ((sign << (bits-1)) | exponent offset at the layer's
code width ``bits``, one per kept weight in C order) and the biases in two's complement at
the layer's width, less the trailing zero bits they share (the header's ``bias_shift``).
The header gives each block's length, the layer geometry and scales, and free-form
metadata (classes, sampling rate, preprocessing, recipe, metrics at export).
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from afdetect.atomic import write_bytes_atomic
from afdetect.compress.integer import IntegerLayer, IntegerModel
from afdetect.compress.sparse_index import (
    SCHEMES,
    IndexEncoding,
    decode,
    encode,
    pack_uint,
    shifted_integers,
    stream_count,
    unpack_uint,
)
from afdetect.errors import InputError
from afdetect.model.rr import N_FEATURES, RRConfig

MAGIC = b"AFDQ"
# 2 added the kernel-level index schemes; 3 per-layer code widths (earlier versions give
# one ``weight_bits`` for every layer in the header); 4 the RR detector (``rr``: its
# settings, or null), whose features are the classifier's last inputs.
FORMAT_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
_PREFIX = struct.Struct("<4sHI")
_DIGEST = 32


def is_compressed_file(path: str | Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == MAGIC
    except OSError:
        return False


@dataclass(frozen=True)
class PackedLayer:
    """A layer as the file stores it: index streams, codes of ``bits`` bits
    ((sign << (bits-1)) | exponent offset, kept weights in C order), and biases
    (``bias_width``-bit two's complement, shifted right by ``bias_shift``)."""

    index: IndexEncoding
    codes: bytes
    biases: bytes
    bias_width: int
    bias_shift: int

    @property
    def blocks(self) -> list[bytes]:
        return [*self.index.streams, self.codes, self.biases]


def pack_layer(layer: IntegerLayer) -> PackedLayer:
    """The packed form of ``layer`` (what the file and the packed C layout hold)."""
    positions = np.nonzero(layer.mask)
    codes = ((layer.sign[positions] < 0).astype(np.int64) << (layer.bits - 1)) \
        | layer.shift[positions].astype(np.int64)
    bias, bias_shift, width = shifted_integers(layer.bias)
    return PackedLayer(encode(layer.mask), pack_uint(codes, layer.bits),
                       pack_uint(bias & ((1 << width) - 1), width), width, bias_shift)


def encode_model(model: IntegerModel, metadata: dict[str, Any]) -> bytes:
    """Serialise ``model`` and ``metadata`` into the file's bytes."""
    payload = bytearray()
    layers = []
    for layer in model.layers:
        packed = pack_layer(layer)
        index, blocks = packed.index, packed.blocks
        bias_shift, width = packed.bias_shift, packed.bias_width
        payload.extend(b"".join(blocks))
        layers.append({
            "shape": list(layer.mask.shape), "kept": int(layer.mask.sum()),
            "e_min": layer.e_min, "in_frac": layer.in_frac, "out_frac": layer.out_frac,
            "stride": layer.stride, "padding": layer.padding, "bits": layer.bits,
            "bias_width": width, "bias_shift": bias_shift,
            "index": {"scheme": index.scheme, "param": index.param, "entries": index.entries},
            "blocks": [len(b) for b in blocks],
        })
    header = json.dumps({
        "format": "afdetect-compressed",
        "act_bits": model.act_bits,
        "input_bits": model.input_bits, "input_frac": model.input_frac,
        "rr": model.rr.to_dict() if model.rr is not None else None,
        "layers": layers, "metadata": metadata,
    }, separators=(",", ":")).encode()
    body = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header)) + header + bytes(payload)
    return body + hashlib.sha256(body).digest()


def decode_model(data: bytes, source: str | Path = "<bytes>") -> tuple[IntegerModel,
                                                                        dict[str, Any]]:
    """Parse file bytes; refuse anything truncated, tampered or of another version."""
    if len(data) < _PREFIX.size + _DIGEST or data[:4] != MAGIC:
        raise InputError(source, "not an afdetect compressed model (bad magic)")
    _, version, header_len = _PREFIX.unpack_from(data)
    if version not in READABLE_VERSIONS:
        raise InputError(source, f"compressed model format version {version} is not supported "
                                 f"(this afdetect reads versions {READABLE_VERSIONS})")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise InputError(source, "checksum mismatch: the file is truncated or corrupted")
    try:
        header = json.loads(body[_PREFIX.size:_PREFIX.size + header_len])
        _check_header(header, version)
        offset = _PREFIX.size + header_len
        layers = []
        for spec in header["layers"]:
            blocks = []
            for n in spec["blocks"]:
                blocks.append(body[offset:offset + n])
                offset += n
            bits = spec["bits"] if version >= 3 else header["weight_bits"]
            layers.append(_decode_layer(spec, blocks, int(bits)))
        if offset != len(body):
            raise ValueError("payload length disagrees with the header")
        rr = header.get("rr") if version >= 4 else None
        model = IntegerModel(layers, header["act_bits"], header["input_bits"],
                             header["input_frac"], RRConfig(**rr) if rr is not None else None)
        return model, header["metadata"]
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InputError(source, f"corrupt compressed model ({exc})") from None


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} {value!r} is not an integer in [{low}, {high}]")
    return value


def _check_header(header: Any, version: int) -> None:
    """Types and ranges of every header field the engine relies on (a file can be
    checksummed and still be nonsense)."""
    if not isinstance(header, dict) or not isinstance(header.get("layers"), list):
        raise ValueError("header is not an object with a list of layers")
    _int(header.get("act_bits"), "act_bits", 2, 16)
    _int(header.get("input_bits"), "input_bits", 2, 16)
    _int(header.get("input_frac"), "input_frac", -32, 32)
    if version < 3:
        _int(header.get("weight_bits"), "weight_bits", 2, 8)
    layers = header["layers"]
    if len(layers) < 2 or not isinstance(header.get("metadata"), dict):
        raise ValueError("a model needs conv layers, a classifier and metadata")
    rr = header.get("rr") if version >= 4 else None
    if rr is not None:
        if not isinstance(rr, dict) or set(rr) != set(RRConfig.__dataclass_fields__):
            raise ValueError(f"rr {rr!r} is not the RR detector's settings")
        for key, value in rr.items():
            _int(value, f"rr {key}", 1, 1 << 16)
    c_prev = 1
    for i, spec in enumerate(layers):
        if not isinstance(spec, dict):
            raise ValueError(f"layer {i} is not an object")
        shape = spec.get("shape")
        if not (isinstance(shape, list) and len(shape) == 3):
            raise ValueError(f"layer {i}: shape {shape!r} is not [c_out, c_in, k]")
        c_out, c_in, k = (_int(v, f"layer {i} shape", 1, 4096) for v in shape)
        if i == len(layers) - 1 and rr is not None:
            c_prev += N_FEATURES
        if c_in != c_prev or (i == len(layers) - 1 and k != 1):
            raise ValueError(f"layer {i}: shape {shape} does not follow the layer before")
        c_prev = c_out
        for key, low, high in (("e_min", -64, 64), ("in_frac", -64, 64),
                               ("out_frac", -64, 64), ("stride", 1, 16), ("padding", 0, 64),
                               ("bias_width", 1, 64), ("bias_shift", 0, 62),
                               ("kept", 0, c_out * c_in * k)):
            _int(spec.get(key), f"layer {i} {key}", low, high)
        if version >= 3:
            _int(spec.get("bits"), f"layer {i} bits", 2, 8)
        shift = spec["in_frac"] - spec["e_min"] - spec["out_frac"]
        if i < len(layers) - 1 and not -16 <= shift <= 31:
            raise ValueError(f"layer {i}: requantisation shift {shift} out of range")
        index = spec.get("index")
        if not isinstance(index, dict) or index.get("scheme") not in SCHEMES:
            raise ValueError(f"layer {i}: unknown index {index!r}")
        _int(index.get("param"), f"layer {i} index param", 0, 16)
        _int(index.get("entries"), f"layer {i} index entries", 0, 1 << 24)
        blocks = spec.get("blocks")
        if not isinstance(blocks, list):
            raise ValueError(f"layer {i}: blocks {blocks!r} is not a list")
        for n in blocks:
            _int(n, f"layer {i} block length", 0, 1 << 26)


def _decode_layer(spec: dict[str, Any], blocks: list[bytes], bits: int) -> IntegerLayer:
    shape = tuple(spec["shape"])
    index = spec["index"]
    n_streams = stream_count(index["scheme"])
    mask = decode(index["scheme"], index["param"], tuple(blocks[:n_streams]), index["entries"],
                  shape)
    kept = int(mask.sum())
    if kept != spec["kept"]:
        raise ValueError("index decodes to another number of weights")
    codes = unpack_uint(blocks[n_streams], bits, kept)
    width = spec["bias_width"]
    raw = unpack_uint(blocks[n_streams + 1], width, shape[0])
    bias = np.where(raw >= 1 << (width - 1), raw - (1 << width), raw) << spec["bias_shift"]
    sign = np.zeros(shape, dtype=np.int8)
    shift = np.zeros(shape, dtype=np.int8)
    sign[mask] = np.where(codes >> (bits - 1), -1, 1)
    shift[mask] = codes & ((1 << (bits - 1)) - 1)
    return IntegerLayer(mask, sign, shift, spec["e_min"], bias.astype(np.int64),
                        spec["in_frac"], spec["out_frac"], spec["stride"], spec["padding"],
                        bits)


def save_compressed(path: str | Path, model: IntegerModel, metadata: dict[str, Any]) -> None:
    write_bytes_atomic(path, encode_model(model, metadata))


def load_compressed(path: str | Path) -> tuple[IntegerModel, dict[str, Any]]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "no such model file") from None
    except OSError as exc:
        raise InputError(path, f"unreadable ({exc.strerror})") from None
    return decode_model(data, path)
