"""Measured studies of the package's methods (run by thin scripts in ``scripts/``)."""
