"""The model folders (transformers layout). Importing this package registers both families with the Auto classes."""
from . import cr_audiomae, hear  # noqa: F401  each subpackage registers its config, models and feature extractor
