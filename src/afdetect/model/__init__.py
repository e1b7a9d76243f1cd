"""The float CNN, its configuration and its file format."""

from afdetect.model.cnn import AFNet, CNNConfig
from afdetect.model.io import FloatModel, load_float_model, save_float_model

__all__ = ["AFNet", "CNNConfig", "FloatModel", "load_float_model", "save_float_model"]
