"""Training: the generic fit loop, float training, checkpoints and resume."""

from afdetect.train.inference import predict_logits
from afdetect.train.loop import FitConfig, TrainConfig, fit, train

__all__ = ["FitConfig", "TrainConfig", "fit", "predict_logits", "train"]
