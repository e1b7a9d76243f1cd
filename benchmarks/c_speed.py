"""Flash, RAM and instructions of the exported C library on Cortex-M cores, under QEMU.

For each core and weight layout, the shipped model is exported, cross-compiled and run by
``afdetect export --target T --layout L --check`` (the library's own code path): two
30-s sample strips (the median, scaled to 30 s) and, for the continuous mode, a MIT-BIH
record (instructions per second of monitoring, and the average current they imply on an
nRF52840 at 64 MHz). Besides the targets as the CLI builds them (the Cortex-M4 multiplies,
with dual 16-bit multiply-accumulates; the Cortex-M0+ multiplies with MULS), variants
rebuilt with other flags measure the levers: the M4 without the dual MACs
(``-DAFD_DSP=0``) and without any multiply, and the M0+ without a multiplier (the path
for cores with the small multiplier and for ASIC estimates). Each build holds the
continuous mode's atrial check; the two targets are measured without it too
(``export --no-atrial-check``). Every run checks that the C
logits and windows are identical to the Python integer engine.

QEMU counts instructions (``-icount``), not cycles. Prints and writes
``benchmarks/results/c_speed.json``.

    python benchmarks/c_speed.py
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

from provenance import command_line

from afdetect.atomic import write_json_atomic
from afdetect.deploy.codegen import firmware_files, write_export
from afdetect.deploy.export import export
from afdetect.deploy.targets import TARGETS, Target, check_on_target
from afdetect.models import resolve_model
from afdetect.runtime.format import load_compressed

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
STRIPS = [ROOT / "samples" / "cinc2017" / "A00004.hea", ROOT / "samples" / "cinc2017" /
          "A00001.hea"]
STREAM = ROOT / "tests" / "data" / "mitdb" / "100"
AIMS = {"cortex-m4": {"flash_bytes": 12 * 1024, "ram_bytes": 16 * 1024,
                      "instructions_per_30s": 20_000_000},
        "cortex-m0plus": {"flash_bytes": 12 * 1024, "ram_bytes": 16 * 1024,
                          "instructions_per_30s": 40_000_000}}


def variant(core: str, label: str, drop: tuple[str, ...] = (), add: tuple[str, ...] = ()
            ) -> tuple[str, Target]:
    """``core``'s target with the flags in ``drop`` removed and ``add`` appended."""
    base = TARGETS[core]
    flags = tuple(f for f in base.cflags if f not in drop) + add
    return label, dataclasses.replace(base, cflags=flags)


VARIANTS = [
    ("cortex-m4", TARGETS["cortex-m4"]),
    variant("cortex-m4", "cortex-m4, no dual MAC", add=("-DAFD_DSP=0",)),
    variant("cortex-m4", "cortex-m4, no multiply", drop=("-DAFD_MULTIPLY=1",)),
    ("cortex-m0plus", TARGETS["cortex-m0plus"]),
    variant("cortex-m0plus", "cortex-m0plus, no multiply", drop=("-DAFD_MULTIPLY=1",)),
]


def measure(model: Any, metadata: dict[str, Any], target: Target, layout: str,
            records: list[str | Path], atrial_check: bool = True) -> dict[str, Any]:
    """One export checked on ``target``: sizes, instructions, identity with Python."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "c"
        export(model, metadata, out, layout=layout, atrial_check=atrial_check)
        write_export(out, firmware_files())
        result = check_on_target(model, metadata, out, target, records)
    keep = ("identical", "errors", "flash_bytes", "ram_bytes", "instance_bytes",
            "instructions_per_30s", "stream_instructions_per_s", "stream_average_ua")
    return {"cflags": list(target.cflags), **{k: result[k] for k in keep},
            "strip_instructions": [r["instructions"] for r in result["records"]
                                   if r["mode"] == "strip"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="compressed", help="model name or .afq file")
    parser.add_argument("--layouts", default="fast,packed", help="comma-separated layouts")
    parser.add_argument("--no-stream", action="store_true",
                        help="strips only (no continuous-mode record)")
    parser.add_argument("--out", type=Path, default=RESULTS / "c_speed.json")
    args = parser.parse_args()
    name, path = resolve_model(args.model)
    model, metadata = load_compressed(path)
    records: list[str | Path] = [*STRIPS, *([] if args.no_stream else [STREAM])]
    result: dict[str, Any] = {
        "command": command_line(), "model": name, "strips": [p.name for p in STRIPS],
        "stream": None if args.no_stream else STREAM.name,
        "aims": AIMS, "runs": {}}
    for layout in args.layouts.split(","):
        # every variant with the continuous mode's atrial check (the default export);
        # the targets as the CLI builds them also without it (export --no-atrial-check)
        runs = [(label, target, True) for label, target in VARIANTS] + [
            (f"{label}, no atrial check", target, False) for label, target in VARIANTS
            if label == target.name]
        for label, target, atrial in runs:
            run = measure(model, metadata, target, layout, records, atrial)
            aims = AIMS[target.name]
            run["meets_aims"] = all(run[k] is not None and run[k] <= v for k, v in aims.items())
            result["runs"][f"{label}, {layout}"] = run
            print(f"{label}, {layout}: identical {run['identical']}, flash "
                  f"{run['flash_bytes']:,} B, RAM {run['ram_bytes']:,} B, "
                  f"{run['instructions_per_30s'] / 1e6:.2f} M instructions per 30 s"
                  + (f", monitoring {run['stream_instructions_per_s'] / 1e6:.3f} M/s "
                     f"({run['stream_average_ua']} uA)" if run["stream_instructions_per_s"]
                     else ""), flush=True)
            write_json_atomic(args.out, result, indent=2)  # each run as it completes
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
