"""Measured studies that run the package end to end on real audio (``scripts/reproduce_cr.py``,
``scripts/reproduce_hear.py``)."""
