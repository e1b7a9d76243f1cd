"""The C runtime on its own: unit tests in C (tests/c) on a hand-made model, in both weight
layouts, shift-only and multiplying (the dual multiply-accumulate kernels of Cortex-M4 on
their portable C instructions too), with strict warnings, under AddressSanitizer and UBSan,
and cppcheck clean."""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest

from afdetect.deploy.codegen import COMMON_SOURCES

RUNTIME = Path(str(resources.files("afdetect.deploy") / "c"))
TESTS = Path(__file__).parent / "c"
STRICT = ("-std=c99", "-Wall", "-Wextra", "-Wconversion", "-Werror")
SANITIZE = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g")
LAYOUTS = {"fast": (), "fast-multiply": ("-DAFD_MULTIPLY=1",),
           "fast-dsp": ("-DAFD_MULTIPLY=1", "-DAFD_DSP=1"),
           "packed": ("-DAFD_TEST_PACKED",),
           "packed-dsp": ("-DAFD_TEST_PACKED", "-DAFD_MULTIPLY=1", "-DAFD_DSP=1"),
           # the continuous mode with the atrial check built in (this net is too quick for
           # it to run: afd_stream_init turns it off, and the windows say so)
           "fast-atrial": ("-DAFD_TEST_ATRIAL",)}

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("cc") is None,
                                reason="no C compiler on PATH")


def _sources(layout: str) -> list[str]:
    kernels = layout.split("-")[0]
    names = [n for n in COMMON_SOURCES if n.endswith(".c")] + [f"afd_kernels_{kernels}.c",
                                                                "afd_batch.c"]
    return [str(RUNTIME / n) for n in names] + [str(TESTS / "test_runtime.c"),
                                                str(TESTS / "test_tables.c")]


def _build_and_run(compiler: str, flags: tuple[str, ...], layout: str, binary: Path) -> str:
    build = subprocess.run([compiler, *STRICT, *flags, *LAYOUTS[layout], f"-I{TESTS}",
                            f"-I{RUNTIME}", "-o", str(binary), *_sources(layout)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(binary)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


@pytest.mark.parametrize("layout", LAYOUTS)
def test_runtime_unit_tests_pass_with_strict_warnings(layout: str, tmp_path: Path) -> None:
    out = _build_and_run(shutil.which("cc") or "gcc", ("-O2",), layout, tmp_path / "t")
    assert f"{layout.split('-')[0]} layout:" in out and ", 0 failed;" in out


@pytest.mark.parametrize("layout", LAYOUTS)
def test_runtime_unit_tests_pass_under_sanitizers(layout: str, tmp_path: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc for the sanitizer build")
    probe = tmp_path / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    made = subprocess.run([gcc, *SANITIZE, "-o", str(tmp_path / "probe"), str(probe)],
                          capture_output=True)
    if made.returncode != 0 or subprocess.run([str(tmp_path / "probe")]).returncode != 0:
        pytest.skip("gcc cannot build or run with AddressSanitizer and UBSan here")
    out = _build_and_run(gcc, ("-O1", *SANITIZE), layout, tmp_path / "t")
    assert ", 0 failed;" in out


@pytest.mark.parametrize("atrial", [(), ("-DAFD_TEST_ATRIAL",)])
def test_runtime_compiles_for_rr_models_with_strict_warnings(atrial: tuple[str, ...]) -> None:
    # afd_rr.c's and the continuous mode's RR features (and its atrial check, sharing
    # their detector) are checked against Python in test_rr.py; here their warnings
    result = subprocess.run([shutil.which("cc") or "gcc", *STRICT, "-DAFD_TEST_RR", *atrial,
                             f"-I{TESTS}", f"-I{RUNTIME}", "-fsyntax-only",
                             str(RUNTIME / "afd_rr.c"), str(RUNTIME / "afd_strip.c"),
                             str(RUNTIME / "afd_beats.c"), str(RUNTIME / "afd_stream.c")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("cppcheck") is None, reason="needs cppcheck")
@pytest.mark.parametrize("define", ["", "-DAFD_MULTIPLY=1", "-DAFD_TEST_PACKED",
                                    "-DAFD_TEST_RR", "-DAFD_TEST_ATRIAL",
                                    "-DAFD_TEST_RR -DAFD_TEST_ATRIAL", "-DAFD_DSP=1"])
def test_runtime_is_cppcheck_clean(define: str) -> None:
    cmd = ["cppcheck", "--error-exitcode=1", "--enable=warning,style,performance,portability",
           "--std=c99", "--quiet", *define.split(), f"-I{TESTS}", f"-I{RUNTIME}",
           *map(str, sorted(RUNTIME.glob("*.c"))), *map(str, sorted(TESTS.glob("*.c")))]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
