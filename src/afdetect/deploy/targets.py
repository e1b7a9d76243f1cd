"""Microcontroller targets: cross-compiling the exported engine and running it under QEMU.

A target names a core, the compiler flags for it and the QEMU machine that runs it.
The export adds a bare-metal example in ``examples/cortex-m``: a minimal startup file
(vector table, ``.data``/``.bss`` set-up, a SysTick overflow counter), a linker script and
a driver (``target_main.c``) that reads its input through Arm semihosting, so the same
integer engine runs unchanged on the core.

Instructions are counted by QEMU: with ``-icount shift=0`` the virtual clock advances 1 ns
per executed instruction, and the driver reads SysTick, clocked at the board's 25 MHz
system clock, around the engine calls: one tick is 40 instructions.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from afdetect.compress.integer import IntegerModel
from afdetect.deploy.export import c_compiler, check, library_sources, window_rows
from afdetect.errors import AfdetectError
from afdetect.io.records import SignalStream
from afdetect.monitor.scan import ScanConfig

PACKAGES = "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
SYSCLK_HZ = 25_000_000  # QEMU's MPS2 boards
NS_PER_INSTRUCTION = 1  # -icount shift=0
INSTRUCTIONS_PER_TICK = 1_000_000_000 // SYSCLK_HZ // NS_PER_INSTRUCTION


@dataclass(frozen=True)
class Target:
    """A core the export can build for.

    Attributes:
        name: what ``--target`` takes.
        cflags: compiler flags selecting the core.
        machine: QEMU machine that runs it (None: the host runs it natively).
        note: how the machine relates to the core.
    """

    name: str
    cflags: tuple[str, ...]
    machine: str | None
    note: str = ""

    @property
    def is_host(self) -> bool:
        return self.machine is None


TARGETS = {
    "host": Target("host", (), None),
    # the M4 multiplies and accumulates in one cycle: the fast layout's kernels use it
    "cortex-m4": Target("cortex-m4", ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft",
                                      "-DAFD_MULTIPLY=1"),
                        "mps2-an386", "Arm MPS2 AN386 (Cortex-M4)"),
    "cortex-m0plus": Target("cortex-m0plus", ("-mcpu=cortex-m0plus", "-mthumb",
                                              "-DAFD_MULTIPLY=1"), "mps2-an385",
                            "ARMv6-M code run on the MPS2 AN385 Cortex-M3 model, which "
                            "executes every ARMv6-M instruction: QEMU has no Cortex-M0+ "
                            "board with room for the engine"),
}
HOST_ONLY_SOURCES = ("afd_batch.c",)
ARM_CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Wconversion", "-Werror", "-Os",
              "-ffunction-sections", "-fdata-sections")


def get_target(name: str) -> Target:
    """The target called ``name``; an unknown name lists the known ones."""
    if name not in TARGETS:
        raise AfdetectError(f"unknown target {name!r} (known targets: {', '.join(TARGETS)})")
    return TARGETS[name]


def require_toolchain(target: Target) -> None:
    """Fail with the package to install when the cross compiler or QEMU is missing."""
    if target.is_host:
        return
    for tool in ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm"):
        if shutil.which(tool) is None:
            raise AfdetectError(f"{tool} not found: the {target.name} target needs "
                                f"`apt-get install --no-install-recommends {PACKAGES}`")


def _run(cmd: list[str], what: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AfdetectError(f"{what} failed: {result.stderr.strip()[:2000]}")
    return result


def _library_flags(out: Path) -> list[str]:
    return [f"-I{out / 'src'}"]


def build_firmware(out_dir: str | Path, target: Target) -> Path:
    """Cross-compile the library and the bare-metal example (startup, driver) into
    ``build/firmware-TARGET.elf``."""
    require_toolchain(target)
    out = Path(out_dir)
    example = out / "examples" / "cortex-m"
    (out / "build").mkdir(exist_ok=True)
    elf = out / "build" / f"firmware-{target.name}.elf"
    _run(["arm-none-eabi-gcc", *ARM_CFLAGS, *target.cflags, *_library_flags(out),
          "--specs=rdimon.specs", "-nostartfiles", "-Wl,--gc-sections", "-T",
          str(example / "target.ld"), "-o", str(elf), str(example / "startup.c"),
          str(example / "target_main.c"), *map(str, library_sources(out)), "-lrdimon", "-lc"],
         f"cross-compiling for {target.name}")
    return elf


_SIZES_PROBE = """\
/* sizeof the instances as this compiler lays them out: read back from the symbol table */
#include "afdetect.h"
char afd_sizeof_strip[sizeof(afd_strip_t)];
char afd_sizeof_stream[sizeof(afd_stream_t)];
"""


def instance_sizes(out_dir: str | Path, target: Target) -> dict[str, int]:
    """``sizeof(afd_strip_t)`` and ``sizeof(afd_stream_t)`` for ``target``, in bytes."""
    out = Path(out_dir)
    (out / "build").mkdir(exist_ok=True)
    probe = out / "build" / "sizes.c"
    probe.write_text(_SIZES_PROBE)
    obj = out / "build" / f"sizes-{target.name}.o"
    cc, nm = ((c_compiler() or "cc", "nm") if target.is_host
              else ("arm-none-eabi-gcc", "arm-none-eabi-nm"))
    _run([cc, *ARM_CFLAGS, *target.cflags, *_library_flags(out), "-c", "-o", str(obj),
          str(probe)], f"compiling the size probe for {target.name}")
    sizes = {}
    for line in _run([nm, "-S", "-t", "d", str(obj)], nm).stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3].startswith("afd_sizeof_"):
            sizes[f"afd_{parts[3].removeprefix('afd_sizeof_')}_t"] = int(parts[1])
    return sizes


def library_memory(out_dir: str | Path, target: Target) -> tuple[int, int]:
    """(flash, RAM) bytes of the engine library for ``target``: text + rodata of its
    objects, and their data + bss (none: the state is the caller's) plus the larger
    instance, ``afd_strip_t`` or ``afd_stream_t``: what a firmware running one mode at a
    time holds (the example driver keeps the two in a union). The host batch mode
    (``afd_batch.c``, whose work memory grows with the recording) is not counted: a
    firmware that does not call it does not link it."""
    require_toolchain(target)
    out = Path(out_dir)
    (out / "build").mkdir(exist_ok=True)
    flash = ram = 0
    for source in library_sources(out):
        if source.name in HOST_ONLY_SOURCES:
            continue
        obj = out / "build" / f"{source.stem}-{target.name}.o"
        _run(["arm-none-eabi-gcc", *ARM_CFLAGS, *target.cflags, *_library_flags(out), "-c",
              "-o", str(obj), str(source)], f"cross-compiling for {target.name}")
        listing = _run(["arm-none-eabi-size", "-A", str(obj)], "arm-none-eabi-size").stdout
        for line in listing.splitlines():
            parts = line.split()
            if len(parts) < 2 or not parts[1].isdigit():
                continue
            name, size = parts[0], int(parts[1])
            if name.startswith((".text", ".rodata")):
                flash += size
            elif name.startswith((".data", ".bss")):
                ram += size
    return flash, ram + max(instance_sizes(out, target).values())


def run_firmware(elf: Path, target: Target, workdir: Path, input_text: str,
                 timeout: float = 600) -> list[str]:
    """Run the firmware under QEMU on ``input_text`` (the driver's ``afd_input.txt``);
    return its output lines. Time-limited; a failure shows the emulator's last line."""
    assert target.machine is not None
    (workdir / "afd_input.txt").write_text(input_text)
    cmd = ["qemu-system-arm", "-M", target.machine, "-nographic", "-monitor", "none",
           "-serial", "none", "-semihosting-config", "enable=on,target=native",
           "-icount", f"shift={NS_PER_INSTRUCTION.bit_length() - 1}", "-kernel",
           str(elf.resolve())]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                cwd=workdir)
    except subprocess.TimeoutExpired:
        raise AfdetectError(f"{target.name}: QEMU gave no answer within {timeout:g} s"
                            ) from None
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or not lines or lines[-1] != "done":
        last = (result.stderr.strip().splitlines() or lines or ["no output"])[-1]
        raise AfdetectError(f"{target.name}: the firmware failed under QEMU "
                            f"(exit {result.returncode}): {last}")
    return lines[:-1]


@dataclass
class QemuRunner:
    """The firmware of a Cortex-M target run under QEMU (see :func:`run_firmware`).

    ``instructions_per_tick`` is measured once, on a loop of known length.
    """

    elf: Path
    target: Target
    workdir: Path
    instructions_per_tick: float = 0.0

    def __post_init__(self) -> None:
        n = 1_000_000
        ticks = int(run_firmware(self.elf, self.target, self.workdir, f"calibrate {n}\n")[0])
        self.instructions_per_tick = 2 * n / ticks

    def strip(self, samples: np.ndarray) -> tuple[str, np.ndarray, int | None]:
        text = "strip\n" + "\n".join(map(str, samples.tolist())) + "\n"
        label, *values = run_firmware(self.elf, self.target, self.workdir, text)[0].split()
        logits = np.array([int(v) for v in values[:-1]], dtype=np.int64)
        return label, logits, round(int(values[-1]) * self.instructions_per_tick)

    def stream(self, stream: SignalStream, window_steps: int, hop_steps: int
               ) -> tuple[np.ndarray, np.ndarray | None, int | None]:
        if abs(stream.fs - round(stream.fs)) > 1e-9:
            raise AfdetectError(f"{stream.source}: the C engine takes integer rates")
        header = f"stream {round(stream.fs)} {window_steps} {hop_steps}\n"
        body = "".join("\n".join(map(str, c.tolist())) + "\n" for c in stream.chunks(1 << 16))
        *lines, spent = run_firmware(self.elf, self.target, self.workdir, header + body,
                                     timeout=120 + stream.duration_s / 5)
        ticks = int(spent.removeprefix("ticks "))  # the engine's, printing excluded
        return (*window_rows(lines), round(ticks * self.instructions_per_tick))


# nRF52840 product specification: CPU running CoreMark from flash, DC/DC, 3 V: 52 uA/MHz.
PART_UA_PER_MHZ, PART_VOLTS = 52.0, 3.0
PART: dict[str, float | str] = {"name": "nRF52840", "ua_per_mhz": PART_UA_PER_MHZ,
                                "volts": PART_VOLTS}
CLOCK_HZ = 64_000_000


def time_and_energy(instructions: float) -> dict[str, float]:
    """Estimated time at 64 MHz and energy at :data:`PART`'s run current, taking one
    instruction per cycle (QEMU counts instructions, not cycles: wait states and
    multi-cycle loads make the real count of cycles higher). The nRF52840 is a Cortex-M4F;
    for other cores the same current is a like-for-like comparison, not a part's figure."""
    seconds = instructions / CLOCK_HZ
    watts = PART_UA_PER_MHZ * 1e-6 * CLOCK_HZ / 1e6 * PART_VOLTS
    return {"time_at_64mhz_ms": round(seconds * 1e3, 3),
            "energy_uj": round(watts * seconds * 1e6, 2)}


def check_on_target(model: IntegerModel, metadata: dict[str, Any], out_dir: str | Path,
                    target: Target, records: list[str | Path],
                    scan_config: ScanConfig | None = None) -> dict[str, Any]:
    """Cross-compile, run every record under QEMU and compare with the Python engine.

    Returns the JSON of ``afdetect export --target T --check``: ``records``,
    ``identical``, ``errors``, ``target``, ``flash_bytes``, ``ram_bytes`` (see
    :func:`library_memory`), ``instance_bytes`` (the sizeof of each instance),
    ``instructions_per_30s`` (median over the strips checked, scaled to 30 s),
    ``stream_instructions_per_s`` (the continuous mode's, median over the streams
    checked) with ``stream_average_ua`` (the average current that implies on
    :data:`PART` at 64 MHz, one instruction per cycle: 52 uA per million instructions
    a second), and the strips' time and energy estimate.
    """
    out = Path(out_dir)
    flash, ram = library_memory(out, target)
    runner = QemuRunner(build_firmware(out, target), target, out)
    result = check(model, metadata, runner, records, scan_config)
    per_30s = [r["instructions"] * 30.0 / r["duration_s"] for r in result.records
               if "instructions" in r and r["mode"] == "strip"]
    instructions = round(float(np.median(per_30s))) if per_30s else None
    per_s = [r["instructions"] / r["duration_s"] for r in result.records
             if "instructions" in r and r["mode"] == "stream"]
    monitoring = round(float(np.median(per_s))) if per_s else None
    return {
        "records": result.records, "identical": result.identical, "errors": result.failures,
        "target": target.name, "machine": target.note, "flash_bytes": flash,
        "ram_bytes": ram, "instance_bytes": instance_sizes(out, target),
        "instructions_per_30s": instructions,
        "instructions_per_tick": runner.instructions_per_tick,
        "stream_instructions_per_s": monitoring,
        "stream_average_ua": (round(PART_UA_PER_MHZ * monitoring / 1e6, 2)
                              if monitoring else None),
        "estimate": ({**time_and_energy(instructions), "part": PART,
                      "clock_hz": CLOCK_HZ} if instructions else None),
    }
