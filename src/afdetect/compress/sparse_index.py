"""Bit packing and the three sparse index encodings of a layer's kept positions.

Positions are flat indices into the weight tensor in C order (output channel major).

- ``bitmap``: one bit per weight.
- ``relative``: one r-bit entry per kept weight holding the number of zeros skipped since
  the previous kept weight; a gap too long for r bits is bridged by filler entries of value
  2^r - 1, each skipping 2^r - 1 positions without a weight (Han et al., 2016).
- ``dense``: nothing pruned, no index (0 bits).
- ``csr``: per output channel, the count of kept weights (ceil(log2(row + 1)) bits), then
  per kept weight its column within the row (ceil(log2(row)) bits).
- ``kernel-<scheme>``: when whole kernels are kept or pruned (kernel-level sparsity of a
  (c_out, c_in, k) convolution), one of the encodings above of the (c_out, c_in) kernel
  mask: one entry locates k weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KERNEL = "kernel-"
BASE_SCHEMES = ("dense", "bitmap", "relative", "csr")
SCHEMES = (*BASE_SCHEMES, *(KERNEL + s for s in BASE_SCHEMES[1:]))


def pack_uint(values: np.ndarray, width: int) -> bytes:
    """Pack non-negative integers into ``width``-bit fields, MSB first, zero padded."""
    values = np.asarray(values, dtype=np.uint64)
    if width == 0 or values.size == 0:
        return b""
    if np.any(values >> np.uint64(width)):
        raise ValueError(f"value does not fit {width} bits")
    bits = (values[:, None] >> np.arange(width - 1, -1, -1, dtype=np.uint64)) & np.uint64(1)
    return np.packbits(bits.astype(np.uint8).ravel()).tobytes()


def unpack_uint(data: bytes, width: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_uint`: ``count`` values of ``width`` bits (int64)."""
    if width == 0 or count == 0:
        return np.zeros(count, dtype=np.int64)
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[: width * count]
    if bits.size < width * count:
        raise ValueError("bit stream too short")
    fields = bits.reshape(count, width).astype(np.int64)
    return fields @ (1 << np.arange(width - 1, -1, -1, dtype=np.int64))


def bits_for(n: int) -> int:
    """Bits of an unsigned field holding 0..n."""
    return max(1, int(n).bit_length())


def signed_width(values: np.ndarray) -> int:
    """Two's complement bits holding every value (at least 2)."""
    values = np.asarray(values, dtype=np.int64)
    if values.size == 0:
        return 2
    hi = int(max(values.max(), -values.min() - 1, 0))
    return max(2, hi.bit_length() + 1)


def common_shift(values: np.ndarray) -> int:
    """Trailing zero bits shared by every value (0 when all are zero): the values are
    stored as ``values >> shift`` plus the shift."""
    nonzero = np.abs(np.asarray(values, dtype=np.int64))
    nonzero = nonzero[nonzero != 0]
    if nonzero.size == 0:
        return 0
    lowest_bits = nonzero & -nonzero
    return int(lowest_bits.min()).bit_length() - 1


def shifted_integers(values: np.ndarray) -> tuple[np.ndarray, int, int]:
    """How signed integers are stored: (``values >> shift``, shift, two's complement
    width of the shifted values). The file format and the size accounting both use it."""
    values = np.asarray(values, dtype=np.int64)
    shift = common_shift(values)
    stored = values >> shift
    return stored, shift, signed_width(stored)


@dataclass(frozen=True)
class IndexEncoding:
    """An encoded kept-position set: scheme, its parameter (r for relative), the packed
    streams and their exact bit count (filler entries included)."""

    scheme: str
    param: int
    streams: tuple[bytes, ...]
    bits: int
    entries: int  # relative: entries incl. fillers; csr: kept; bitmap: positions


def relative_entries(positions: np.ndarray, r: int) -> np.ndarray:
    """Gap entries with fillers (value 2^r - 1) for sorted ``positions``."""
    escape = (1 << r) - 1
    out: list[int] = []
    cursor = 0
    for p in positions.tolist():
        gap = p - cursor
        if gap >= escape:
            n_fill = gap // escape
            out.extend([escape] * n_fill)
            gap -= n_fill * escape
        out.append(gap)
        cursor = p + 1
    return np.array(out, dtype=np.int64)


def encode(mask: np.ndarray) -> IndexEncoding:
    """The smallest encoding of ``mask`` (c_out, ...) kept positions, per weight or, when
    the mask is constant along the kernel axis of a (c_out, c_in, k) tensor, per kernel."""
    best = _encode_positions(mask)
    kernels = whole_kernels(mask)
    if kernels is not None and not kernels.all():
        coarse = _encode_positions(kernels)
        if coarse.bits < best.bits:
            best = IndexEncoding(KERNEL + coarse.scheme, coarse.param, coarse.streams,
                                 coarse.bits, coarse.entries)
    return best


def whole_kernels(mask: np.ndarray) -> np.ndarray | None:
    """The (c_out, c_in) kernel mask of a (c_out, c_in, k > 1) ``mask`` that keeps or
    prunes whole kernels; None for any other mask."""
    if mask.ndim != 3 or mask.shape[2] < 2:
        return None
    kernels = np.asarray(mask.any(axis=2), dtype=bool)
    if not np.array_equal(np.repeat(kernels[:, :, None], mask.shape[2], axis=2), mask):
        return None
    return kernels


def stream_count(scheme: str) -> int:
    """Packed streams an encoding of ``scheme`` consists of."""
    return {"dense": 0, "csr": 2}.get(scheme.removeprefix(KERNEL), 1)


def _encode_positions(mask: np.ndarray) -> IndexEncoding:
    """The smallest of the per-position encodings of ``mask`` (c_out, ...)."""
    flat = mask.reshape(mask.shape[0], -1).astype(bool)
    if flat.all():
        return IndexEncoding("dense", 0, (), 0, flat.size)
    return min(position_encodings(mask), key=lambda c: (c.bits, SCHEMES.index(c.scheme)))


def position_encodings(mask: np.ndarray) -> list[IndexEncoding]:
    """Every per-position encoding of ``mask`` (c_out, ...): bitmap, relative for each r,
    csr; :func:`encode` keeps the smallest."""
    flat = mask.reshape(mask.shape[0], -1).astype(bool)
    rows, row_len = flat.shape
    positions = np.flatnonzero(flat)
    candidates = [IndexEncoding("bitmap", 1, (np.packbits(flat.ravel()).tobytes(),),
                                flat.size, flat.size)]
    for r in range(1, 17):
        entries = relative_entries(positions, r)
        candidates.append(IndexEncoding("relative", r, (pack_uint(entries, r),),
                                        r * len(entries), len(entries)))
    counts = flat.sum(axis=1)
    columns = np.nonzero(flat)[1]
    count_bits, column_bits = bits_for(row_len), bits_for(row_len - 1)
    candidates.append(IndexEncoding(
        "csr", 0, (pack_uint(counts, count_bits), pack_uint(columns, column_bits)),
        rows * count_bits + len(columns) * column_bits, len(columns)))
    return candidates


def decode(scheme: str, param: int, streams: tuple[bytes, ...], entries: int,
           shape: tuple[int, ...]) -> np.ndarray:
    """The boolean mask of ``shape`` that :func:`encode` encoded."""
    if scheme.startswith(KERNEL) and len(shape) == 3:
        kernels = decode(scheme.removeprefix(KERNEL), param, streams, entries, shape[:2])
        return np.repeat(kernels[:, :, None], shape[2], axis=2)
    rows = shape[0]
    size = int(np.prod(shape))
    row_len = size // rows
    mask = np.zeros(size, dtype=bool)
    if scheme == "dense":
        mask[:] = True
    elif scheme == "bitmap":
        mask[:] = np.unpackbits(np.frombuffer(streams[0], dtype=np.uint8))[:size].astype(bool)
    elif scheme == "relative":
        escape = (1 << param) - 1
        cursor = 0
        for v in unpack_uint(streams[0], param, entries).tolist():
            if v == escape:
                cursor += escape
            else:
                mask[cursor + v] = True
                cursor += v + 1
    elif scheme == "csr":
        counts = unpack_uint(streams[0], bits_for(row_len), rows)
        columns = unpack_uint(streams[1], bits_for(row_len - 1), entries)
        row_of = np.repeat(np.arange(rows), counts)
        mask[row_of * row_len + columns] = True
    else:
        raise ValueError(f"unknown index scheme {scheme!r}")
    return mask.reshape(shape)
