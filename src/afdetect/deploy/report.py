"""Everything ``afdetect report`` shows about a compressed model: sizes and deployment."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from afdetect.compress.accounting import report
from afdetect.compress.integer import IntegerModel
from afdetect.deploy.codegen import generate, write_export
from afdetect.deploy.costs import (
    compiled_size,
    dense_float_counts,
    energy,
    integer_counts,
    layer_by_layer_ram,
)
from afdetect.deploy.export import c_compiler
from afdetect.model.cnn import CNNConfig

REPORT_SECONDS = 30.0


def full_report(model: IntegerModel, metadata: dict[str, Any]) -> dict[str, Any]:
    """Per-layer sizes, totals, and the C engine's flash, RAM, operations and energy for
    a 30-s recording."""
    result = report(model, metadata["parent"]["parameters"])
    result.update(weight_bits=model.weight_bits, act_bits=model.act_bits,
                  rr=model.rr.to_dict() if model.rr is not None else None,
                  metrics_at_export=metadata.get("metrics_at_export"))
    n = int(REPORT_SECONDS * metadata["fs"])
    files, sizes = generate(model, metadata)
    flash: dict[str, Any] = {"tables": sizes.tables, "weight_codes": sizes.weight_codes,
                             "weight_indices": sizes.weight_indices,
                             "row_pointers": sizes.row_pointers, "biases": sizes.biases}
    if c_compiler() is not None:
        with tempfile.TemporaryDirectory() as tmp:
            write_export(tmp, files)
            compiled = compiled_size(Path(tmp))
        flash.update(compiled=compiled, code=compiled["text"] - sizes.tables)
    _, packed = generate(model, metadata, layout="packed")
    flash["packed_layout_tables"] = packed.tables
    integer = integer_counts(model, n)
    dense = dense_float_counts(CNNConfig.from_dict(metadata["architecture"]), n)
    result["deployment"] = {
        "seconds": REPORT_SECONDS,
        "flash": flash,
        "ram": {"streaming": sizes.ram, "rings": sizes.ram_rings,
                "layer_by_layer_30s": layer_by_layer_ram(model, n)},
        "operations_30s": integer,
        "dense_float_30s": dense,
        "energy": energy(integer, dense),
    }
    return result
