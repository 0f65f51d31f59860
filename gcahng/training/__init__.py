"""Training: the GCA-HNG iteration (method.md §6) and, on top of it, the trainer."""
from gcahng.training.optim import Optimizers, build_optimizers
from gcahng.training.step import GENERATOR_MODES, NonFiniteLossError, RunningMeans, StepConfig, TrainingStep

__all__ = [
    "GENERATOR_MODES", "NonFiniteLossError", "Optimizers", "RunningMeans", "StepConfig", "TrainingStep",
    "build_optimizers",
]
