"""Why a compressed point collapses: per-layer weight spread and quantisation error of the
pruned, folded network that a compression run handed to quantisation-aware training.

Reads the pruning stage of a ``compress`` work folder (``WORK/prune-*/done.pt``), folds
BatchNorm as the recipe does, and on the recipe's calibration records (256, stratified, from
the training folds) reports for each weighted layer: kept weights and kernels, the spread of
log2 |w| of the kept weights (10th, 50th and 90th percentiles), and the relative logit error
when that layer alone is quantised to ``--bits`` .. ``--bits + 3`` bits. Then, for each
``--extra-bits`` value, the widths the recipe's allocation picks within ``--size-budget``
and the relative logit error and argmax agreement of the whole quantised network with the
float one, the state quantisation-aware training starts from.

    python benchmarks/layer_spread.py --data ../shared/data/cinc2017 --runs runs/cv --fold 0
        --work runs/cv/fold0/compressed_4kb.afq.work --size-budget 3900 [--bits 2]
        [--extra-bits 1 2] [--json benchmarks/results/layer_spread_4kb.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from folds import fold_numbers

from afdetect.atomic import write_json_atomic
from afdetect.compress.bitwidth import (
    choose_layer_bits,
    quantisation_errors,
    quantisation_state_kept,
)
from afdetect.compress.network import QuantSpec, from_float
from afdetect.compress.recipe import CompressConfig, calibrate_fractions, calibration_batch
from afdetect.data.store import load_dataset
from afdetect.model import load_float_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cinc2017"))
    parser.add_argument("--runs", type=Path, default=Path("runs/cv"))
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--work", type=Path, required=True, help="a compress work folder")
    parser.add_argument("--size-budget", type=int, required=True, metavar="BYTES")
    parser.add_argument("--bits", type=int, default=CompressConfig().quant.weight_bits)
    parser.add_argument("--extra-bits", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    default = CompressConfig()
    spec = QuantSpec(weight_bits=args.bits, act_bits=default.quant.act_bits,
                     input_bits=default.quant.input_bits)
    dataset = load_dataset(args.data)
    fold_of = fold_numbers(args.runs / "splits.json", dataset)
    train_set = dataset.subset(np.flatnonzero(fold_of != args.fold))
    parent = load_float_model(args.runs / f"fold{args.fold}" / "model.pt")
    stages = sorted(args.work.glob("prune-*/done.pt"))
    if len(stages) != 1:
        raise SystemExit(f"{args.work}: expected one finished pruning stage, found {len(stages)}")
    net = from_float(parent.network)
    net.load_state_dict(torch.load(stages[0], weights_only=True)["net"])
    net.fold()
    net.eval()
    x = calibration_batch(train_set, default.calibration_records, default.prune.seed)
    widths = tuple(range(args.bits, args.bits + 4))
    with torch.no_grad():
        errors = quantisation_errors(net, x, widths)
        reference = net(x)
    layers = []
    for i, (weight, _) in enumerate(net.weighted_layers()):
        mask = net.mask(i)
        kept = (weight.detach() * mask)[mask > 0].abs().numpy()
        kernels = (int((mask.reshape(-1, weight.shape[-1]).sum(1) > 0).sum())
                   if weight.dim() == 3 else None)  # the classifier has no kernels
        layers.append({
            "layer": i, "kept_weights": int(mask.sum()), "weights": int(mask.numel()),
            "kept_kernels": kernels,
            "log2_abs_p10_p50_p90": np.round(np.log2(np.quantile(kept, [0.1, 0.5, 0.9])),
                                             2).tolist(),
            "logit_error_by_bits": {str(b): float(e) for b, e in zip(widths, errors[i],
                                                                      strict=True)}})
        print(f"layer {i}: kept {layers[-1]['kept_weights']:5d} of {mask.numel():5d}, "
              f"log2|w| p10/p50/p90 {layers[-1]['log2_abs_p10_p50_p90']}, logit error at "
              + " / ".join(f"{b} bits {e:.3g}" for b, e in zip(widths, errors[i], strict=True)))
    fractions = calibrate_fractions(net, x, spec, default.act_percentile)
    allocations = []
    for extra in args.extra_bits:
        chosen = choose_layer_bits(net, x, spec, fractions, args.size_budget, extra)
        with quantisation_state_kept(net), torch.no_grad():
            net.enable_quantisation(spec, fractions, chosen)
            logits = net(x)
        error = float(((logits - reference) ** 2).sum() / (reference ** 2).sum())
        agree = float((logits.argmax(1) == reference.argmax(1)).float().mean())
        allocations.append({"extra_bits": extra, "widths": chosen, "logit_error": error,
                            "argmax_agreement": agree})
        print(f"--extra-bits {extra}: widths {chosen}, whole-network logit error {error:.3f}, "
              f"argmax agreement with the float net {agree:.3f}")
    if args.json:
        write_json_atomic(args.json, {
            "work": str(args.work), "fold": args.fold, "size_budget": args.size_budget,
            "bits": args.bits, "calibration_records": int(x.shape[0]), "layers": layers,
            "allocations": allocations})


if __name__ == "__main__":
    main()
