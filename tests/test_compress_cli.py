"""`afdetect compress`, `report`, and the compressed model in `predict`/`evaluate`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SAMPLES
from test_cli import assert_clean_error, run

from afdetect.compress.accounting import GLOBAL_BITS
from afdetect.compress.recipe import CompressConfig
from afdetect.runtime.format import load_compressed


@pytest.fixture(scope="module")
def compressed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A float model trained briefly on the samples, compressed through the CLI."""
    tmp = tmp_path_factory.mktemp("compress")
    assert run("train", "--data", SAMPLES, "--out", tmp / "float", "--epochs", "1").returncode == 0
    result = run("compress", "--model", tmp / "float" / "model.pt", "--data", SAMPLES,
                 "--out", tmp / "m.afq", "--sparsity", "0.8", "--bits", "4",
                 "--prune-epochs", "1", "--qat-epochs", "1", "--qat-lr", "2e-4")
    assert result.returncode == 0, result.stderr
    assert "compression" in result.stdout and "in-sample" in result.stdout
    recipe = load_compressed(tmp / "m.afq")[1]["recipe"]
    assert recipe["qat"]["lr"] == 2e-4 and recipe["prune"]["lr"] == CompressConfig().prune.lr
    return tmp / "m.afq"


def test_report_accounts_for_every_layer(compressed: Path) -> None:
    result = run("report", "--model", compressed, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    layers = report["layers"]
    assert [r["name"] for r in layers][-1] == "classifier"
    assert sum(r["stored_bits"] for r in layers) + GLOBAL_BITS == report["stored_bits"]
    assert report["compression_ratio"] == pytest.approx(
        32 * report["baseline_params"] / report["stored_bits"])
    assert report["sparsity"] == pytest.approx(0.8, abs=0.01)
    deployment = report["deployment"]
    assert deployment["operations_30s"]["multiplies"] == 0
    assert deployment["energy"]["compressed_uj"] < deployment["energy"][
        "dense_float_weights_in_sram_uj"]
    table = run("report", "--model", compressed)
    assert table.returncode == 0 and "classifier" in table.stdout and "uJ" in table.stdout


def test_compressed_model_predicts_and_evaluates(compressed: Path) -> None:
    result = run("predict", SAMPLES / "A00001.hea", "--model", compressed, "--json")
    assert result.returncode == 0, result.stderr
    probabilities = json.loads(result.stdout)["predictions"][0]["probabilities"]
    assert sum(probabilities.values()) == pytest.approx(1.0)
    result = run("evaluate", "--data", SAMPLES, "--model", compressed, "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["n_records"] == 12


def test_compress_resumes_from_its_stages(compressed: Path, tmp_path: Path) -> None:
    work = compressed.with_name(compressed.name + ".work")
    stages = sorted(p.name for p in work.iterdir())
    assert any(s.startswith("prune-") for s in stages) and any(s.startswith("qat-") for s in stages)
    result = run("compress", "--model", compressed.parent / "float" / "model.pt", "--data",
                 SAMPLES, "--out", tmp_path / "again.afq", "--work", work, "--sparsity", "0.8",
                 "--bits", "4", "--prune-epochs", "1", "--qat-epochs", "1", "--qat-lr", "2e-4")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in work.iterdir()) == stages  # nothing retrained
    assert (tmp_path / "again.afq").read_bytes() != b""


def test_a_mean_max_model_predicts_strips_but_compress_and_scan_refuse_it(
        tmp_path: Path) -> None:
    from afdetect.data.preprocess import PreprocessConfig
    from afdetect.model.cnn import AFNet, CNNConfig
    from afdetect.model.io import save_float_model

    parent = tmp_path / "meanmax.pt"
    save_float_model(parent, AFNet(CNNConfig(pooling="mean_max")), PreprocessConfig())
    predicted = run("predict", "--model", parent, SAMPLES / "A00001.hea", "--json")
    assert predicted.returncode == 0, predicted.stderr
    result = run("compress", "--model", parent, "--data", SAMPLES, "--out", tmp_path / "m.afq")
    assert_clean_error(result, "meanmax.pt: mean_max pooling")
    assert not (tmp_path / "m.afq").exists()
    long = Path(__file__).parent / "data" / "mitdb" / "100"
    assert_clean_error(run("scan", "--model", parent, long),
                       "models with mean_max pooling classify strips")


def test_tampered_compressed_model_is_refused(compressed: Path, tmp_path: Path) -> None:
    data = bytearray(compressed.read_bytes())
    data[100] ^= 0xFF
    (tmp_path / "bad.afq").write_bytes(bytes(data))
    assert_clean_error(run("predict", SAMPLES / "A00001.hea", "--model", tmp_path / "bad.afq"),
                       "bad.afq: checksum mismatch")
    (tmp_path / "short.afq").write_bytes(compressed.read_bytes()[:50])
    assert_clean_error(run("report", "--model", tmp_path / "short.afq"), "short.afq")
    assert_clean_error(run("compress", "--model", "float", "--data", SAMPLES, "--out",
                           tmp_path / "x.afq", "--bits", "1"), "--bits must be in 2..8")
    assert_clean_error(run("compress", "--model", "float", "--data", SAMPLES, "--out",
                           tmp_path / "x.afq", "--size-budget", "-5"), "--size-budget must be")
    assert_clean_error(run("compress", "--model", "float", "--data", SAMPLES, "--out",
                           tmp_path / "x.afq", "--bits", "7", "--extra-bits", "2"),
                       "--extra-bits must be at least 1, with --bits + --extra-bits at most 8")


def test_shipped_4kb_model_fits_its_budget_and_runs_bit_exact_in_c(tmp_path: Path) -> None:
    result = run("report", "--model", "compressed-4kb", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["stored_bytes"] <= 3900  # the recipe's --size-budget
    base = CompressConfig().quant.weight_bits
    assert set(report["weight_bits"]) <= {base, base + 1, base + 2}  # --extra-bits 2
    assert report["stored_bits"] == sum(layer["stored_bits"] for layer in report["layers"]) \
        + GLOBAL_BITS
    records = sorted(str(p) for p in Path(SAMPLES).glob("*.hea"))[:3]
    result = run("export", "--model", "compressed-4kb", "--out", tmp_path / "c", "--check",
                 *records, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["identical"] is True


def test_shipped_default_model_is_the_compressed_one_within_its_size_contract() -> None:
    result = run("report", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["model"] == "compressed"
    base = CompressConfig().quant.weight_bits  # the default recipe
    assert set(report["weight_bits"]) <= {base, base + 1}
    assert report["compression_ratio"] == pytest.approx(
        32 * report["baseline_params"] / report["stored_bits"])
    assert report["compression_ratio"] >= 91.1 and report["stored_bytes"] < 8 * 1024
    assert report["stored_bits"] == sum(layer["stored_bits"] for layer in report["layers"]) \
        + GLOBAL_BITS
