"""Two-stream species model: shared V1/V2 stages that split into a ventral branch (V4 -> IT, object category) and a
dorsal branch (MT -> LIP, object position or motion direction), wired by a species connectivity preset.

The wiring is data: a preset ``{"areas": [...], "gains": {"SRC->DST": g, ...}}`` says which areas exist and how
strongly each feeds the next. The input of an area is ``sum_src gain[src->dst] * proj(resample(src output))``
(``proj`` a 1x1 convolution per connection, ``resample`` average pooling / interpolation to the area's input
resolution); the area then applies conv3x3 (stride 2) + BatchNorm + ReLU. A zero gain removes the connection's
contribution (and its gradient). The image enters through the pseudo-area ``input`` (``input->V1``, gain 1 unless
given). Presets are data: the config's ``twostream.species`` (human, marmoset, mouse, with their rationale).

Modules: ``net`` (presets, :class:`TwoStreamNet`), ``train`` (training with the spatial loss, preset comparison,
chance of the tasks), ``scenes`` (what / where scenes, Fashion-MNIST glyphs).
"""

from .net import (
    AREA_SCALE,
    AREA_WIDTH,
    DORSAL_HEAD,
    VENTRAL_HEAD,
    PresetError,
    TwoStreamNet,
    direction_targets,
    parse_connectivity,
    to_input,
)
from .scenes import (
    FASHION_MNIST_CLASSES,
    SHAPES,
    SceneSampler,
    load_fashion_mnist,
    object_scenes,
    read_idx,
    scene_batch,
)
from .train import compare_presets, spatial_loss, task_chance, train_two_stream

__all__ = [
    "AREA_SCALE", "AREA_WIDTH", "DORSAL_HEAD", "FASHION_MNIST_CLASSES", "SHAPES", "VENTRAL_HEAD", "PresetError",
    "SceneSampler", "TwoStreamNet", "compare_presets", "direction_targets", "load_fashion_mnist",
    "object_scenes", "parse_connectivity", "read_idx", "scene_batch", "spatial_loss", "task_chance", "to_input",
    "train_two_stream",
]
