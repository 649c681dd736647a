"""tdann: topographic deep artificial neural networks of primate visual cortex.

One module per concept: data, video, stimuli, models, positions, losses, augment, swapopt,
training, screening, analysis, figures, spiking, twostream, provenance. The library never imports
workflow code.
"""

__version__ = "0.1.0"
