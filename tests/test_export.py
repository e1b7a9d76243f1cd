"""The C99 export: bit-exact against the Python integer engine on real records."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import wfdb
from conftest import SAMPLES
from test_cli import assert_clean_error, run
from test_compress import SMALL, SMALL_RR, _quantised

from afdetect.compress.integer import to_integer
from afdetect.data.preprocess import PreprocessConfig, preprocess
from afdetect.data.store import load_dataset
from afdetect.deploy.engine import IntegerEngine
from afdetect.deploy.export import build, check, export, run_demo
from afdetect.deploy.format import save_compressed
from afdetect.io.records import read_record

pytestmark = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                reason="no C compiler on PATH")
RECORDS = sorted(str(p) for p in SAMPLES.glob("*.hea"))
METADATA = {"fs": 300, "preprocess": PreprocessConfig().to_dict(),
            "classes": ["N", "A", "O", "~"], "parent": {"parameters": 1000},
            "architecture": {"channels": [4, 6, 8], "kernel_sizes": [7, 5, 3],
                             "first_stride": 2, "n_classes": 4, "dropout": 0.25}}


@pytest.fixture(scope="module")
def model():
    samples = load_dataset(SAMPLES, progress=False, cache_dir=None)
    return to_integer(_quantised(samples))


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export")
    export(model, METADATA, out)
    return out


def test_c_engine_identical_to_python_on_real_records(model, exported: Path) -> None:
    result = check(model, METADATA, build(exported), RECORDS)
    assert len(result.records) == 12 and not result.failures
    assert result.identical


@pytest.mark.parametrize(("granularity", "config"),
                         [("weight", SMALL), ("kernel", SMALL), ("weight", SMALL_RR)])
def test_packed_layout_and_batch_mode_are_bit_exact(granularity: str, config,
                                                    tmp_path: Path) -> None:
    samples = load_dataset(SAMPLES, progress=False, cache_dir=None)
    model = to_integer(_quantised(samples, granularity=granularity, config=config))
    # the small test net keeps many steps per second: shorter strips keep int32 safe
    sizes = export(model, METADATA, tmp_path / "packed", layout="packed", max_seconds=120)
    assert sizes.row_pointers == 0 and sizes.tables < export(
        model, METADATA, tmp_path / "fast", max_seconds=120).tables
    result = check(model, METADATA, build(tmp_path / "packed"), RECORDS)
    assert len(result.records) == 12 and result.identical
    binary = build(tmp_path / "fast")
    engine = IntegerEngine(model)
    for path in RECORDS:
        signal = preprocess(read_record(path), PreprocessConfig())
        np.savetxt(tmp_path / "q.txt", model.quantise_input(signal), fmt="%d")
        out = subprocess.run([str(binary), "--batch", str(tmp_path / "q.txt")],
                             capture_output=True, text=True, check=True).stdout.split()
        assert [int(v) for v in out[1:]] == engine.logits(signal).tolist(), path


@pytest.mark.parametrize("scheme", ["csr", "bitmap", "relative"])
def test_packed_layout_decodes_each_scheme_when_forced(scheme: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import afdetect.deploy.format as fmt
    from afdetect.compress.sparse_index import (
        KERNEL,
        IndexEncoding,
        position_encodings,
        whole_kernels,
    )

    def forced(mask: np.ndarray) -> IndexEncoding:
        kernels = whole_kernels(mask)
        grid = mask if kernels is None else kernels
        enc = next(e for e in position_encodings(grid) if e.scheme == scheme)
        if kernels is None:
            return enc
        return IndexEncoding(KERNEL + scheme, enc.param, enc.streams, enc.bits, enc.entries)

    monkeypatch.setattr(fmt, "encode", forced)
    samples = load_dataset(SAMPLES, progress=False, cache_dir=None)
    for granularity in ("weight", "kernel"):
        model = to_integer(_quantised(samples, granularity=granularity))
        out = tmp_path / granularity
        export(model, METADATA, out, layout="packed")
        used = re.findall(r"P\d_biases, \d+, (\d),", (out / "afdetect_model.c").read_text())
        assert used == [_SCHEME_ID[scheme]] * len(model.layers)
        result = check(model, METADATA, build(out), RECORDS[:3])
        assert result.identical, granularity


_SCHEME_ID = {"bitmap": "1", "relative": "2", "csr": "3"}


def test_packed_layout_decodes_every_index_scheme(tmp_path: Path) -> None:
    from afdetect.compress.sparse_index import SCHEMES, encode

    samples = load_dataset(SAMPLES, progress=False, cache_dir=None)
    model = to_integer(_quantised(samples, sparsity=0.6))
    seen = set()
    rng = np.random.default_rng(0)
    # densities that make bitmap, relative, csr and dense the smallest encodings
    for density in (1.0, 0.55, 0.2, 0.03):
        for layer in model.layers:
            keep = rng.random(layer.mask.shape) < density
            keep.reshape(len(keep), -1)[:, 0] = True  # every row keeps something
            layer.mask = keep
            layer.sign = np.where(keep, np.where(rng.random(keep.shape) < 0.5, -1, 1), 0
                                  ).astype(np.int8)
            layer.shift = np.where(keep, layer.shift, 0).astype(np.int8)
            seen.add(encode(keep).scheme)
        export(model, METADATA, tmp_path / str(density), layout="packed")
        result = check(model, METADATA, build(tmp_path / str(density)), RECORDS[:3])
        assert result.identical, density
    assert {"dense", "bitmap", "relative"} <= seen <= set(SCHEMES)


def test_c_engine_runs_kernel_pruned_layers_by_kernel(tmp_path: Path) -> None:
    samples = load_dataset(SAMPLES, progress=False, cache_dir=None)
    model = to_integer(_quantised(samples, granularity="kernel"))
    export(model, METADATA, tmp_path)
    source = (tmp_path / "afdetect_model.c").read_text()
    groups = re.findall(r"L\d_bias, \d+, \d+, (\d+), (\d+),", source)  # k, group
    assert groups == [("7", "1"), ("5", "5"), ("3", "3")]  # conv1 has one input channel
    result = check(model, METADATA, build(tmp_path), RECORDS)
    assert len(result.records) == 12 and result.identical


def test_sanitizer_build_is_clean(model, exported: Path, tmp_path: Path) -> None:
    shutil.copytree(exported, tmp_path / "san")
    binary = build(tmp_path / "san", ("-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                                      "-g"))
    engine = IntegerEngine(model)
    for path in RECORDS[:4]:
        signal = preprocess(read_record(path), PreprocessConfig())
        _, logits = run_demo(binary, model.quantise_input(signal))  # raises on a report
        assert np.array_equal(logits, engine.logits(signal))


def test_integer_preprocessing_in_c_matches_python(model, exported: Path) -> None:
    binary = build(exported)
    engine = IntegerEngine(model)
    for path in RECORDS:
        raw = wfdb.rdrecord(path[:-4], physical=False)
        signal = preprocess(read_record(path), PreprocessConfig())
        _, logits = run_demo(binary, raw.d_signal[:, 0], adc_gain=int(raw.adc_gain[0]))
        assert np.array_equal(logits, engine.logits(signal)), path


@pytest.mark.parametrize("layout", ["fast", "packed"])
def test_generated_c_has_no_float_malloc_or_multiply_in_inference(model, layout: str,
                                                                   tmp_path: Path) -> None:
    exported = tmp_path / "c"
    export(model, METADATA, exported, layout=layout)
    source = re.sub(r"/\*.*?\*/", "", (exported / "afdetect_model.c").read_text(), flags=re.S)
    assert not re.search(r"\b(float|double|malloc|calloc|free)\b", source)
    assert "#include <stdio.h>" not in source and "#include <math.h>" not in source
    # the compiled inference functions hold no multiply or divide instruction (only the
    # preprocessing may: afd_quantise_input for strips; the continuous mode's front end,
    # which interpolates and estimates the variance)
    asm = tmp_path / "model.s"  # -O2: the -O3 vectoriser's index arithmetic aside
    subprocess.run(["cc", "-std=c99", "-O2", "-S", "-o", str(asm),
                    str(exported / "afdetect_model.c")], check=True)
    functions = re.findall(r"^(\w+):\n(.*?)\.cfi_endproc", asm.read_text(), re.S | re.M)
    names = {name for name, _ in functions}
    assert {"afd_push", "afd_finish", "afd_reset", "layer_push"} <= names
    for name, body in functions:
        if name in ("afd_quantise_input", "floor_div", "afd_stream_push", "stream_resampled",
                    "stream_block", "afd_stream_init", "gcd64",
                    # the host batch mode indexes its buffers with multiplies; its weights
                    # are still shifts
                    "afd_classify_batch", "batch_sizes", "afd_batch_work_bytes",
                    "conv_length"):
            continue
        assert not re.search(r"^\s+(i?mul|i?div)\w*\s", body, re.M), name


def test_exported_readme_example_runs(model, exported: Path, tmp_path: Path) -> None:
    shutil.copytree(exported, tmp_path / "fw")
    readme = (tmp_path / "fw" / "README.md").read_text()
    snippet = re.search(r"```c\n(.*?)```", readme, re.S).group(1)
    raw = wfdb.rdrecord(str(SAMPLES / "A00004"), physical=False).d_signal[:, 0]
    (tmp_path / "fw" / "firmware.c").write_text(snippet + f"""
#include <stdio.h>
static const int16_t strip[] = {{{", ".join(map(str, raw.tolist()))}}};
int main(void)
{{
    int32_t i, n = (int32_t)(sizeof strip / sizeof strip[0]);
    for (i = 0; i < n; i++) adc[i] = strip[i];
    printf("%d\\n", classify_strip(n, 1000));
    return 0;
}}
""")
    subprocess.run(["make", "-C", str(tmp_path / "fw")], check=True, capture_output=True)
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-o",
                    str(tmp_path / "fw" / "fw"), str(tmp_path / "fw" / "firmware.c"),
                    str(tmp_path / "fw" / "afdetect_model.c")], check=True)
    out = subprocess.run([str(tmp_path / "fw" / "fw")], capture_output=True, text=True)
    signal = preprocess(read_record(SAMPLES / "A00004"), PreprocessConfig())
    assert int(out.stdout) == int(IntegerEngine(model).logits(signal).argmax())
    np.savetxt(tmp_path / "fw" / "raw_counts.txt", raw, fmt="%d")
    demo = subprocess.run(["./afd_demo", "--adc", "1000", "raw_counts.txt"],
                          cwd=tmp_path / "fw", capture_output=True, text=True, check=True)
    assert demo.stdout.split()[0] in ("N", "A", "O", "~")


def test_export_cli_check_and_refusals(model, tmp_path: Path) -> None:
    save_compressed(tmp_path / "m.afq", model, METADATA)
    result = run("export", "--model", tmp_path / "m.afq", "--out", tmp_path / "c",
                 "--check", *RECORDS[:3], "--json")
    assert result.returncode == 0, result.stderr
    import json

    out = json.loads(result.stdout)
    assert out["identical"] is True and len(out["records"]) == 3
    assert_clean_error(run("export", "--model", "float", "--out", tmp_path / "f"),
                       "not a compressed model")


def test_rr_model_refuses_the_continuous_mode(tmp_path: Path) -> None:
    samples = load_dataset(SAMPLES, progress=False, cache_dir=None)
    model = to_integer(_quantised(samples, config=SMALL_RR))
    export(model, METADATA, tmp_path, max_seconds=120)
    assert "#define AFD_RR 1" in (tmp_path / "afdetect_model.h").read_text()
    long = Path(__file__).parent / "data" / "mitdb" / "100"
    result = check(model, METADATA, build(tmp_path), [long])
    assert not result.records
    assert result.failures and "continuous mode does not take models with RR" in \
        result.failures[0]
