from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLES

from afdetect.data.cinc import find_label_file, index_dataset, read_labels
from afdetect.data.splits import load_or_make_splits, stratified_folds
from afdetect.data.store import load_dataset
from afdetect.errors import InputError


def _challenge_root(tmp_path: Path) -> Path:
    """The challenge layout: root/REFERENCE-v3.csv and root/training2017/*.hea,.mat."""
    root = tmp_path / "challenge"
    shutil.copytree(SAMPLES, root / "training2017")
    labels = (SAMPLES / "REFERENCE.csv").read_text().splitlines()
    # v3 relabels the first record; the reader must prefer v3 and tolerate CRLF
    v3 = [labels[0].replace(",N", ",O"), *labels[1:]]
    (root / "REFERENCE-v3.csv").write_bytes(("\r\n".join(v3) + "\r\n").encode())
    return root


def test_both_layouts(tmp_path: Path) -> None:
    flat = index_dataset(SAMPLES)
    assert len(flat) == 12 and flat[0].name == "A00001" and flat[0].label == 0
    root = _challenge_root(tmp_path)
    assert find_label_file(root).name == "REFERENCE-v3.csv"
    nested = index_dataset(root)
    assert [r.name for r in nested] == [r.name for r in flat]
    assert nested[0].label == 2  # v3 label won


def test_labels_with_header_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "REFERENCE.csv"
    path.write_bytes(b"\xef\xbb\xbfrecord,label\r\nA1,N\r\n\r\nA2,~\r\n")
    assert read_labels(path) == {"A1": 0, "A2": 3}
    path.write_text("A1,N\nA2,X\n")
    with pytest.raises(InputError, match="line 2"):
        read_labels(path)


def test_missing_records_are_reported(tmp_path: Path) -> None:
    shutil.copytree(SAMPLES, tmp_path / "d")
    (tmp_path / "d" / "A00004.hea").unlink()
    with pytest.raises(InputError, match=r"1 labelled record.*A00004"):
        index_dataset(tmp_path / "d")
    with pytest.raises(InputError, match="no REFERENCE"):
        index_dataset(tmp_path)


def test_cache_is_reused_and_invalidated(tmp_path: Path) -> None:
    data = tmp_path / "d"
    shutil.copytree(SAMPLES, data)
    cache = tmp_path / "cache"
    first = load_dataset(data, cache_dir=cache, progress=False)
    assert len(first) == 12 and len(list(cache.glob("*.npz"))) == 1
    stamp = next(cache.glob("*.npz")).stat().st_mtime_ns
    again = load_dataset(data, cache_dir=cache, progress=False)
    assert next(cache.glob("*.npz")).stat().st_mtime_ns == stamp  # read, not rebuilt
    assert all(np.array_equal(a, b) for a, b in zip(first.signals, again.signals, strict=True))
    # change one record's signal: the cache must notice
    mat = data / "A00001.mat"
    raw = bytearray(mat.read_bytes())
    raw[-2:] = b"\x10\x00"
    mat.write_bytes(bytes(raw))
    os.utime(mat, ns=(stamp + 10**9, stamp + 10**9))
    changed = load_dataset(data, cache_dir=cache, progress=False)
    assert not np.array_equal(changed.signals[0], first.signals[0])


def test_bad_records_are_skipped_with_reason(tmp_path: Path) -> None:
    data = tmp_path / "d"
    shutil.copytree(SAMPLES, data)
    (data / "A00002.mat").write_bytes(b"\x00" * 10)
    ds = load_dataset(data, cache_dir=tmp_path / "c", progress=False)
    assert len(ds) == 11 and "A00002" in ds.skipped


def test_splits_are_stratified_deterministic_and_persisted(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    names = np.array([f"R{i:04d}" for i in range(500)])
    labels = rng.choice(4, size=500, p=[0.6, 0.1, 0.25, 0.05])
    folds = stratified_folds(names, labels, k=5, seed=0)
    assert folds == stratified_folds(names[::-1], labels[::-1], k=5, seed=0)
    f = np.array([folds[n] for n in names])
    for cls in range(4):
        counts = np.bincount(f[labels == cls], minlength=5)
        assert counts.max() - counts.min() <= 1
    path = tmp_path / "splits.json"
    assert load_or_make_splits(path, names, labels) == folds
    assert json.loads(path.read_text())["k"] == 5
    assert load_or_make_splits(path, names, labels, seed=99) == folds  # the file wins
