"""Training loops: random crops, class-weighted loss, per-epoch atomic checkpoints.

:func:`fit` runs any model with the ``model(x, lengths) -> logits`` signature (the float
CNN, and the pruned/quantised networks of :mod:`afdetect.compress`). Every source of
randomness is re-seeded from ``(seed, epoch)`` at the start of each epoch, so a run resumed
from its last checkpoint ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from afdetect import metrics
from afdetect.atomic import exclusive_folder, save_torch_atomic, write_json_atomic
from afdetect.data.preprocess import PreprocessConfig, resample
from afdetect.data.store import Dataset
from afdetect.errors import AfdetectError
from afdetect.model.cnn import AFNet, CNNConfig
from afdetect.model.io import save_float_model
from afdetect.train import distributed
from afdetect.train.inference import predict_logits

# Settings added after checkpoints existed, at the value that reproduces the older runs:
# a fingerprint holding them at that value matches one written before they existed.
NEUTRAL_SETTINGS: dict[str, Any] = {"noise_std": 0.0, "wander": 0.0, "invert_share": 0.0,
                                    "resample_share": 0.0, "label_smoothing": 0.0,
                                    "rr": None, "distill": 0.0, "soft_labels_sha256": None,
                                    "ema": 0.0, "pooling": "mean"}

# Sampling rates of common Holter and wearable recorders below the model's 300 Hz: a crop
# passed through one of them and back loses what such a device cannot record.
DEVICE_RATES = (128, 200, 250, 256)

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
HISTORY = "history.json"


@dataclass(frozen=True)
class FitConfig:
    """The optimisation recipe shared by training and compression fine-tuning.

    Attributes:
        epochs: passes over the training records.
        batch_size: recordings per optimiser step.
        lr: peak learning rate of the one-cycle schedule.
        weight_decay: AdamW decoupled weight decay.
        crop_seconds: training crop length; shorter recordings are zero-padded and masked.
        gain_range: random amplitude scaling range (augmentation).
        class_weight_power: loss weight of class c is (1 / frequency_c) ** power.
        seed: seeds batch order, crops and dropout (and the initial weights in training).
        noise_std: std of white noise added to each crop, in normalised units (0: none).
        wander: peak amplitude of a random 0.05-0.5 Hz sinusoidal baseline wander added to
            each crop, normalised units (0: none).
        invert_share: share of crops whose polarity is inverted (other leads, reversed
            electrodes).
        resample_share: share of crops resampled to one of :data:`DEVICE_RATES` (drawn
            uniformly) and back, as a recording from such a device reaches the model.
        label_smoothing: share of each label's target spread evenly over the classes
            (``nn.CrossEntropyLoss(label_smoothing=...)``; 0: one-hot targets).
    """

    epochs: int = 20
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-2
    crop_seconds: float = 20.0
    gain_range: tuple[float, float] = (0.7, 1.4)
    class_weight_power: float = 0.5
    seed: int = 0
    noise_std: float = 0.0
    wander: float = 0.0
    invert_share: float = 0.0
    resample_share: float = 0.0
    label_smoothing: float = 0.0


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a float training run, with the data.

    Attributes:
        distill: weight of the soft labels in the loss (0: plain cross-entropy).
        soft_labels_sha256: digest of the soft-label file distilled from, if any.
        ema: decay per optimiser step of an exponential moving average of the weights
            (and BatchNorm statistics), which is what is scored and saved; 0: the
            final weights themselves.
    """

    fit: FitConfig = field(default_factory=FitConfig)
    model: CNNConfig = field(default_factory=CNNConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    distill: float = 0.0
    soft_labels_sha256: str | None = None
    ema: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def class_weights(labels: np.ndarray, n_classes: int, power: float) -> torch.Tensor:
    """Loss weights (1 / frequency) ** power, normalised to mean 1 over the samples."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, (counts.sum() / np.maximum(counts, 1)) ** power, 0.0)
    weights /= (weights[labels]).mean()
    return torch.tensor(weights, dtype=torch.float32)


def make_batch(signals: list[np.ndarray], rng: np.random.Generator, crop: int,
               config: FitConfig, fs: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crops of ``crop`` samples (zero-padded when shorter), augmented as
    ``config`` says: random gain, and optionally noise, baseline wander, inversion and a
    round trip through a lower device sampling rate.

    Returns:
        x: (batch, 1, crop) float32; lengths: (batch,) int64 valid samples per row.
    """
    x = np.zeros((len(signals), 1, crop), dtype=np.float32)
    lengths = np.empty(len(signals), dtype=np.int64)
    for row, signal in enumerate(signals):
        start = rng.integers(0, len(signal) - crop + 1) if len(signal) > crop else 0
        piece = signal[start:start + crop] * rng.uniform(*config.gain_range)
        # the optional draws come after the original ones, so a run without them keeps
        # the random stream (and the weights) of earlier versions
        if config.noise_std > 0:
            piece = piece + rng.normal(0.0, config.noise_std, len(piece))
        if config.wander > 0:
            t = np.arange(len(piece)) / fs
            piece = piece + config.wander * np.sin(
                2 * np.pi * rng.uniform(0.05, 0.5) * t + rng.uniform(0, 2 * np.pi))
        if config.invert_share > 0 and rng.random() < config.invert_share:
            piece = -piece
        if config.resample_share > 0 and rng.random() < config.resample_share:
            rate = DEVICE_RATES[rng.integers(len(DEVICE_RATES))]
            through = resample(resample(piece, fs, rate), rate, fs)[:len(piece)]
            piece = np.pad(through, (0, len(piece) - len(through)))
        x[row, 0, :len(piece)] = piece
        lengths[row] = len(piece)
    return torch.from_numpy(x), torch.from_numpy(lengths)


StepHook = Callable[[int, int], None]
"""Called before each optimiser step with (global step, total steps)."""


def fit(model: nn.Module, config: FitConfig, train_set: Dataset, out_dir: str | Path, *,
        fingerprint: dict[str, Any], n_classes: int, val_set: Dataset | None = None,
        val_every: int = 1, resume: bool = False, progress: bool = True,
        on_step: StepHook | None = None, after_step: Callable[[], None] | None = None,
        logits_fn: Callable[[list[np.ndarray]], np.ndarray] | None = None,
        teacher: nn.Module | None = None, distill: float = 0.0, temperature: float = 2.0,
        soft_targets: np.ndarray | None = None, ema: float = 0.0,
        device: str | torch.device = "cpu") -> list[dict[str, Any]]:
    """Optimise ``model`` in place; checkpoint every epoch to ``out_dir/checkpoint.pt``.

    Args:
        fingerprint: JSON-able description of the run; resuming with another is refused.
        on_step / after_step: hooks around each optimiser step (pruning masks use them).
        logits_fn: scores ``val_set`` (default: :func:`predict_logits` on ``model``).
        teacher, distill, temperature: knowledge distillation; the loss becomes
            (1 - distill) * cross-entropy + distill * T^2 * KL(teacher_T || model_T).
        soft_targets: (n_train, n_classes) fixed per-record teacher probabilities, the
            alternative to ``teacher``; distilled at temperature 1 with weight ``distill``.
        ema: per-step decay of a moving average of the weights and buffers (0: none).
            The average is what validation scores, and it is copied into ``model`` at
            the end.
        device: where the steps run ("cpu", "cuda", "cuda:1"). Batches are drawn on the
            CPU either way; ``model`` is back on its own device at the end, and the
            checkpoint loads anywhere, so a run may resume on another device.
    Returns:
        the per-epoch history (also written to ``out_dir/history.json``).
    """
    if teacher is not None and soft_targets is not None:
        raise ValueError("distil from a teacher network or from soft targets, not both")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    group = distributed.current()
    progress = progress and group.is_main
    device = torch.device(device)
    home = next(model.parameters()).device
    teacher_home = None if teacher is None else next(teacher.parameters()).device
    model.to(device)
    if teacher is not None:
        teacher.to(device)
    # Under torchrun each rank computes a slice of every batch; DDP averages gradients.
    net = DistributedDataParallel(model) if group.world_size > 1 else model
    steps_per_epoch = -(-len(train_set) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=config.lr, epochs=config.epochs, steps_per_epoch=steps_per_epoch)
    fingerprint = json.loads(json.dumps(fingerprint))  # tuples -> lists, as after loading
    average = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema), use_buffers=True)
               if ema > 0 else None)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if resume and (out / CHECKPOINT).is_file():
        state = torch.load(out / CHECKPOINT, weights_only=True, map_location="cpu")
        if _comparable(json.loads(state["fingerprint"])) != _comparable(fingerprint):
            raise AfdetectError(f"{out / CHECKPOINT}: was written with another configuration; "
                                "resume with the same options or use a new --out")
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        history = json.loads(state["history"])
        start_epoch = int(state["epoch"])
        if average is not None:
            average.load_state_dict(state["average"])

    loss_fn = nn.CrossEntropyLoss(
        weight=class_weights(train_set.labels, n_classes, config.class_weight_power).to(device),
        label_smoothing=config.label_smoothing)
    crop = round(config.crop_seconds * train_set.fs)
    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        rng = np.random.default_rng([config.seed, epoch])
        torch.manual_seed(config.seed * 100_003 + epoch)
        model.train()
        order = rng.permutation(len(train_set))
        total = 0.0
        bar = tqdm(range(0, len(order), config.batch_size), disable=not progress,
                   desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", leave=False)
        for step, begin in enumerate(bar, start=epoch * steps_per_epoch):
            if on_step is not None:
                on_step(step, total_steps)
            index = order[begin:begin + config.batch_size]
            x, lengths = make_batch([train_set.signals[i] for i in index], rng, crop,
                                    config, train_set.fs)
            y = torch.from_numpy(train_set.labels[index])
            soft = None if soft_targets is None else torch.from_numpy(soft_targets[index])
            if group.world_size > 1:  # every rank drew the whole batch; keep its rows
                rows = slice(group.rank, None, group.world_size)
                x, lengths, y = x[rows], lengths[rows], y[rows]
                soft = None if soft is None else soft[rows]
            x, lengths, y = x.to(device), lengths.to(device), y.to(device)
            soft = None if soft is None else soft.to(device)
            logits = net(x, lengths)
            loss = loss_fn(logits, y)
            if distill > 0 and (teacher is not None or soft is not None):
                loss = (1 - distill) * loss + distill * _distillation_loss(
                    logits, x, lengths, teacher, temperature, soft)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            if after_step is not None:
                after_step()
            if average is not None:
                average.update_parameters(model)
            value = loss.item()
            total += value * len(index)
            bar.set_postfix(loss=f"{value:.3f}")
        entry: dict[str, Any] = {"epoch": epoch + 1, "train_loss": total / len(train_set),
                                 "seconds": round(time.perf_counter() - started, 2)}
        last = epoch + 1 == config.epochs
        if (val_set is not None and len(val_set) and group.is_main
                and (last or (epoch + 1) % val_every == 0)):
            scored = model if average is None else average.module
            logits = (logits_fn(val_set.signals) if logits_fn is not None
                      else predict_logits(scored, val_set.signals))  # type: ignore[arg-type]
            summary = metrics.summarise(val_set.labels, logits.argmax(axis=1))
            entry.update(val_cinc_score=summary["cinc_score"], val_accuracy=summary["accuracy"])
        history.append(entry)
        if progress:
            tqdm.write(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in entry.items()))
        distributed.average_buffers(model)
        if group.is_main:
            _save_checkpoint(out / CHECKPOINT, model, optimiser, schedule, epoch + 1,
                             fingerprint, history, average)
            write_json_atomic(out / HISTORY, history)
        distributed.barrier()  # no rank runs ahead of the checkpoint it may resume from
    if average is not None:
        model.load_state_dict(average.module.state_dict())
    model.to(home)
    if teacher is not None:
        teacher.to(teacher_home)
    return history


def _distillation_loss(logits: torch.Tensor, x: torch.Tensor, lengths: torch.Tensor,
                       teacher: nn.Module | None, temperature: float,
                       soft: torch.Tensor | None) -> torch.Tensor:
    """KL(teacher || model): from the teacher network's view of the same crops at
    ``temperature`` (scaled by T^2), or from fixed per-record probabilities ``soft``
    (batch, n_classes) at T = 1."""
    if soft is not None:
        target, temperature = soft, 1.0
    else:
        assert teacher is not None
        with torch.no_grad():
            target = F.softmax(teacher(x, lengths) / temperature, dim=1)
    return F.kl_div(F.log_softmax(logits / temperature, dim=1), target,
                    reduction="batchmean") * temperature**2


def train(config: TrainConfig, train_set: Dataset, out_dir: str | Path, *,
          val_set: Dataset | None = None, val_every: int = 1, resume: bool = False,
          progress: bool = True, soft_targets: np.ndarray | None = None,
          device: str | torch.device = "cpu") -> AFNet:
    """Train a float model on ``train_set``, writing checkpoints and the model to ``out_dir``.

    ``out_dir`` receives ``checkpoint.pt`` (every epoch), ``history.json`` and, at the
    end, ``model.pt`` (the final-epoch weights with their configuration). ``val_set`` is
    scored every ``val_every`` epochs and after the last; it never steers training.
    ``soft_targets`` (n_train, n_classes), the teacher probabilities of ``train_set``'s
    records, are distilled with weight ``config.distill``. ``device`` is where the steps
    run (see :func:`fit`); it is recorded in the model's metadata but is not part of the
    configuration, so a run may resume on another device.
    """
    if (config.distill > 0) != (soft_targets is not None):
        raise ValueError("config.distill > 0 and soft_targets go together")
    group = distributed.current()
    # a second run into out_dir is refused; under torchrun rank 0 holds the lock
    with exclusive_folder(out_dir) if group.is_main else contextlib.nullcontext():
        torch.manual_seed(config.fit.seed)
        model = AFNet(config.model)
        history = fit(model, config.fit, train_set, out_dir, fingerprint=config.to_dict(),
                      n_classes=config.model.n_classes, val_set=val_set, val_every=val_every,
                      resume=resume, progress=progress, distill=config.distill,
                      soft_targets=soft_targets, ema=config.ema, device=device)
        metadata: dict[str, Any] = {"train": config.to_dict(), "device": str(device),
                                    "n_train_records": len(train_set), "history": history}
        if group.world_size > 1:
            metadata["distributed"] = {
                "world_size": group.world_size,
                "ranks_identical": distributed.weights_identical_across_ranks(model)}
        if group.is_main:
            save_float_model(Path(out_dir) / MODEL, model, config.preprocess, metadata)
        distributed.barrier()
    return model


def _comparable(fingerprint: Any) -> Any:
    """``fingerprint`` without the :data:`NEUTRAL_SETTINGS` at their neutral values."""
    if isinstance(fingerprint, dict):
        return {k: _comparable(v) for k, v in fingerprint.items()
                if not (k in NEUTRAL_SETTINGS and v == NEUTRAL_SETTINGS[k])}
    if isinstance(fingerprint, list):
        return [_comparable(v) for v in fingerprint]
    return fingerprint


def _save_checkpoint(path: Path, model: nn.Module, optimiser: torch.optim.Optimizer,
                     schedule: Any, epoch: int, fingerprint: dict[str, Any],
                     history: list[dict[str, Any]], average: AveragedModel | None
                     ) -> None:
    state: dict[str, Any] = {
        "model": model.state_dict(),
        "optimiser": optimiser.state_dict(),
        "schedule": schedule.state_dict(),
        "epoch": epoch,
        "fingerprint": json.dumps(fingerprint, sort_keys=True),
        "history": json.dumps(history),
    }
    if average is not None:
        state["average"] = average.state_dict()
    save_torch_atomic(path, state)
