"""Evaluation stimuli: gratings, drifting gratings, random-dot kinematograms, a category localizer,
moving disks for the spiking speed channels, and their HDF5 storage.

Every generator is deterministic given its arguments (and ``seed``) and returns ``(stimuli, params)``:
``stimuli`` is float32 in [0, 1], shaped (N, 3, H, W) for images or (N, 3, T, H, W) for clips (the models'
channel-first layout); ``params`` is a pandas DataFrame with one row per stimulus.

Geometry convention (all generators): images are square, ``size`` pixels a side. Angles are in degrees,
counter-clockwise from the rightward image axis with *up* positive (up = decreasing row index), so 0 deg points
right and 90 deg points up. Grating *orientation* is the orientation of the bars (the iso-luminance lines):
0 = horizontal bars, 90 = vertical bars. *Direction* is the direction of motion, perpendicular to the bars.

Modules: ``gratings`` (static and drifting gratings), ``dots`` (random-dot kinematograms), ``categories`` (the
procedural category localizer and fLoc folders), ``disks`` (moving disks for the spiking speed channels), ``io``
(HDF5 stimulus sets); ``_checks`` holds the argument checks and image geometry they share.
"""

from ._checks import StimulusError
from .categories import CATEGORIES, FLOC_SUBFOLDERS, category_localizer, load_floc, match_luminance, pink_noise
from .disks import moving_disks
from .dots import random_dots
from .gratings import GRATING_COLOURS, drifting_gratings, gratings
from .io import (
    count_stimuli,
    iter_stimulus_batches,
    load_moving_disks,
    load_params,
    load_stimulus_set,
    save_moving_disks,
    save_stimulus_set,
)

__all__ = [
    "CATEGORIES", "FLOC_SUBFOLDERS", "GRATING_COLOURS", "StimulusError", "category_localizer", "count_stimuli",
    "drifting_gratings", "gratings", "iter_stimulus_batches", "load_floc", "load_moving_disks", "load_params",
    "load_stimulus_set", "match_luminance", "moving_disks", "pink_noise", "random_dots", "save_moving_disks",
    "save_stimulus_set",
]
