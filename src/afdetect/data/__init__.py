"""Dataset indexing, cached array store, splits and preprocessing."""

from afdetect.data.cinc import index_dataset, read_labels
from afdetect.data.preprocess import PreprocessConfig, preprocess
from afdetect.data.store import Dataset, load_dataset

__all__ = ["Dataset", "PreprocessConfig", "index_dataset", "load_dataset", "preprocess",
           "read_labels"]
