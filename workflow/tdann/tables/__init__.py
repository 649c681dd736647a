"""Result tables: the alpha trade-off and the emergence comparisons with their statistics (docs/reference.md §9).

A map "emerges" in a layer only where the trained alpha > 0 network beats, across seeds, all three controls: the
alpha = 0 network on the same positions, the shuffled-position null of the same network, and the untrained network
on the same positions.

Every function takes the run's validated ``analysis`` config (the schema fills its defaults).

Modules: ``learning`` (did each network learn, the trade-off), ``emergence`` (emergence against the controls,
verdicts, paired comparisons, pinwheels, biological anchors), ``studies`` (the published networks, the settings
sweep, the two-stream presets, the objectives side by side); ``_common`` holds the maps and values they share.
"""

from ..naming import MAPS
from ._common import PROBES, TASK, TUNING
from .emergence import anchors, comparisons, emergence, pinwheels, spreads, verdicts
from .learning import learning, not_learnt, tradeoff
from .studies import holm, objectives, published, published_markdown, settings_sweep, twostream

__all__ = [
    "MAPS", "PROBES", "TASK", "TUNING", "anchors", "comparisons", "emergence", "holm", "learning", "not_learnt",
    "objectives", "pinwheels", "published", "published_markdown", "settings_sweep", "spreads", "tradeoff",
    "twostream", "verdicts",
]
