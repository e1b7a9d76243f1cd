"""Cortex-M targets: cross-compiled, run under QEMU, bit-exact with the Python engine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import DATA, SAMPLES
from test_cli import assert_clean_error, run

from afdetect.deploy.targets import PART, TARGETS, time_and_energy

TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")
needs_toolchain = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS),
    reason="needs gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm")


MOST_INSTRUCTIONS_PER_30S = {"cortex-m4": 20e6, "cortex-m0plus": 40e6}
ATRIAL_CHECK_FLASH = 1_536  # the continuous mode's atrial check: code of its own, no tables


@needs_toolchain
@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m0plus"])
def test_target_check_is_bit_exact_under_qemu(target: str, tmp_path: Path) -> None:
    records = [SAMPLES / "A00001.hea", SAMPLES / "A00984.hea", DATA / "mitdb" / "100"]
    result = run("export", "--target", target, "--out", tmp_path, "--check", *records,
                 "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["identical"] and out["target"] == target
    assert [r["mode"] for r in out["records"]] == ["strip", "strip", "stream"]
    assert out["records"][2]["windows"] > 150
    # the atrial check on the core: every window's terms as afdetect scan's (sinus rhythm:
    # each window organised)
    assert out["records"][2]["atrial_identical"]
    assert out["records"][2]["organised_windows"] == out["records"][2]["windows"]
    assert out["instructions_per_tick"] == 40.0  # 1 ns per instruction, 25 MHz SysTick
    # small and fast at once: 12 KB of flash (tables and code; with the atrial check's code
    # beside them), 16 KB of RAM (the engine's state) and the instructions per 30 s of the
    # aims
    assert 8_000 < out["flash_bytes"] <= 12 * 1024 + ATRIAL_CHECK_FLASH
    assert 8_000 < out["ram_bytes"] <= 16 * 1024
    assert 1e6 < out["instructions_per_30s"] <= MOST_INSTRUCTIONS_PER_30S[target]
    # the continuous mode, timed in the engine alone: a fraction of a 64 MHz core
    assert out["records"][2]["instructions"] > 0
    assert 1e5 < out["stream_instructions_per_s"] < 64e6
    assert out["stream_average_ua"] == pytest.approx(
        52.0 * out["stream_instructions_per_s"] / 1e6, abs=0.01)
    example = tmp_path / "examples" / "cortex-m"
    assert (example / "startup.c").exists() and (example / "target.ld").exists()
    # RAM: the library has no static data; the larger instance (the driver's union)
    assert max(out["instance_bytes"].values()) == out["ram_bytes"]


@needs_toolchain
@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m0plus"])
def test_rr_models_continuous_mode_is_bit_exact_under_qemu(target: str, tmp_path: Path
                                                            ) -> None:
    """A small model with RR features: its windows wait on the core for their beats and
    come out as afdetect scan's; and the shipped geometry with RR features, atrial terms
    included."""
    from test_compress import SMALL_RR, _quantised

    from afdetect.compress.integer import to_integer
    from afdetect.data.preprocess import PreprocessConfig
    from afdetect.data.store import load_dataset
    from afdetect.deploy.codegen import firmware_files, write_export
    from afdetect.deploy.export import export
    from afdetect.deploy.targets import check_on_target, get_target
    from afdetect.monitor.scan import ScanConfig

    model = to_integer(_quantised(load_dataset(SAMPLES, progress=False, cache_dir=None),
                                  config=SMALL_RR))
    metadata = {"fs": 300, "preprocess": PreprocessConfig().to_dict(),
                "classes": ["N", "A", "O", "~"]}
    export(model, metadata, tmp_path, max_seconds=70)
    write_export(tmp_path, firmware_files())
    out = check_on_target(model, metadata, tmp_path, get_target(target),
                          [DATA / "mitdb" / "100"], ScanConfig(window_s=2.0, hop_s=0.5))
    (row,) = out["records"]
    assert out["identical"] and row["mode"] == "stream" and row["c_windows"] > 3000, row
    # the shipped geometry with RR features: the atrial check too, on the RR windows'
    # detector, every window's terms and verdict afdetect scan's
    from test_rr import shipped_with_rr

    rr_model, rr_metadata = shipped_with_rr()
    export(rr_model, rr_metadata, tmp_path / "shipped")
    write_export(tmp_path / "shipped", firmware_files())
    out = check_on_target(rr_model, rr_metadata, tmp_path / "shipped", get_target(target),
                          [DATA / "mitdb" / "100"])
    (row,) = out["records"]
    assert out["identical"] and row["windows"] == row["c_windows"] > 150, row
    assert row["atrial_identical"] and row["organised_windows"] == row["windows"], row


def test_unknown_target_lists_the_known_ones(tmp_path: Path) -> None:
    assert_clean_error(run("export", "--target", "cortex-m3", "--out", tmp_path),
                       "unknown target 'cortex-m3'", ", ".join(TARGETS))


def test_missing_toolchain_names_the_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no cross compiler, no QEMU
    from afdetect.deploy.targets import require_toolchain
    from afdetect.errors import AfdetectError

    with pytest.raises(AfdetectError, match="apt-get install --no-install-recommends "
                                            "gcc-arm-none-eabi libnewlib-arm-none-eabi"):
        require_toolchain(TARGETS["cortex-m4"])


def test_time_and_energy_follow_the_datasheet_current() -> None:
    e = time_and_energy(64_000_000)  # one second at 64 MHz
    assert e["time_at_64mhz_ms"] == 1000.0
    assert e["energy_uj"] == pytest.approx(float(PART["ua_per_mhz"]) * 64 * 3.0, rel=1e-6)


@needs_toolchain
def test_a_firmware_that_fails_under_qemu_gives_a_clear_error(tmp_path: Path) -> None:
    from afdetect.deploy.targets import run_firmware
    from afdetect.errors import AfdetectError

    elf = tmp_path / "broken.elf"
    elf.write_bytes(b"\x7fELF" + bytes(200))
    with pytest.raises(AfdetectError, match="cortex-m4: the firmware failed under QEMU"):
        run_firmware(elf, TARGETS["cortex-m4"], tmp_path, "strip\n1\n", timeout=30)


@needs_toolchain
@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m0plus"])
@pytest.mark.parametrize("layout", ["fast", "packed"])
def test_without_the_atrial_check_both_layouts_fit_12_kb_flash_and_16_kb_ram(
        target: str, layout: str, tmp_path: Path) -> None:
    result = run("export", "--layout", layout, "--target", target, "--no-atrial-check",
                 "--out", tmp_path, "--check", SAMPLES / "A00004.hea", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["identical"]
    assert out["flash_bytes"] <= 12 * 1024 and out["ram_bytes"] <= 16 * 1024
    assert 1e6 < out["instructions_per_30s"] <= 1.5 * MOST_INSTRUCTIONS_PER_30S[target]
    assert "#define AFD_ATRIAL 0" in (tmp_path / "src" / "afd_config.h").read_text()


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler on PATH")
def test_host_target_check_reports_its_sizes(tmp_path: Path) -> None:
    result = run("export", "--target", "host", "--out", tmp_path, "--check",
                 SAMPLES / "A00001.hea", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["identical"] and out["target"] == "host"
    assert out["flash_bytes"] > 20_000 and out["ram_bytes"] > 12_000
    assert out["instructions_per_30s"] is None  # QEMU counts instructions; the host does not
