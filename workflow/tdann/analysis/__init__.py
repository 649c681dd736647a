"""Tuning metrics and cortical-map analyses of model units.

Inputs are plain numpy: ``responses`` (S, N) = stimuli x units, a ``params`` DataFrame with one row
per stimulus, ``positions`` (N, 2) in mm on the simulated cortical sheet. Angles are in degrees at the
API and radians inside. Definitions follow docs/reference.md §4 (map metrics) and §5 (MT anchors); the
extra far-distance smoothness index and the preference spread follow the lessons of docs/reference.md §9.

Map convention: a grid map ``m`` of side ``G`` pixels over a square sheet of side ``L`` mm has pixel
``m[i, j]`` centred at ``x = (j + 0.5) L / G``, ``y = (i + 0.5) L / G`` (row = y, column = x), with
``positions[:, 0] = x`` and ``positions[:, 1] = y``.

Modules: ``tuning`` (tuning curves, orientation / direction / speed tuning with von Mises fits, category
selectivity), ``smoothness`` (pairwise similarity against distance, its shuffled null), ``maps`` (grid maps,
column spacing, pinwheels), ``patches`` (category patches, wiring length, orientation / direction relation),
``stats`` (intervals and paired tests of the results tables); ``_common`` holds the argument checks they share.
"""

from ._common import RngLike, circular_difference
from .maps import column_spacing, grid_map, pinwheel_area, pinwheel_density, pinwheels
from .patches import category_patches, orientation_direction_relation, selectivity_rsm, wiring_length
from .smoothness import protocol_bins, select_top, shuffled_smoothness, smoothness, spread
from .stats import bootstrap_ci, clopper_pearson, paired_test
from .tuning import category_selectivity, direction_metrics, orientation_metrics, speed_tuning, tuning_curves

__all__ = [
    "RngLike", "bootstrap_ci", "category_patches", "category_selectivity", "circular_difference", "clopper_pearson",
    "column_spacing", "direction_metrics", "grid_map", "orientation_direction_relation", "orientation_metrics",
    "paired_test", "pinwheel_area", "pinwheel_density", "pinwheels", "protocol_bins", "select_top",
    "selectivity_rsm", "shuffled_smoothness", "smoothness", "speed_tuning", "spread", "tuning_curves",
    "wiring_length",
]
