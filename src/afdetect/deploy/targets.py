"""Microcontroller targets: cross-compiling the exported engine and running it under QEMU.

A target names a core, the compiler flags for it and the QEMU machine that runs it.
The export adds a minimal startup file (vector table, ``.data``/``.bss`` set-up, a SysTick
overflow counter), a linker script and a driver (``target_main.c``) that reads its input
through Arm semihosting, so the same integer engine runs unchanged on the core.

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
from afdetect.deploy.codegen import PRINT_DECISION
from afdetect.deploy.export import check
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
    "cortex-m4": Target("cortex-m4", ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft"),
                        "mps2-an386", "Arm MPS2 AN386 (Cortex-M4)"),
    "cortex-m0plus": Target("cortex-m0plus", ("-mcpu=cortex-m0plus", "-mthumb"), "mps2-an385",
                            "ARMv6-M code run on the MPS2 AN385 Cortex-M3 model, which "
                            "executes every ARMv6-M instruction: QEMU has no Cortex-M0+ "
                            "board with room for the engine"),
}
ARM_CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-Os", "-ffunction-sections",
              "-fdata-sections")


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


def build_firmware(out_dir: str | Path, target: Target) -> Path:
    """Cross-compile the engine, startup and driver into ``firmware.elf``."""
    require_toolchain(target)
    out = Path(out_dir)
    elf = out / f"firmware-{target.name}.elf"
    _run(["arm-none-eabi-gcc", *ARM_CFLAGS, *target.cflags, "--specs=rdimon.specs",
          "-nostartfiles", "-Wl,--gc-sections", "-T", str(out / "target.ld"), "-o", str(elf),
          str(out / "startup.c"), str(out / "target_main.c"), str(out / "afdetect_model.c"),
          "-lrdimon", "-lc"], f"cross-compiling for {target.name}")
    return elf


def library_memory(out_dir: str | Path, target: Target) -> tuple[int, int]:
    """(flash, RAM) bytes of the engine library alone, from its object for ``target``:
    text + rodata, and data + bss."""
    require_toolchain(target)
    out = Path(out_dir)
    obj = out / f"afdetect_model-{target.name}.o"
    _run(["arm-none-eabi-gcc", *ARM_CFLAGS, *target.cflags, "-c", "-o", str(obj),
          str(out / "afdetect_model.c")], f"cross-compiling for {target.name}")
    listing = _run(["arm-none-eabi-size", "-A", str(obj)], "arm-none-eabi-size").stdout
    flash = ram = 0
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            continue
        name, size = parts[0], int(parts[1])
        if name.startswith((".text", ".rodata")):
            flash += size
        elif name.startswith((".data", ".bss")):
            ram += size
    return flash, ram


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


def firmware_files() -> dict[str, str]:
    """The startup file, linker script and semihosting driver of the Arm targets."""
    return {"startup.c": _STARTUP, "target.ld": _LINKER_SCRIPT, "target_main.c": _DRIVER}


_STARTUP = """\
/* Minimal Cortex-M startup for the afdetect firmware (generated): vector table, .data
   copy, .bss clear, semihosting set-up, main(). SysTick counts its wraps for timing. */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);
extern void initialise_monitor_handles(void);

volatile uint32_t afd_systick_wraps;

void Reset_Handler(void);
void SysTick_Handler(void);
static void Fault_Handler(void);

__attribute__((section(".isr_vector"), used))
static void (*const vectors[16])(void) = {
    (void (*)(void))&_estack, Reset_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, 0, 0, 0, 0,
    Fault_Handler, Fault_Handler, 0, Fault_Handler, SysTick_Handler,
};

void Reset_Handler(void)
{
    uint32_t *src = &_sidata, *dst;
    for (dst = &_sdata; dst < &_edata;) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
    initialise_monitor_handles();
    exit(main());
}

void SysTick_Handler(void) { afd_systick_wraps++; }

static void Fault_Handler(void) { exit(3); }
"""

_LINKER_SCRIPT = """\
/* MPS2 memory map (generated): code in SSRAM1 at 0, data in SSRAM2/3 at 0x20000000. */
MEMORY
{
    FLASH (rx) : ORIGIN = 0x00000000, LENGTH = 4M
    RAM (rwx)  : ORIGIN = 0x20000000, LENGTH = 4M
}
ENTRY(Reset_Handler)
SECTIONS
{
    .isr_vector : { KEEP(*(.isr_vector)) } > FLASH
    .text : { *(.text*) *(.rodata*) . = ALIGN(4); } > FLASH
    .ARM.exidx : { *(.ARM.exidx*) } > FLASH
    _sidata = LOADADDR(.data);
    .data : { _sdata = .; *(.data*) . = ALIGN(4); _edata = .; } > RAM AT > FLASH
    .bss : { _sbss = .; *(.bss*) *(COMMON) . = ALIGN(4); _ebss = .; } > RAM
    end = .;
    __end__ = .;
    _estack = ORIGIN(RAM) + LENGTH(RAM);
}
"""

_DRIVER = """\
/* afdetect firmware driver (generated): reads afd_input.txt through semihosting.
     calibrate N      runs a 2-instruction loop N times: prints the SysTick ticks
     strip            then quantised samples: prints "class logits... ticks"
     stream FS W H    then raw counts: prints "class logits..." per window
   and "done". ticks: SysTick ticks spent in the engine (QEMU -icount: see README). */
#include <stdio.h>
#include <string.h>
#include "afdetect_model.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define MAX_STRIP 18300  /* 61 s at 300 Hz */

extern volatile uint32_t afd_systick_wraps;
static int16_t samples[MAX_STRIP];
""" + PRINT_DECISION + """
static uint32_t ticks(void)
{
    uint32_t w, v;
    do {
        w = afd_systick_wraps;
        v = SYST_CVR;
    } while (w != afd_systick_wraps);
    return (w << 24) + (0xFFFFFFu - v);
}

int main(void)
{
    FILE *fh = fopen("afd_input.txt", "r");
    char mode[16];
    long v, fs, window, hop;
    int32_t n = 0, logits[AFD_N_CLASSES];
    uint32_t t0, t1;
    int cls;
    if (!fh || fscanf(fh, "%15s", mode) != 1) return 2;
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 7;  /* processor clock, interrupt on wrap, enabled */
    if (strcmp(mode, "calibrate") == 0) {  /* 2 instructions per iteration */
        uint32_t count;
        if (fscanf(fh, "%ld", &v) != 1 || v < 1) return 6;
        count = (uint32_t)v;
        t0 = ticks();
        __asm volatile(".syntax unified\\n1: subs %0, %0, #1\\n\\tbne 1b" : "+l"(count) : : "cc");
        t1 = ticks();
        printf("%lu\\n", (unsigned long)(t1 - t0));
    } else if (strcmp(mode, "strip") == 0) {
        while (n < MAX_STRIP && fscanf(fh, "%ld", &v) == 1) samples[n++] = (int16_t)v;
        t0 = ticks();
        cls = afd_classify(samples, n, logits);
        t1 = ticks();
        if (cls < 0) return 4;
        print_decision(cls, logits);
        printf(" %lu\\n", (unsigned long)(t1 - t0));
    } else {
        if (fscanf(fh, "%ld %ld %ld", &fs, &window, &hop) != 3 ||
            afd_stream_init((int32_t)fs, (int32_t)window, (int32_t)hop, print_window, 0))
            return 5;
        while (fscanf(fh, "%ld", &v) == 1) afd_stream_push((int32_t)v);
    }
    fclose(fh);
    printf("done\\n");
    return 0;
}
"""


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

    def stream(self, stream: SignalStream, window_steps: int, hop_steps: int) -> np.ndarray:
        if abs(stream.fs - round(stream.fs)) > 1e-9:
            raise AfdetectError(f"{stream.source}: the C engine takes integer rates")
        header = f"stream {round(stream.fs)} {window_steps} {hop_steps}\n"
        body = "".join("\n".join(map(str, c.tolist())) + "\n" for c in stream.chunks(1 << 16))
        lines = run_firmware(self.elf, self.target, self.workdir, header + body,
                             timeout=120 + stream.duration_s / 5)
        rows = [[int(v) for v in line.split()[1:]] for line in lines]
        return np.array(rows, dtype=np.int64).reshape(len(rows), -1)


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
    ``identical``, ``errors``, ``target``, ``flash_bytes``, ``ram_bytes``,
    ``instructions_per_30s`` (median over the strips checked, scaled to 30 s), and the
    time and energy estimate.
    """
    out = Path(out_dir)
    flash, ram = library_memory(out, target)
    runner = QemuRunner(build_firmware(out, target), target, out)
    result = check(model, metadata, runner, records, scan_config)
    per_30s = [r["instructions"] * 30.0 / r["duration_s"] for r in result.records
               if "instructions" in r]
    instructions = round(float(np.median(per_30s))) if per_30s else None
    return {
        "records": result.records, "identical": result.identical, "errors": result.failures,
        "target": target.name, "machine": target.note, "flash_bytes": flash,
        "ram_bytes": ram, "instructions_per_30s": instructions,
        "instructions_per_tick": runner.instructions_per_tick,
        "estimate": ({**time_and_energy(instructions), "part": PART,
                      "clock_hz": CLOCK_HZ} if instructions else None),
    }
