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
    IndexEncoding,
    decode,
    encode,
    pack_uint,
    shifted_integers,
    stream_count,
    unpack_uint,
)
from afdetect.errors import InputError

MAGIC = b"AFDQ"
# 2 added the kernel-level index schemes; 3 per-layer code widths (earlier versions give
# one ``weight_bits`` for every layer in the header).
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
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
        model = IntegerModel(layers, header["act_bits"], header["input_bits"],
                             header["input_frac"])
        return model, header["metadata"]
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InputError(source, f"corrupt compressed model ({exc})") from None


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
