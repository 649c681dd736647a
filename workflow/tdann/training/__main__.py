"""``python -m tdann.training``: the torchrun ranks' entry point (:func:`main_ddp`)."""

import sys

from .torchrun import main_ddp

sys.exit(main_ddp())
