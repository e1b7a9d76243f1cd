"""Training the float model: loop, checkpoints and resume."""

from afdetect.train.inference import predict_logits
from afdetect.train.loop import TrainConfig, train

__all__ = ["TrainConfig", "predict_logits", "train"]
