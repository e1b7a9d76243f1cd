"""``afdetect compress`` end to end: data, recipe, evaluation at export, model file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from afdetect import CLASSES, __version__, metrics
from afdetect.atomic import exclusive_folder
from afdetect.compress.accounting import report
from afdetect.compress.recipe import CompressConfig, Compressed, compress
from afdetect.data.splits import load_or_make_splits
from afdetect.data.store import Dataset, load_dataset
from afdetect.errors import AfdetectError, InputError
from afdetect.model.io import load_float_model
from afdetect.runtime.engine import engine_logits
from afdetect.runtime.format import save_compressed
from afdetect.train.inference import predict_logits


def split_for_fold(dataset: Dataset, splits: Path, fold: int, k: int = 5
                   ) -> tuple[Dataset, Dataset]:
    """(training records, held-out fold ``fold``) from the splits file (created if new)."""
    folds = load_or_make_splits(splits, dataset.names, dataset.labels, k=k)
    fold_of = np.array([folds[str(n)] for n in dataset.names])
    if fold not in set(fold_of.tolist()):
        raise AfdetectError(f"{splits}: has no fold {fold}")
    return (dataset.subset(np.flatnonzero(fold_of != fold)),
            dataset.subset(np.flatnonzero(fold_of == fold)))


def compress_file(parent_path: Path, data_dir: Path, out: Path, config: CompressConfig, *,
                  work_dir: Path | None = None, splits: Path | None = None,
                  fold: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Compress the float model at ``parent_path`` into the file ``out``.

    With ``fold`` the recipe trains on the other folds and the metrics at export are
    measured on the held-out fold; otherwise it uses every record and the metrics are
    in-sample. Returns the metadata written into the file.
    """
    if not config.quant.weight_bits:
        raise AfdetectError("a compressed model file needs quantised weights (--bits > 1)")
    parent = load_float_model(parent_path)
    if parent.network.config.pooling != "mean":
        raise InputError(parent_path, f"{parent.network.config.pooling} pooling: the integer "
                                      "engine pools the time axis by mean only")
    dataset = load_dataset(data_dir, parent.preprocess, progress=progress)
    train_set, eval_set, where = dataset, dataset, "training records (in-sample)"
    if fold is not None:
        if splits is None:
            raise AfdetectError("--fold needs --splits FILE")
        train_set, eval_set = split_for_fold(dataset, splits, fold)
        where = f"held-out fold {fold} of {splits}"
    work = work_dir or out.with_name(out.name + ".work")
    with exclusive_folder(work):  # a second run with the same stages is refused
        result = compress(parent, train_set, config, work,
                          val_set=eval_set if fold is not None else None, progress=progress)
    assert result.integer is not None  # quantised weights were checked above
    metadata = build_metadata(parent, result, config)
    metadata["metrics_at_export"] = {
        "records": len(eval_set), "evaluated_on": where, "data": str(data_dir),
        "compressed": _scores(eval_set, engine_logits(result.integer, eval_set.signals,
                                                       progress)),
        "float_parent": _scores(eval_set, predict_logits(parent.network, eval_set.signals)),
    }
    metadata["size"] = {k: v for k, v in report(result.integer, metadata["parent"][
        "parameters"]).items() if k != "layers"}
    save_compressed(out, result.integer, metadata)
    return metadata


def build_metadata(parent: Any, result: Compressed, config: CompressConfig) -> dict[str, Any]:
    return {
        "classes": list(CLASSES),
        "fs": parent.preprocess.fs,
        "preprocess": parent.preprocess.to_dict(),
        "architecture": parent.network.config.to_dict(),
        "recipe": config.to_dict(),
        "layer_sparsity_targets": [round(s, 4) for s in result.layer_sparsity],
        "parent": {"parameters": sum(p.numel() for p in parent.network.parameters()),
                   "train": parent.metadata.get("train")},
        "history": result.history,
        "afdetect_version": __version__,
    }


def _scores(dataset: Dataset, logits: np.ndarray) -> dict[str, Any]:
    return metrics.summarise(dataset.labels, logits.argmax(axis=1))
