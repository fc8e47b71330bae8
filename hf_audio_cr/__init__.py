"""hf_audio_cr: CR-AudioMAE and HEAR as Hugging Face transformers models, trainers and pipelines.

Importing the package registers every model with the transformers Auto classes.
"""

__version__ = "0.1.0"

from .models.cr_audiomae import (
    AudioMAEFeatureExtractor,
    CRAudioMAEConfig,
    CRAudioMAEForAudioClassification,
    CRAudioMAEModel,
)
from .models.hear import (
    HEARConfig,
    HEARFeatureExtractor,
    HEARForAudioClassification,
    HEARForMaskedAcousticModeling,
    HEARModel,
    HEARTokenizerConfig,
    HEARTokenizerModel,
)
from .data import (
    AudioClassificationCollator,
    AudioQualityCallback,
    AudioQualityPolicy,
    AudioSetTargets,
    BadAudioError,
    audioset_id2label,
    audioset_label_set,
    load_audioset,
)
