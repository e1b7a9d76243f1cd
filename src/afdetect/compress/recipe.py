"""The compression recipe: fold BatchNorm, prune gradually by magnitude to per-layer
sparsities chosen by sensitivity, then quantise weights to powers of two and activations
to fixed point with quantisation-aware fine-tuning.

Each stage writes its result into the work folder and each fine-tuning stage checkpoints
every epoch, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from afdetect.atomic import save_torch_atomic, write_json_atomic
from afdetect.compress.bitwidth import choose_layer_bits
from afdetect.compress.integer import IntegerModel, to_integer
from afdetect.compress.network import CompressibleNet, QuantSpec, from_float
from afdetect.compress.prune import (
    GRANULARITIES,
    GradualPruner,
    allocate_sparsity,
    group_sizes,
    sensitivity,
)
from afdetect.compress.quantise import frac_bits_for
from afdetect.data.store import Dataset
from afdetect.model.io import FloatModel
from afdetect.train.inference import predict_logits
from afdetect.train.loop import FitConfig, fit


@dataclass(frozen=True)
class CompressConfig:
    """The whole recipe; its defaults are the best found in cross-validation (docs/research.md).

    Attributes:
        sparsity: overall fraction of pruned weights (0 skips pruning).
        granularity: prune single ``weight``s or whole ``kernel``s (see prune.py).
        quant: weight/activation/input bits (weight_bits 0 skips quantisation).
        prune: fine-tuning while pruning.
        qat: quantisation-aware fine-tuning.
        prune_every: optimiser steps between mask updates.
        prune_end_fraction: share of the pruning stage after which sparsity is final.
        calibration_records: records (stratified) for sensitivity and activation ranges.
        act_percentile: activation percentile an activation's integer range must cover.
        distill: weight of knowledge distillation from the float parent (0: none).
        size_budget: stored bytes within which layers get one weight bit more than
            ``quant.weight_bits``, by sensitivity (see bitwidth.py); 0: one width for all.
            Judged on the model as quantisation-aware tuning starts; the biases' widths
            can still move the final size by a few bytes.
        extra_bits: the most bits a layer may get above ``quant.weight_bits`` within
            ``size_budget``. Two rescue heavily pruned layers whose folded weights span
            more exponents than one extra bit addresses (the 4 KB point of docs/research.md).
    """

    sparsity: float = 0.89
    quant: QuantSpec = field(default_factory=lambda: QuantSpec(weight_bits=2))
    prune: FitConfig = field(default_factory=lambda: FitConfig(epochs=24, lr=3e-3))
    qat: FitConfig = field(default_factory=lambda: FitConfig(epochs=24, lr=1e-3))
    prune_every: int = 16
    prune_end_fraction: float = 0.5
    calibration_records: int = 256
    act_percentile: float = 99.99
    distill: float = 0.5
    granularity: str = "kernel"
    size_budget: int = 6300
    extra_bits: int = 1

    def __post_init__(self) -> None:
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}")
        if self.size_budget < 0:
            raise ValueError("size_budget must be 0 (one width) or a number of bytes")
        if self.extra_bits < 1:
            raise ValueError("extra_bits must be at least 1")
        if self.size_budget and self.quant.weight_bits + self.extra_bits > 8:
            raise ValueError("weight_bits + extra_bits must stay within 8 (the widest code)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Compressed:
    """Outcome of :func:`compress`: the trained net, its integer form (None when
    unquantised), the per-layer sparsity targets and the fine-tuning histories."""

    net: CompressibleNet
    integer: IntegerModel | None
    layer_sparsity: list[float]
    history: dict[str, list[dict[str, Any]]]


def calibration_batch(dataset: Dataset, n: int, seed: int, seconds: float = 30.0
                      ) -> torch.Tensor:
    """(n, 1, samples): up to ``n`` records stratified by class, the first ``seconds`` of
    each (shorter ones zero-padded)."""
    rng = np.random.default_rng(seed)
    classes = np.unique(dataset.labels)
    per_class = max(1, n // len(classes))
    chosen = np.concatenate([rng.permutation(np.flatnonzero(dataset.labels == c))[:per_class]
                             for c in classes])
    crop = round(seconds * dataset.fs)
    x = np.zeros((len(chosen), 1, crop), dtype=np.float32)
    for row, i in enumerate(chosen):
        piece = dataset.signals[i][:crop]
        x[row, 0, :len(piece)] = piece
    return torch.from_numpy(x)


@torch.no_grad()
def calibrate_fractions(net: CompressibleNet, x: torch.Tensor, spec: QuantSpec,
                        percentile: float) -> list[int]:
    """Fractional bits of the input and of each block's output, from observed ranges."""
    net.eval()
    input_peak = float(np.percentile(np.abs(x.numpy()), percentile))
    fracs = [frac_bits_for(input_peak, spec.input_bits, signed=True)]
    for h in net.features(x):
        values = h.numpy().ravel()
        fracs.append(frac_bits_for(float(np.percentile(values, percentile)), spec.act_bits,
                                   signed=False))
    return fracs


def compress(parent: FloatModel, train_set: Dataset, config: CompressConfig,
             work_dir: str | Path, *, val_set: Dataset | None = None,
             progress: bool = True) -> Compressed:
    """Run the recipe on ``parent`` with ``train_set``; stages resume from ``work_dir``."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    net = from_float(parent.network)
    n_classes = parent.network.config.n_classes
    x = calibration_batch(train_set, config.calibration_records, config.prune.seed)
    # Stage folders are named by what the stage depends on, so runs that differ only in
    # later stages (e.g. bits) share the earlier ones within one work folder.
    prune_key = {"parent": _fingerprint(parent), "n_train": len(train_set),
                 "sparsity": config.sparsity, "prune": asdict(config.prune),
                 "every": config.prune_every, "end": config.prune_end_fraction,
                 "calibration": config.calibration_records, "distill": config.distill}
    if config.granularity != "weight":  # keeps the folders of weight-level runs valid
        prune_key["granularity"] = config.granularity
    qat_key = {**prune_key, "quant": asdict(config.quant), "qat": asdict(config.qat),
               "percentile": config.act_percentile}
    if config.size_budget:  # keeps the folders of uniform-width runs valid
        qat_key["size_budget"] = config.size_budget
    if config.extra_bits != 1:  # likewise for runs from before extra_bits existed
        qat_key["extra_bits"] = config.extra_bits
    prune_dir = work / f"prune-{_digest(prune_key)}"
    qat_dir = work / f"qat-{_digest(qat_key)}"
    history: dict[str, list[dict[str, Any]]] = {}
    targets = [0.0] * net.n_layers
    teaching: dict[str, Any] = {"teacher": parent.network.eval(), "distill": config.distill}

    def scorer(signals: list[np.ndarray]) -> np.ndarray:
        return predict_logits(net, signals)

    if config.sparsity > 0:
        groups = group_sizes(net, config.granularity)
        targets = _sensitivity_targets(net, x, config, groups, prune_dir / "sensitivity.json",
                                       progress)
        pruner = GradualPruner(net, targets, groups, config.prune_every,
                               config.prune_end_fraction)
        history["prune"] = _stage(
            net, prune_dir, lambda: fit(
                net, config.prune, train_set, prune_dir, n_classes=n_classes,
                fingerprint=prune_key, val_set=val_set,
                val_every=config.prune.epochs, resume=True, progress=progress,
                on_step=pruner.on_step, after_step=pruner.after_step, logits_fn=scorer,
                **teaching))
    integer = None
    net.fold()
    if config.quant.weight_bits:
        if not (qat_dir / "done.pt").is_file():
            fractions = calibrate_fractions(net, x, config.quant, config.act_percentile)
            widths = [config.quant.weight_bits] * net.n_layers
            if config.size_budget:
                if progress:
                    tqdm.write("bit allocation: logit error of each layer quantised alone")
                widths = choose_layer_bits(net, x, config.quant, fractions,
                                           config.size_budget, config.extra_bits)
            net.enable_quantisation(config.quant, fractions, widths)
        history["qat"] = _stage(
            net, qat_dir, lambda: fit(
                net, config.qat, train_set, qat_dir, n_classes=n_classes,
                fingerprint=qat_key, val_set=val_set,
                val_every=config.qat.epochs, resume=True, progress=progress,
                after_step=net.apply_masks, logits_fn=scorer, **teaching))
        integer = to_integer(net)
    net.eval()
    return Compressed(net, integer, targets, history)


def _stage(net: CompressibleNet, folder: Path, run: Any) -> list[dict[str, Any]]:
    """Run a fine-tuning stage once; afterwards load its result instead."""
    done = folder / "done.pt"
    if done.is_file():
        state = torch.load(done, weights_only=True)
        net.load_state_dict(state["net"])
        return list(json.loads(state["history"]))
    history = run()
    save_torch_atomic(done, {"net": net.state_dict(), "history": json.dumps(history)})
    return list(history)


def _sensitivity_targets(net: CompressibleNet, x: torch.Tensor, config: CompressConfig,
                         groups: list[int], cache: Path, progress: bool) -> list[float]:
    if cache.is_file():
        losses = np.array(json.loads(cache.read_text())["output_error"])
    else:
        if progress:
            tqdm.write("sensitivity analysis: output error of each layer pruned alone")
        losses = sensitivity(net, x, groups)
        write_json_atomic(cache, {"output_error": losses.tolist()}, indent=None)
    sizes = [int(w.numel()) for w, _ in net.weighted_layers()]
    return allocate_sparsity(losses, sizes, config.sparsity)


def _digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def _fingerprint(parent: FloatModel) -> str:
    """Identity of the parent weights, so a work folder is never reused for another."""
    digest = hashlib.sha256()
    for value in parent.network.state_dict().values():
        digest.update(value.detach().numpy().tobytes())
    return digest.hexdigest()[:16]
