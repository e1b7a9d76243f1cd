from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SAMPLES

import afdetect.train.loop as loop
from afdetect.data.store import load_dataset
from afdetect.errors import AfdetectError
from afdetect.model import CNNConfig, load_float_model
from afdetect.train import FitConfig, TrainConfig, predict_logits, train

TINY = TrainConfig(FitConfig(epochs=3, batch_size=4, crop_seconds=8.0),
                   model=CNNConfig(channels=(4, 4, 8), kernel_sizes=(7, 5, 3)))


@pytest.fixture(scope="module")
def samples():
    return load_dataset(SAMPLES, TINY.preprocess, cache_dir=None, progress=False)


def test_smoke_training_writes_a_loadable_model(samples, tmp_path: Path) -> None:
    train(TINY, samples, tmp_path, val_set=samples, progress=False)
    model = load_float_model(tmp_path / "model.pt")
    assert model.network.config == TINY.model
    assert len(model.metadata["history"]) == 3
    logits = predict_logits(model.network, samples.signals)
    assert logits.shape == (12, 4) and np.all(np.isfinite(logits))


def test_same_seed_same_model(samples, tmp_path: Path) -> None:
    a = train(TINY, samples, tmp_path / "a", progress=False)
    b = train(TINY, samples, tmp_path / "b", progress=False)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name


def cut_after_two_epochs(monkeypatch: pytest.MonkeyPatch, run: Callable[[], object]) -> None:
    """Run a training that dies (KeyboardInterrupt) once epoch 2 is checkpointed."""
    real_write = loop.write_json_atomic
    calls = {"n": 0}

    def crash_after_second_epoch(path, data, indent=1):
        real_write(path, data, indent)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "write_json_atomic", crash_after_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        run()
    monkeypatch.undo()


@pytest.mark.parametrize("config", [TINY, TrainConfig(TINY.fit, TINY.model, ema=0.9)],
                         ids=["plain", "ema"])
def test_resume_after_a_crash_gives_the_same_model(samples, tmp_path: Path, config: TrainConfig,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    reference = train(config, samples, tmp_path / "whole", progress=False)
    cut_after_two_epochs(monkeypatch, lambda: train(config, samples, tmp_path / "cut",
                                                    progress=False))
    assert not (tmp_path / "cut" / "model.pt").exists()
    resumed = train(config, samples, tmp_path / "cut", resume=True, progress=False)
    for (name, pa), pb in zip(reference.state_dict().items(), resumed.state_dict().values(),
                              strict=True):
        assert torch.equal(pa, pb), name


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
def test_a_run_cut_on_the_gpu_resumes_on_the_cpu(samples, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    cut_after_two_epochs(monkeypatch, lambda: train(TINY, samples, tmp_path, progress=False,
                                                    device="cuda"))
    model = train(TINY, samples, tmp_path, resume=True, progress=False)
    assert all(p.device.type == "cpu" for p in model.parameters())
    saved = load_float_model(tmp_path / "model.pt")
    assert saved.metadata["device"] == "cpu" and len(saved.metadata["history"]) == 3


@needs_cuda
def test_training_on_the_gpu_leaves_the_model_on_the_cpu_and_scores_like_it(
        samples, tmp_path: Path) -> None:
    model = train(TINY, samples, tmp_path, val_set=samples, progress=False, device="cuda")
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert load_float_model(tmp_path / "model.pt").metadata["device"] == "cuda"
    on_cpu = predict_logits(model, samples.signals)
    on_gpu = predict_logits(model.to("cuda"), samples.signals)
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-3, atol=1e-3)


def test_resume_refuses_another_configuration(samples, tmp_path: Path) -> None:
    train(TINY, samples, tmp_path, progress=False)
    other = TrainConfig(FitConfig(epochs=3, batch_size=4, crop_seconds=8.0, seed=5),
                        model=TINY.model)
    with pytest.raises(AfdetectError, match="another configuration"):
        train(other, samples, tmp_path, resume=True, progress=False)


def test_ema_saves_the_moving_average_of_the_weights(samples, tmp_path: Path) -> None:
    from afdetect.model import AFNet

    decay = 0.8
    torch.manual_seed(0)
    model = AFNet(TINY.model)
    trajectory: list[dict[str, torch.Tensor]] = []

    def record() -> None:
        trajectory.append({n: p.detach().clone() for n, p in model.named_parameters()})

    loop.fit(model, TINY.fit, samples, tmp_path, fingerprint={}, n_classes=4,
             progress=False, after_step=record, ema=decay)
    expected = dict(trajectory[0])
    for step in trajectory[1:]:
        expected = {n: decay * expected[n] + (1 - decay) * step[n] for n in expected}
    final = dict(model.named_parameters())
    for name, value in expected.items():
        assert torch.allclose(final[name], value, atol=1e-6), name
    assert not torch.allclose(final["classifier.weight"], trajectory[-1]["classifier.weight"])


def test_label_smoothing_keeps_the_logits_smaller(samples, tmp_path: Path) -> None:
    import dataclasses

    scale = {}
    for eps in (0.0, 0.9):  # 0.9: targets 0.325 for the label, 0.225 for each other class
        config = dataclasses.replace(TINY, fit=dataclasses.replace(TINY.fit, epochs=6,
                                                                   label_smoothing=eps))
        net = train(config, samples, tmp_path / str(eps), progress=False)
        scale[eps] = np.abs(predict_logits(net, samples.signals)).mean()
    assert scale[0.9] < 0.9 * scale[0.0]


def test_mean_max_pooling_reads_the_maximum_of_the_valid_steps_only() -> None:
    from afdetect.model.cnn import pool_time

    config = CNNConfig(channels=(2,), kernel_sizes=(3,), pooling="mean_max")  # 4 samples/step
    h = torch.tensor([[[1.0, 3.0, 9.0], [0.0, 2.0, 7.0]],    # 2 valid steps, 9 and 7 padding
                      [[1.0, 3.0, 5.0], [4.0, 0.0, 2.0]]])   # 3 valid steps
    pooled = pool_time(h, torch.tensor([8, 12]), config)
    assert torch.allclose(pooled, torch.tensor([[2.0, 1.0, 3.0, 2.0], [3.0, 2.0, 5.0, 4.0]]))
    assert torch.equal(pool_time(h[1:], None, config), pooled[1:])
    assert config.classifier_inputs == 4
    with pytest.raises(ValueError, match="pooling must be one of mean, mean_max"):
        CNNConfig(pooling="median")


def test_a_mean_max_model_trains_saves_and_loads(samples, tmp_path: Path) -> None:
    import dataclasses

    config = dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, pooling="mean_max"))
    net = train(config, samples, tmp_path, progress=False)
    model = load_float_model(tmp_path / "model.pt")
    assert model.network.config.pooling == "mean_max"
    assert model.network.classifier.in_features == 2 * TINY.model.channels[-1]
    assert np.array_equal(predict_logits(model.network, samples.signals),
                          predict_logits(net, samples.signals))


def test_augmentations_are_optional_and_leave_the_plain_stream_alone() -> None:
    import dataclasses

    signals = [np.linspace(-1, 1, 3000, dtype=np.float32), np.ones(1000, dtype=np.float32)]
    plain = FitConfig()
    x0, n0 = loop.make_batch(signals, np.random.default_rng(5), 2000, plain, 300.0)
    # the plain crops: a window of the first signal and the padded second, times one gain
    # each, drawn in the order (start, gain) per row
    rng = np.random.default_rng(5)
    start = rng.integers(0, 1001)
    gain = rng.uniform(*plain.gain_range)
    assert np.allclose(x0[0, 0].numpy(), signals[0][start:start + 2000] * gain)
    assert n0.tolist() == [2000, 1000] and torch.all(x0[1, 0, 1000:] == 0)
    noisy = dataclasses.replace(plain, noise_std=0.1, wander=0.5, invert_share=1.0)
    x1, n1 = loop.make_batch(signals, np.random.default_rng(5), 2000, noisy, 300.0)
    assert torch.equal(n0, n1)
    # inverted every time, and the difference is noise plus a slow wave
    residual = (-x1[0, 0] - x0[0, 0]).numpy()
    assert 0.1 < residual.std() < 0.6 and torch.all(x1[1, 0, 1000:] == 0)


def test_resampling_augmentation_removes_what_a_slower_recorder_cannot_see() -> None:
    import dataclasses

    t = np.arange(6000) / 300.0
    slow, fast = np.sin(2 * np.pi * 1.5 * t), np.sin(2 * np.pi * 110 * t)
    signal = (slow + fast).astype(np.float32)
    config = dataclasses.replace(FitConfig(), resample_share=1.0, gain_range=(1.0, 1.0))
    x, n = loop.make_batch([signal] * 40 + [signal[:999]], np.random.default_rng(3), 6000,
                           config, 300.0)
    assert n.tolist() == [6000] * 40 + [999] and torch.all(x[40, 0, 999:] == 0)
    middle = slice(600, 5400)  # away from the resampler's edge transients
    kept_fast = [abs(float(np.dot(row[middle], fast[middle]))) / float(np.dot(fast[middle],
                 fast[middle])) for row in x[:40, 0].numpy()]
    kept_slow = [float(np.dot(row[middle], slow[middle])) / float(np.dot(slow[middle],
                 slow[middle])) for row in x[:40, 0].numpy()]
    # 110 Hz survives 250 and 256 Hz (Nyquist 125 and 128), not 128 or 200 Hz: both occur
    assert min(kept_fast) < 0.05 and max(kept_fast) > 0.9
    assert min(kept_slow) > 0.98


def test_train_cli_refuses_bad_channels_and_augmentations(tmp_path: Path) -> None:
    from test_cli import assert_clean_error, run

    assert_clean_error(run("train", "--data", SAMPLES, "--out", tmp_path / "r", "--channels",
                           "8,8"), "--channels needs 8 positive integers")
    assert_clean_error(run("train", "--data", SAMPLES, "--out", tmp_path / "r", "--invert",
                           "2"), "--invert and --resample within [0, 1]")
    assert_clean_error(run("train", "--data", SAMPLES, "--out", tmp_path / "r", "--resample",
                           "-0.5"), "--invert and --resample within [0, 1]")
    assert_clean_error(run("train", "--data", SAMPLES, "--out", tmp_path / "r", "--ema",
                           "1"), "--ema must be in [0, 1)")
    assert_clean_error(run("train", "--data", SAMPLES, "--out", tmp_path / "r",
                           "--label-smoothing", "1"), "--label-smoothing must be in [0, 1)")
    assert_clean_error(run("train", "--data", SAMPLES, "--out", tmp_path / "r",
                           "--crop-seconds", "1"), "--crop-seconds must be a finite number")
    assert_clean_error(run("train", "--data", SAMPLES, "--out", tmp_path / "r",
                           "--crop-seconds", "inf"), "--crop-seconds must be a finite number")
    if not torch.cuda.is_available():
        assert_clean_error(run("train", "--data", SAMPLES, "--out", tmp_path / "r",
                               "--device", "cuda"), "no CUDA device is available")


def test_checkpoints_from_before_the_augmentation_settings_resume() -> None:
    old = {"fit": {"epochs": 2, "seed": 0}, "model": {"channels": [4]}}
    new = {"fit": {"epochs": 2, "seed": 0, "noise_std": 0.0, "wander": 0.0,
                   "invert_share": 0.0, "resample_share": 0.0, "label_smoothing": 0.0},
           "model": {"channels": [4], "rr": None, "pooling": "mean"},
           "distill": 0.0, "soft_labels_sha256": None, "ema": 0.0}
    assert loop._comparable(new) == loop._comparable(old)
    new["fit"]["noise_std"] = 0.05
    assert loop._comparable(new) != loop._comparable(old)


def test_soft_labels_round_trip_and_refusals(samples, tmp_path: Path) -> None:
    from afdetect.data.soft_labels import read_soft_labels, write_soft_labels
    from afdetect.errors import InputError

    p = np.random.default_rng(0).dirichlet(np.ones(4), len(samples)).astype(np.float32)
    write_soft_labels(tmp_path / "t.csv", samples.names, p)
    # another record order reads the same rows
    back = read_soft_labels(tmp_path / "t.csv", samples.names[::-1])
    assert np.allclose(back, p[::-1], atol=1e-5)
    (tmp_path / "scaled.csv").write_text("record,N,A,O,~\nA1,2,0,0,2\n")
    assert np.allclose(read_soft_labels(tmp_path / "scaled.csv", np.array(["A1"])),
                       [[0.5, 0, 0, 0.5]])
    for text, problem in [("name,p\nA1,1\n", "header must be record,N,A,O,~"),
                          ("record,N,A,O,~\nA1,1,x,0,0\n", "line 2: a probability is not"),
                          ("record,N,A,O,~\nA1,1,-1,0,0\n", "line 2: needs 4 non-negative"),
                          ("record,N,A,O,~\nA2,1,0,0,0\n", "no soft label for 1 training")]:
        (tmp_path / "bad.csv").write_text(text)
        with pytest.raises(InputError, match=problem):
            read_soft_labels(tmp_path / "bad.csv", np.array(["A1"]))


def test_distilling_soft_labels_pulls_the_model_to_the_teacher(samples, tmp_path: Path) -> None:
    import dataclasses

    config = dataclasses.replace(TINY, fit=dataclasses.replace(TINY.fit, epochs=6, lr=3e-2),
                                 distill=1.0)
    teacher = np.tile(np.float32([0, 0, 0, 1]), (len(samples), 1))  # "everything is noise"
    plain = train(dataclasses.replace(config, distill=0.0), samples, tmp_path / "plain",
                  progress=False)
    taught = train(config, samples, tmp_path / "taught", progress=False, soft_targets=teacher)

    def noise_share(model) -> float:
        logits = torch.from_numpy(predict_logits(model, samples.signals))
        return float(torch.softmax(logits, 1)[:, 3].mean())

    assert noise_share(taught) > max(0.5, noise_share(plain) + 0.2)


def test_train_cli_distils_a_soft_label_file_and_refuses_a_changed_one(tmp_path: Path) -> None:
    from test_cli import assert_clean_error, run

    from afdetect.data.soft_labels import write_soft_labels

    names = np.array(sorted(p.stem for p in SAMPLES.glob("*.hea")))
    write_soft_labels(tmp_path / "t.csv", names, np.full((len(names), 4), 0.25))
    args = ["train", "--data", SAMPLES, "--out", tmp_path / "r", "--epochs", "1",
            "--soft-labels", tmp_path / "t.csv", "--soft-weight", "0.3"]
    done = run(*args)
    assert done.returncode == 0, done.stderr
    metadata = load_float_model(tmp_path / "r" / "model.pt").metadata["train"]
    assert metadata["distill"] == 0.3 and len(metadata["soft_labels_sha256"]) == 64
    write_soft_labels(tmp_path / "t.csv", names, np.full((len(names), 4), 0.5))
    assert_clean_error(run(*args, "--resume"), "written with another configuration")
    write_soft_labels(tmp_path / "t.csv", names[1:], np.full((len(names) - 1, 4), 0.25))
    assert_clean_error(run("train", "--data", SAMPLES, "--out", tmp_path / "s",
                           "--soft-labels", tmp_path / "t.csv"), "no soft label for 1")
    assert_clean_error(run("train", "--data", SAMPLES, "--out", tmp_path / "s",
                           "--soft-labels", tmp_path / "missing.csv"), "missing.csv: cannot")
    assert_clean_error(run("train", "--data", SAMPLES, "--out", tmp_path / "s",
                           "--soft-labels", tmp_path / "t.csv", "--soft-weight", "0"),
                       "--soft-weight must be in (0, 1]")


def test_rank_device_picks_the_ranks_gpu_and_refuses_missing_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from afdetect.train.distributed import rank_device

    assert rank_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert rank_device("cuda") == torch.device("cuda", 1)  # torchrun: this rank's GPU
    assert rank_device("cuda:0") == torch.device("cuda", 0)  # an explicit index stays
    with pytest.raises(ValueError, match="no GPU 2"):
        rank_device("cuda:2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA device"):
        rank_device("cuda")
