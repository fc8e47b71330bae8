"""``make demo``: the whole package end to end on embedded real recordings (see ``run.py``)."""
from .run import DemoArguments, run_demo

__all__ = ["DemoArguments", "run_demo"]
