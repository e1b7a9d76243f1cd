"""A cached array store of a preprocessed dataset, rebuilt when the data change.

The cache is one ``.npz`` file (no pickles) holding every preprocessed signal concatenated,
their offsets, names and labels, plus a fingerprint of the source files and preprocessing.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from afdetect.atomic import atomic_path
from afdetect.data.cinc import LabelledRecord, find_label_file, index_dataset
from afdetect.data.preprocess import PreprocessConfig, preprocess
from afdetect.errors import InputError
from afdetect.io.records import read_wfdb

CACHE_VERSION = 1


@dataclass
class Dataset:
    """Preprocessed, labelled recordings.

    Attributes:
        names: shape (n,), record names.
        labels: shape (n,), int64 class indices into :data:`afdetect.CLASSES`.
        signals: n float32 arrays at ``fs`` Hz, each shape (n_samples_i,).
        fs: sampling rate of ``signals`` in Hz.
        skipped: ``{name: reason}`` for labelled records that failed to load.
    """

    names: np.ndarray
    labels: np.ndarray
    signals: list[np.ndarray]
    fs: int
    skipped: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, index: np.ndarray) -> Dataset:
        return Dataset(self.names[index], self.labels[index],
                       [self.signals[i] for i in index], self.fs)


def default_cache_dir() -> Path:
    return Path(os.environ.get("AFDETECT_CACHE", Path.home() / ".cache" / "afdetect"))


def load_dataset(data_dir: str | Path, config: PreprocessConfig | None = None, *,
                 cache_dir: str | Path | None = None, progress: bool = True) -> Dataset:
    """Load every labelled record of ``data_dir``, preprocessed, through the cache.

    The first call reads the WFDB files (with a progress bar) and writes the cache; later
    calls read the cache unless a record, the labels or the preprocessing changed.
    """
    config = config or PreprocessConfig()
    data_dir = Path(data_dir).resolve()
    records = index_dataset(data_dir)
    fingerprint = _fingerprint(data_dir, records, config)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache = cache_dir / f"cinc-{hashlib.sha1(str(data_dir).encode()).hexdigest()[:12]}.npz"
    dataset = _read_cache(cache, fingerprint)
    if dataset is not None:
        return dataset
    signals, names, labels, skipped = [], [], [], {}
    for rec in tqdm(records, desc=f"reading {data_dir.name}", unit="rec", disable=not progress):
        try:
            x = preprocess(read_wfdb(rec.path), config)
        except InputError as exc:
            skipped[rec.name] = exc.problem
            continue
        signals.append(x)
        names.append(rec.name)
        labels.append(rec.label)
    dataset = Dataset(np.array(names), np.array(labels, dtype=np.int64), signals, config.fs,
                      skipped)
    _write_cache(cache, fingerprint, dataset)
    return dataset


def _fingerprint(data_dir: Path, records: list[LabelledRecord],
                 config: PreprocessConfig) -> str:
    """Hash of the preprocessing and of every source file's name, size and mtime."""
    digest = hashlib.sha256(json.dumps([CACHE_VERSION, config.to_dict()]).encode())
    label_stat = find_label_file(data_dir).stat()
    digest.update(f"labels:{label_stat.st_size}:{label_stat.st_mtime_ns}:".encode())
    wanted = {r.name for r in records}
    entries: list[str] = []
    for folder in sorted({r.path.parent for r in records}):
        with os.scandir(folder) as it:
            for entry in it:
                stem, _, suffix = entry.name.partition(".")
                if stem in wanted and suffix in ("hea", "mat", "dat"):
                    stat = entry.stat()
                    entries.append(f"{entry.name}:{stat.st_size}:{stat.st_mtime_ns}")
    digest.update("\n".join(sorted(entries)).encode())
    return digest.hexdigest()


def _read_cache(cache: Path, fingerprint: str) -> Dataset | None:
    if not cache.is_file():
        return None
    try:
        with np.load(cache, allow_pickle=False) as npz:
            if str(npz["fingerprint"]) != fingerprint:
                return None
            offsets = npz["offsets"]
            flat = npz["signals"]
            skipped = json.loads(str(npz["skipped"]))
            return Dataset(npz["names"], npz["labels"].astype(np.int64),
                           np.split(flat, offsets[1:-1]), int(npz["fs"]), skipped)
    except (OSError, ValueError, KeyError):
        return None  # an unreadable cache is rebuilt, never trusted


def _write_cache(cache: Path, fingerprint: str, dataset: Dataset) -> None:
    lengths = [len(x) for x in dataset.signals]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = np.concatenate(dataset.signals) if dataset.signals else np.zeros(0, np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, fingerprint=fingerprint, names=dataset.names, labels=dataset.labels,
                 offsets=offsets, signals=flat, fs=dataset.fs,
                 skipped=json.dumps(dataset.skipped))
