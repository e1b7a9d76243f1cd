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
from afdetect.deploy.export import (
    CFLAGS,
    build,
    build_objects,
    c_compiler,
    check,
    export,
    library_sources,
    run_demo,
    run_stream_demo,
)
from afdetect.io.records import Recording, open_stream, read_record
from afdetect.models import resolve_model
from afdetect.monitor.scan import IntegerStepModel, ScanConfig, scan_stream
from afdetect.runtime.engine import IntegerEngine
from afdetect.runtime.format import load_compressed, save_compressed

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
    import afdetect.runtime.format as fmt
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
        tables = (out / "src" / "afd_model_tables.c").read_text()
        used = re.findall(r"P\d_biases, \d+, (\d),", tables)
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
    source = (tmp_path / "src" / "afd_model_tables.c").read_text()
    # each layer's k and tap bits (0: a record per whole kernel)
    groups = re.findall(r"\{\d+, \d+, (\d+), [^{}]*L\d_biases, \d+, \d+, (\d+),", source)
    # conv1 has one input channel: pruned by weight; the classifier's kernels are single
    assert groups == [("7", "3"), ("5", "0"), ("3", "0"), ("1", "0")]
    result = check(model, METADATA, build(tmp_path), RECORDS)
    assert len(result.records) == 12 and result.identical


SANITIZE = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g")
STREAM_INIT_TEST = r"""
#include <stdio.h>
#include "afdetect.h"
static long windows;
static afd_stream_t monitor;
static void on_window(int cls, const int32_t logits[AFD_N_CLASSES],
                      const afd_atrial_t *atrial, void *user)
{
    (void)cls; (void)logits; (void)atrial; (void)user;
    windows++;
}
int main(void)  /* prints "rate status windows" for 6 s of input at each rate */
{
    static const int32_t rates[] = {INT32_MIN, -1, 0, 99, 100, 128, 360, 44100,
                                    AFD_MAX_FS_IN_HZ, AFD_MAX_FS_IN_HZ + 1, INT32_MAX};
    unsigned i;
    long j;
    for (i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        int status = afd_stream_init(&monitor, rates[i], 1, 1, on_window, NULL);
        windows = 0;
        for (j = 0; status == 0 && j < 6L * rates[i]; j++)
            afd_stream_push(&monitor, (int32_t)((j * 7919) % 2001) - 1000);
        printf("%ld %d %ld\n", (long)rates[i], status, windows);
    }
    return 0;
}
"""


def _compile(compiler: str, flags: tuple[str, ...], binary: Path, *sources: Path) -> None:
    subprocess.run([compiler, *CFLAGS, *flags, "-o", str(binary), *map(str, sources)],
                   check=True, capture_output=True, text=True)


def _sanitizer_gcc(tmp_path: Path) -> str:
    """The host gcc, once a trivial program built and run with SANITIZE works; else skip."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc on PATH for the sanitizer build")
    (tmp_path / "probe.c").write_text("int main(void) { return 0; }\n")
    try:
        _compile(gcc, SANITIZE, tmp_path / "probe", tmp_path / "probe.c")
        subprocess.run([str(tmp_path / "probe")], check=True, capture_output=True, timeout=60)
    except subprocess.CalledProcessError as exc:
        reason = (exc.stderr or b"").strip().splitlines()
        pytest.skip(f"gcc cannot build or run with AddressSanitizer and UBSan here: "
                    f"{reason[0] if reason else exc}")
    return gcc


def _stream_init_rates(compiler: str, flags: tuple[str, ...], exported: Path,
                       tmp_path: Path) -> dict[int, tuple[int, int]]:
    """{rate: (afd_stream_init's status, windows in 6 s)} from STREAM_INIT_TEST."""
    (tmp_path / "init.c").write_text(STREAM_INIT_TEST)
    _compile(compiler, (*flags, f"-I{exported / 'src'}"), tmp_path / "init",
             tmp_path / "init.c", *library_sources(exported))
    out = subprocess.run([str(tmp_path / "init")], capture_output=True, text=True, check=True,
                         timeout=300).stdout
    return {int(r): (int(s), int(w)) for r, s, w in (line.split() for line in out.splitlines())}


def test_stream_init_refuses_rates_it_cannot_handle(exported: Path, tmp_path: Path) -> None:
    header = (exported / "src" / "afdetect.h").read_text()
    assert "#define AFD_MIN_FS_IN_HZ 100L" in header
    assert "#define AFD_MAX_FS_IN_HZ 1000000L" in header
    rates = _stream_init_rates(c_compiler() or "cc", (), exported, tmp_path)
    refused = {r for r, (status, _) in rates.items() if status == -1}
    assert refused == {-2**31, -1, 0, 99, 1_000_001, 2**31 - 1}
    windows = {w for status, w in rates.values() if status == 0}
    assert min(windows) >= 1 and max(windows) - min(windows) <= 1  # the same 6 s at any rate


def _demo(binary: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_demo_reads_whole_files_and_refuses_bad_ones(model, exported: Path,
                                                     tmp_path: Path) -> None:
    binary = build(exported)
    raws = [wfdb.rdrecord(path[:-4], physical=False).d_signal[:, 0] for path in RECORDS[:3]]
    joined = np.concatenate(raws)  # 90 s: more than the 18,300 samples it used to read
    signal = preprocess(Recording(joined / 1000.0, 300.0, "joined"), PreprocessConfig())
    _, logits = run_demo(binary, joined, adc_gain=1000)
    assert np.array_equal(logits, IntegerEngine(model).logits(signal))
    max_samples = int(re.search(r"AFD_MAX_SAMPLES (\d+)L",
                                (exported / "src" / "afd_config.h").read_text()).group(1))
    np.savetxt(tmp_path / "long.txt", np.resize(joined, max_samples + 1), fmt="%d")
    (tmp_path / "words.txt").write_text("12\n-7\nhello\n")
    (tmp_path / "wide.txt").write_text("12\n40000\n")
    for args, status, message in [
            (("--adc", "1000", tmp_path / "long.txt"), 1,
             f"long.txt: more than {max_samples} samples"),
            (("--adc", "1000", tmp_path / "words.txt"), 1, 'sample 3 is "hello"'),
            (("--adc", "1000", tmp_path / "wide.txt"), 1, 'sample 2 is "40000"'),
            (("--adc", "0", tmp_path / "wide.txt"), 2, "usage"),
            (("--adc", "1000", tmp_path / "missing.txt"), 1, "missing.txt: cannot open"),
            (("--stream", "2147483647", "10", "3", tmp_path / "wide.txt"), 2, "FS 100 to"),
            (("--stream", "360", "10", "3", tmp_path / "words.txt"), 1, 'sample 3 is "hello"')]:
        result = _demo(binary, *args)
        assert result.returncode == status and message in result.stderr, (args, result)


def test_sanitizers_find_nothing_in_engine_and_demo(model, exported: Path,
                                                    tmp_path: Path) -> None:
    """The engine and demo under AddressSanitizer and UBSan (any report aborts), on real
    records in every mode, at the edges of their input ranges."""
    gcc = _sanitizer_gcc(tmp_path)
    binary = tmp_path / "afd_demo"
    _compile(gcc, (*SANITIZE, f"-I{exported / 'src'}"), binary,
             exported / "examples" / "demo" / "demo.c", *library_sources(exported))
    mitdb = Path(__file__).parent / "data" / "mitdb" / "100"  # 30 min: continuous mode
    # this small test net has 0.05-s steps: windows of 3 s fit the C window buffer
    result = check(model, METADATA, binary, [*RECORDS[:3], mitdb],
                   ScanConfig(window_s=3.0, hop_s=1.0))
    assert [r["mode"] for r in result.records] == ["strip"] * 3 + ["stream"]
    assert result.identical, result.records
    engine = IntegerEngine(model)
    raw = wfdb.rdrecord(RECORDS[0][:-4], physical=False).d_signal[:, 0]
    _, logits = run_demo(binary, raw, adc_gain=1000)
    assert np.array_equal(logits, engine.logits(preprocess(read_record(RECORDS[0]),
                                                           PreprocessConfig())))
    np.savetxt(tmp_path / "q.txt", model.quantise_input(preprocess(
        read_record(RECORDS[0]), PreprocessConfig())), fmt="%d")
    batch = _demo(binary, "--batch", tmp_path / "q.txt")
    assert batch.returncode == 0 and [int(v) for v in batch.stdout.split()[1:]] == \
        logits.tolist(), batch.stderr
    # the longest strip at full scale, and the extreme gains
    max_samples = int(re.search(r"AFD_MAX_SAMPLES (\d+)L",
                                (exported / "src" / "afd_config.h").read_text()).group(1))
    full = np.random.default_rng(0).choice([-32768, 32767], max_samples)
    for gain in (1, 65535):
        run_demo(binary, full, adc_gain=gain)  # raises on a sanitizer report
    rates = _stream_init_rates(gcc, SANITIZE, exported, tmp_path)
    assert rates[2**31 - 1][0] == -1 and rates[1_000_000][0] == 0


def test_integer_preprocessing_in_c_matches_python(model, exported: Path) -> None:
    binary = build(exported)
    engine = IntegerEngine(model)
    for path in RECORDS:
        raw = wfdb.rdrecord(path[:-4], physical=False)
        signal = preprocess(read_record(path), PreprocessConfig())
        _, logits = run_demo(binary, raw.d_signal[:, 0], adc_gain=int(raw.adc_gain[0]))
        assert np.array_equal(logits, engine.logits(signal)), path


@pytest.mark.parametrize("layout", ["fast", "packed"])
def test_library_has_no_float_malloc_or_multiply_in_inference(model, layout: str,
                                                              tmp_path: Path) -> None:
    exported = tmp_path / "c"
    export(model, METADATA, exported, layout=layout)
    for path in sorted((exported / "src").iterdir()):
        source = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
        assert not re.search(r"\b(float|double|malloc|calloc|free)\b", source), path.name
        assert "#include <stdio.h>" not in source and "#include <math.h>" not in source
    # the compiled inference functions hold no multiply or divide instruction (only the
    # preprocessing may: afd_quantise_input for strips; the continuous mode's front end,
    # which interpolates and estimates the variance)
    functions = []
    for source in library_sources(exported):
        asm = tmp_path / f"{source.stem}.s"  # -O2: the -O3 vectoriser's index arithmetic aside
        subprocess.run(["cc", "-std=c99", "-O2", "-S", f"-I{exported / 'src'}", "-o", str(asm),
                        str(source)], check=True)
        functions += re.findall(r"^(\w+):\n(.*?)\.cfi_endproc", asm.read_text(), re.S | re.M)
    # no global state: no object has writable data (.data.rel.ro: the const tables'
    # pointers, relocated once at load)
    for obj in build_objects(exported):
        listing = subprocess.run(["size", "-A", str(obj)], capture_output=True, text=True,
                                 check=True).stdout
        writable = [line for line in listing.splitlines() if line.startswith((".data", ".bss"))
                    and not line.startswith(".data.rel.ro") and line.split()[1] != "0"]
        assert not writable, (obj.name, writable)
    names = {name for name, _ in functions}
    assert {"afd_strip_push", "afd_strip_finish", "afd_strip_init", "afd_net_push",
            "afd_conv_tile", "afd_fc_apply", "afd_cursor_kernel"} <= names
    for name, body in functions:
        if name in ("afd_quantise_input", "afd_stream_push", "stream_resampled",
                    "stream_block", "afd_stream_init", "gcd32",
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
static const int16_t recording[] = {{{", ".join(map(str, raw.tolist()))}}};
int main(void)
{{
    int32_t i, n = (int32_t)(sizeof recording / sizeof recording[0]);
    for (i = 0; i < n; i++) adc[i] = recording[i];
    printf("%d\\n", classify_strip(n, 1000));
    return 0;
}}
""")
    subprocess.run(["make", "-C", str(tmp_path / "fw")], check=True, capture_output=True)
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2",
                    f"-I{tmp_path / 'fw' / 'src'}", "-o", str(tmp_path / "fw" / "fw"),
                    str(tmp_path / "fw" / "firmware.c"),
                    *map(str, library_sources(tmp_path / "fw"))], check=True)
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


MITDB_100 = Path(__file__).parent / "data" / "mitdb" / "100"  # 30 min of sinus rhythm
AFTDB_A01 = Path(__file__).parent / "data" / "aftdb" / "a01"  # 1 min of AF at 128 Hz


def test_continuous_mode_atrial_check_is_bit_exact_with_scan(tmp_path: Path) -> None:
    """The shipped model's continuous mode: every window's atrial terms and verdict equal
    afdetect scan's, also under AddressSanitizer and UBSan; windows the check cannot
    cover, and a build without it, say so and keep their logits."""
    model, metadata = load_compressed(resolve_model("compressed")[1])
    export(model, metadata, tmp_path / "c")
    config = (tmp_path / "c" / "src" / "afd_config.h").read_text()
    assert "#define AFD_ATRIAL 1" in config and "#define AFD_ATRIAL_LIMIT 144" in config
    binary = build(tmp_path / "c")
    row = check(model, metadata, binary, [MITDB_100]).records[0]
    assert row["mode"] == "stream" and row["windows"] == 173, row
    assert row["identical"] and row["atrial_identical"]
    assert row["organised_windows"] == 173  # a P wave before every QRS: never AF
    scanner = IntegerStepModel("shipped", model, int(metadata["fs"]))
    scan = scan_stream(scanner, open_stream(AFTDB_A01))
    on_grid = scan.window_starts % 6 == 0
    logits, atrial = run_stream_demo(binary, open_stream(AFTDB_A01), 18, 6)
    assert atrial is not None and len(atrial) == on_grid.sum() == 3
    assert np.array_equal(logits, scan.integer_logits[on_grid])
    assert np.array_equal(atrial[:, :2], scan.atrial_terms[on_grid])
    assert not atrial[:, 3].any() and (atrial[:, 2] >= 4).all()  # AF: no organised window
    assert (atrial[:, 0] < atrial[:, 1]).all()
    # hops that do not tile the window: no check, the same logits
    step_s = scanner.downsampling / scanner.fs
    scan_4 = scan_stream(scanner, open_stream(AFTDB_A01),
                         ScanConfig(window_s=18 * step_s, hop_s=4 * step_s))
    logits_4, none = run_stream_demo(binary, open_stream(AFTDB_A01), 18, 4)
    assert none is None and len(logits_4) == 4
    assert np.array_equal(logits_4, scan_4.integer_logits[scan_4.window_starts % 4 == 0])
    # compiled out
    off = tmp_path / "afd_demo_off"
    _compile(c_compiler() or "cc", ("-DAFD_ATRIAL=0", f"-I{tmp_path / 'c' / 'src'}"), off,
             tmp_path / "c" / "examples" / "demo" / "demo.c", *library_sources(tmp_path / "c"))
    logits_off, none = run_stream_demo(off, open_stream(AFTDB_A01), 18, 6)
    assert none is None and np.array_equal(logits_off, logits)
    gcc = _sanitizer_gcc(tmp_path)
    sanitized = tmp_path / "afd_demo_asan"
    _compile(gcc, (*SANITIZE, f"-I{tmp_path / 'c' / 'src'}"), sanitized,
             tmp_path / "c" / "examples" / "demo" / "demo.c", *library_sources(tmp_path / "c"))
    row = check(model, metadata, sanitized, [MITDB_100]).records[0]
    assert row["identical"] and row["atrial_identical"]
