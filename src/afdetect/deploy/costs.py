"""Operation counts, memory and estimated energy per classification.

Energy uses the 45 nm figures of Horowitz (ISSCC 2014): fp32 multiply 3.7 pJ, fp32 add
0.9 pJ, int32 add 0.1 pJ, 32-bit SRAM read 5 pJ, 32-bit DRAM read 640 pJ. A shift and a
compare are each counted as an int32 add, and every table or activation read of the
integer engine as a 32-bit SRAM read (they are 8 or 16 bits wide, so this overstates); a
second estimate charges those reads at a small local memory's 0.3 pJ instead.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from afdetect.compress.integer import IntegerModel
from afdetect.compress.sparse_index import whole_kernels
from afdetect.deploy.export import build_objects
from afdetect.model.cnn import CNNConfig

PJ = {"fp32_mul": 3.7, "fp32_add": 0.9, "int32_add": 0.1, "sram_read": 5.0,
      "dram_read": 640.0, "local_read": 0.3}
# local_read: a word from a small local memory (register file or scratchpad of a few KB)
# next to the datapath, as AF ASICs keep their weights and line buffers. Sze et al. (Proc.
# IEEE 2017) put such an access at about the energy of one MAC; with Horowitz's 45 nm
# figures an 8-bit multiply (0.2 pJ) plus a 32-bit add (0.1 pJ) is 0.3 pJ.


def _lengths(kernels: list[int], strides: list[int], n_samples: int) -> list[tuple[int, int]]:
    """(input length, conv output length) of each block ('same' padding, pool 2 after)."""
    out = []
    length = n_samples
    for k, s in zip(kernels, strides, strict=True):
        n_out = (length + 2 * (k // 2) - k) // s + 1
        out.append((length, n_out))
        length = n_out // 2
    return out


def integer_counts(model: IntegerModel, n_samples: int) -> dict[str, int]:
    """Shifts, adds, compares and memory reads of the integer engine on one recording."""
    shifts = adds = compares = reads = 0
    geometry = _lengths([layer.kernel for layer in model.convs],
                        [layer.stride for layer in model.convs], n_samples)
    for layer, (_, n_out) in zip(model.convs, geometry, strict=True):
        kept = int(layer.mask.sum())
        kernels = whole_kernels(layer.mask)
        entries = kept if kernels is None else int(kernels.sum())  # ring offsets read
        c_out = layer.mask.shape[0]
        shifts += n_out * (kept + c_out)        # one per term, one requantisation per output
        adds += n_out * (kept + c_out)          # accumulate, rounding offset
        compares += n_out * c_out * 2 + (n_out // 2) * c_out  # clamp low/high, max pool
        reads += n_out * (2 * kept + entries + 3 * c_out)  # activation, code; bias, rows
    steps = geometry[-1][1] // 2
    fc = model.classifier
    kept = int(fc.mask.sum())
    n_classes = fc.mask.shape[0]
    adds += steps * fc.mask.shape[1] + steps * n_classes + kept   # GAP sums, bias * T, terms
    shifts += kept
    reads += 3 * kept + steps * n_classes
    compares += n_classes
    return {"shifts": shifts, "adds": adds, "compares": compares, "memory_reads": reads,
            "multiplies": 0}


def dense_float_counts(config: CNNConfig, n_samples: int) -> dict[str, int]:
    """Multiplies, adds and weight/activation reads of the dense float model (BatchNorm
    as one multiply and one add per output; every multiply reads one weight and one
    activation)."""
    strides = [config.first_stride] + [1] * (len(config.channels) - 1)
    geometry = _lengths(list(config.kernel_sizes), strides, n_samples)
    macs = bn = 0
    c_in = 1
    for c_out, k, (_, n_out) in zip(config.channels, config.kernel_sizes, geometry,
                                    strict=True):
        macs += n_out * c_out * c_in * k
        bn += n_out * c_out
        c_in = c_out
    macs += c_in * config.n_classes
    return {"multiplies": macs + bn, "adds": macs + bn, "weight_reads": macs,
            "activation_reads": macs}


def energy(integer: dict[str, int], dense: dict[str, int]) -> dict[str, Any]:
    """Estimated energy per classification in microjoules."""
    compressed = ((integer["shifts"] + integer["adds"] + integer["compares"]) * PJ["int32_add"]
                  + integer["memory_reads"] * PJ["sram_read"])
    float_arith = dense["multiplies"] * PJ["fp32_mul"] + dense["adds"] * PJ["fp32_add"]
    float_sram = float_arith + (dense["weight_reads"] + dense["activation_reads"]) * PJ[
        "sram_read"]
    float_dram = float_arith + dense["weight_reads"] * PJ["dram_read"] + dense[
        "activation_reads"] * PJ["sram_read"]
    local = ((integer["shifts"] + integer["adds"] + integer["compares"]) * PJ["int32_add"]
             + integer["memory_reads"] * PJ["local_read"])
    return {
        "compressed_uj": compressed / 1e6,
        "compressed_local_memory_uj": local / 1e6,
        "dense_float_weights_in_sram_uj": float_sram / 1e6,
        "dense_float_weights_in_dram_uj": float_dram / 1e6,
        "ratio_vs_float_sram": float_sram / compressed,
        "ratio_vs_float_dram": float_dram / compressed,
        "table_pj": PJ,
        "assumptions": "shift and compare = int32 add; every integer-engine read = 32-bit "
                       "SRAM read (compressed_uj) or a local-memory read of 0.3 pJ, weights "
                       "and ring buffers held next to the datapath as in AF ASICs "
                       "(compressed_local_memory_uj); dense float: each multiply reads a "
                       "weight and an activation (weights in SRAM, or in DRAM for a model "
                       "too big for on-chip memory)",
    }


def layer_by_layer_ram(model: IntegerModel, n_samples: int) -> int:
    """Peak bytes of activations when whole layers are computed one after another:
    the largest input + output buffer pair (int16 input, 8-bit activations)."""
    geometry = _lengths([layer.kernel for layer in model.convs],
                        [layer.stride for layer in model.convs], n_samples)
    peak = 0
    in_bytes = 2 * n_samples
    for layer, (_, n_out) in zip(model.convs, geometry, strict=True):
        out_bytes = layer.mask.shape[0] * (n_out // 2)
        peak = max(peak, in_bytes + out_bytes)
        in_bytes = out_bytes
    return peak


def compiled_size(export_dir: Path) -> dict[str, int]:
    """``size`` of the compiled library, summed over its objects: text (code and const
    tables), data, bss (both 0: the state is in the caller's instances)."""
    objects = build_objects(export_dir)
    result = subprocess.run(["size", *map(str, objects)], capture_output=True, text=True,
                            check=True)
    rows = [line.split()[:3] for line in result.stdout.splitlines()[1:]]
    text, data, bss = (sum(int(row[i]) for row in rows) for i in range(3))
    return {"text": text, "data": data, "bss": bss}
