"""Build-system packaging of an export: CMake, a Zephyr module, PlatformIO and Arduino.

The CMake, Make and Zephyr files are hand-written (``c/package``) and find the library's
sources themselves (``src/*.c``), so one set serves every model and layout; the PlatformIO
and Arduino manifests carry the package's version. The tests check them against the
fields their documentation requires, since neither tool can run here.
"""

from __future__ import annotations

import json
from importlib import resources

from afdetect import __version__

NAME = "afdetect"
SENTENCE = "Atrial fibrillation detection in single-lead ECG: an integer-only CNN engine."
PARAGRAPH = ("Classifies ECG strips (normal, AF, other rhythm, noisy) and monitors raw ADC "
             "counts continuously, bit-exact with the afdetect Python package. C99, no "
             "floating point, no heap; all state in caller-allocated instances.")
URL = "https://pypi.org/project/afdetect/"
STATIC_FILES = ("CMakeLists.txt", "Makefile", "cmake/arm-none-eabi.cmake",
                "zephyr/module.yml", "zephyr/CMakeLists.txt", "zephyr/Kconfig")


def package_files() -> dict[str, str]:
    """``{path in the export: text}`` of the build-system files."""
    root = resources.files("afdetect.deploy") / "c" / "package"
    files = {name: (root / name).read_text() for name in STATIC_FILES}
    files["library.json"] = json.dumps({
        "name": NAME, "version": __version__, "description": SENTENCE,
        "keywords": ["ecg", "atrial fibrillation", "arrhythmia", "tinyml", "integer"],
        "license": "MIT", "homepage": URL, "frameworks": "*", "platforms": "*",
        "headers": "afdetect.h",
        "build": {"srcDir": "src", "includeDir": "src", "flags": ["-std=c99"]},
        "export": {"exclude": ["build", "afd_demo"]},
    }, indent=2) + "\n"
    files["library.properties"] = "".join(f"{k}={v}\n" for k, v in {
        "name": NAME, "version": __version__, "author": "afdetect",
        "maintainer": "afdetect", "sentence": SENTENCE, "paragraph": PARAGRAPH,
        "category": "Data Processing", "url": URL, "architectures": "*",
        "includes": "afdetect.h"}.items())
    return files
