"""Training: the GCA-HNG iteration (method.md §6) and, on top of it, the trainer."""
from gcahng.hyperparameters import StepConfig
from gcahng.training.optim import Optimizers, build_optimizers
from gcahng.training.step import NonFiniteLossError, RunningMeans, TrainingStep

__all__ = [
    "NonFiniteLossError", "Optimizers", "RunningMeans", "StepConfig", "TrainingStep",
    "build_optimizers",
]
