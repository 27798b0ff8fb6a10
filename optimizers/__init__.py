"""Optimisers, learning-rate schedules and gradient clipping: their canonical meaning (training.py,
schedules.py, clipping.py, numpy_optimizer.py by hand) and, per framework, the framework's own objects built to
follow it. Importing this package imports no deep-learning framework."""

from .clipping import CLIPS, Clip
from .schedules import SCHEDULES, Schedule
from .training import OPTIMIZERS, Training, make_clip, make_schedule

__all__ = ["CLIPS", "OPTIMIZERS", "SCHEDULES", "Clip", "Schedule", "Training", "make_clip", "make_schedule"]
