"""The export's build-system packaging: CMake with the host compiler and the Arm
toolchain, and the Zephyr, PlatformIO and Arduino manifests against their documented
schemas (the tools themselves cannot fetch toolchains here)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from test_export import METADATA, RECORDS, model  # noqa: F401  (model: a fixture)

from afdetect import __version__
from afdetect.data.preprocess import PreprocessConfig, preprocess
from afdetect.deploy.export import export, run_demo
from afdetect.io.records import read_record
from afdetect.runtime.engine import IntegerEngine

# PlatformIO library.json: "name" and "version" required (docs.platformio.org, Library
# Manifest); the fields it defines, and those of "build".
PLATFORMIO_REQUIRED = ("name", "version")
PLATFORMIO_FIELDS = {"name", "version", "description", "keywords", "repository", "authors",
                     "license", "homepage", "export", "frameworks", "platforms", "headers",
                     "examples", "dependencies", "build", "scripts"}
PLATFORMIO_BUILD = {"builder", "flags", "unflags", "includeDir", "srcDir", "srcFilter",
                    "extraScript", "libArchive", "libLDFMode", "libCompatMode"}
# Arduino library.properties (Arduino Library Specification 1.5): the required fields and
# the categories it allows.
ARDUINO_REQUIRED = ("name", "version", "author", "maintainer", "sentence", "paragraph",
                    "category", "url", "architectures")
ARDUINO_CATEGORIES = {"Display", "Communication", "Signal Input/Output", "Sensors",
                      "Device Control", "Timing", "Data Storage", "Data Processing", "Other"}
# Zephyr module.yml (zephyr/scripts/zephyr_module.py's schema): top-level and build keys.
ZEPHYR_KEYS = {"name", "build", "samples", "tests", "boards", "blobs", "security", "runners",
               "package-managers"}
ZEPHYR_BUILD = {"cmake", "kconfig", "cmake-ext", "kconfig-ext", "sysbuild-cmake",
                "sysbuild-kconfig", "sysbuild-cmake-ext", "sysbuild-kconfig-ext",
                "depends", "settings"}



def _manifest_problems(out: Path) -> list[str]:
    """What the export's manifests lack or hold that their schemas do not allow; empty
    when all four are valid (and the paths they name exist)."""
    problems: list[str] = []
    pio: dict[str, Any] = json.loads((out / "library.json").read_text())
    problems += [f"library.json: no {k}" for k in PLATFORMIO_REQUIRED if not pio.get(k)]
    problems += [f"library.json: unknown field {k}" for k in set(pio) - PLATFORMIO_FIELDS]
    problems += [f"library.json: unknown build field {k}"
                 for k in set(pio.get("build", {})) - PLATFORMIO_BUILD]
    problems += [f"library.json: build.{k} {pio['build'][k]} is not a folder"
                 for k in ("srcDir", "includeDir")
                 if not (out / pio.get("build", {}).get(k, ".")).is_dir()]
    if len(pio.get("name", "")) > 50 or len(pio.get("description", "")) > 255:
        problems.append("library.json: name over 50 or description over 255 characters")
    lines = (out / "library.properties").read_text().splitlines()
    props = dict(line.split("=", 1) for line in lines if "=" in line)
    problems += [f"library.properties: no {k}" for k in ARDUINO_REQUIRED if not props.get(k)]
    if props.get("category") not in ARDUINO_CATEGORIES:
        problems.append(f"library.properties: category {props.get('category')!r}")
    if not (out / "src").is_dir():
        problems.append("library.properties: a 1.5 library keeps its sources in src/")
    module = yaml.safe_load((out / "zephyr" / "module.yml").read_text())
    problems += [f"zephyr/module.yml: unknown key {k}" for k in set(module) - ZEPHYR_KEYS]
    build = module.get("build", {})
    problems += [f"zephyr/module.yml: unknown build key {k}" for k in set(build) - ZEPHYR_BUILD]
    if not (out / build.get("cmake", "-") / "CMakeLists.txt").is_file():
        problems.append("zephyr/module.yml: build.cmake names no folder with CMakeLists.txt")
    if not (out / build.get("kconfig", "-")).is_file():
        problems.append("zephyr/module.yml: build.kconfig names no file")
    return problems


@pytest.fixture(scope="module", params=["fast", "packed"])
def exported(request: pytest.FixtureRequest, model, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
             ) -> Path:
    out = tmp_path_factory.mktemp(request.param)
    export(model, METADATA, out, layout=request.param)
    return out


def test_manifests_follow_their_schemas(exported: Path) -> None:
    assert _manifest_problems(exported) == []
    pio = json.loads((exported / "library.json").read_text())
    assert pio["version"] == __version__ and pio["headers"] == "afdetect.h"
    assert (exported / "src" / pio["headers"]).is_file()
    props = (exported / "library.properties").read_text()
    assert f"version={__version__}\n" in props and "includes=afdetect.h\n" in props
    kconfig = (exported / "zephyr" / "Kconfig").read_text()
    assert kconfig.startswith("config AFDETECT\n") and "CONFIG_AFDETECT" in (
        exported / "zephyr" / "CMakeLists.txt").read_text()


def test_manifest_check_finds_what_is_wrong(exported: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(exported, broken)
    pio = json.loads((broken / "library.json").read_text())
    del pio["version"]
    pio["build"]["srcDirectory"] = "src"
    (broken / "library.json").write_text(json.dumps(pio))
    (broken / "library.properties").write_text("name=afdetect\ncategory=Medical\n")
    (broken / "zephyr" / "module.yml").write_text("name: afdetect\nbuild:\n  cmake: nowhere\n"
                                                  "  kconfig: zephyr/Kconfig\n  cmak: x\n")
    problems = _manifest_problems(broken)
    for words in ("library.json: no version", "unknown build field srcDirectory",
                  "library.properties: no author", "category 'Medical'",
                  "unknown build key cmak", "build.cmake names no folder"):
        assert any(words in p for p in problems), (words, problems)


needs_cmake = pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")


def _cmake(source: Path, build: Path, *args: str) -> None:
    for cmd in (["cmake", "-S", str(source), "-B", str(build), *args],
                ["cmake", "--build", str(build)]):
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


@needs_cmake
def test_cmake_builds_the_library_and_demo_with_the_host_compiler(model, exported: Path,  # noqa: F811
                                                                  tmp_path: Path) -> None:
    _cmake(exported, tmp_path / "build", "-DCMAKE_COMPILE_WARNING_AS_ERROR=ON")
    assert (tmp_path / "build" / "libafdetect.a").is_file()
    signal = preprocess(read_record(RECORDS[0]), PreprocessConfig())
    _, logits = run_demo(tmp_path / "build" / "afd_demo", model.quantise_input(signal))
    assert np.array_equal(logits, IntegerEngine(model).logits(signal))


@needs_cmake
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs gcc-arm-none-eabi")
@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m0plus"])
def test_cmake_cross_compiles_the_library_for_cortex_m(exported: Path, tmp_path: Path,
                                                       cpu: str) -> None:
    _cmake(exported, tmp_path / "arm",
           f"-DCMAKE_TOOLCHAIN_FILE={exported / 'cmake' / 'arm-none-eabi.cmake'}",
           f"-DAFDETECT_CPU={cpu}", "-DCMAKE_COMPILE_WARNING_AS_ERROR=ON",
           "-DCMAKE_BUILD_TYPE=MinSizeRel")
    archive = tmp_path / "arm" / "libafdetect.a"
    assert archive.is_file() and not (tmp_path / "arm" / "afd_demo").exists()
    attributes = subprocess.run(["arm-none-eabi-readelf", "-A", str(archive)],
                                capture_output=True, text=True, check=True).stdout
    assert {"cortex-m4": "v7E-M", "cortex-m0plus": "v6S-M"}[cpu] in attributes


def test_make_builds_the_demo(exported: Path, tmp_path: Path) -> None:
    shutil.copytree(exported, tmp_path / "c")
    result = subprocess.run(["make", "-C", str(tmp_path / "c"), "afd_demo", "libafdetect.a"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "c" / "afd_demo").is_file() and (tmp_path / "c" / "libafdetect.a").is_file()
