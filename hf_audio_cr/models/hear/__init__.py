"""HEAR: configs, tokenizer, acoustic model, task model and feature extractor, registered with the Auto classes."""

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForPreTraining,
)

from .configuration_hear import HEARConfig, HEARTokenizerConfig
from .feature_extraction_hear import HEARFeatureExtractor, HEARStreamedWindows, window_starts
from .modeling_hear import (
    HEARForAudioClassification,
    HEARForMaskedAcousticModeling,
    HEARModel,
    HEARPreTrainedModel,
    average_window_logits,
    compute_mask_time_indices,
    cross_fade_merge,
    cross_fade_window,
)
from .modeling_hear_tokenizer import HEARTokenizerModel

AutoConfig.register(HEARConfig.model_type, HEARConfig, exist_ok=True)
AutoConfig.register(HEARTokenizerConfig.model_type, HEARTokenizerConfig, exist_ok=True)
AutoModel.register(HEARConfig, HEARModel, exist_ok=True)
AutoModel.register(HEARTokenizerConfig, HEARTokenizerModel, exist_ok=True)
AutoModelForPreTraining.register(HEARConfig, HEARForMaskedAcousticModeling, exist_ok=True)
AutoModelForAudioClassification.register(HEARConfig, HEARForAudioClassification, exist_ok=True)
AutoFeatureExtractor.register(HEARConfig, HEARFeatureExtractor, exist_ok=True)
AutoFeatureExtractor.register(HEARTokenizerConfig, HEARFeatureExtractor, exist_ok=True)

# save_pretrained writes these files and `auto_map`, so folders load with trust_remote_code=True anywhere.
# (HEARTokenizerModel writes its own auto_map: transformers treats auto classes named "*Tokenizer*" as text tokenizers.)
HEARConfig.register_for_auto_class()
HEARModel.register_for_auto_class("AutoModel")
HEARForMaskedAcousticModeling.register_for_auto_class("AutoModelForPreTraining")
HEARForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")
HEARFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")

__all__ = [
    "HEARConfig",
    "HEARFeatureExtractor",
    "HEARForAudioClassification",
    "HEARForMaskedAcousticModeling",
    "HEARModel",
    "HEARPreTrainedModel",
    "HEARTokenizerConfig",
    "HEARStreamedWindows",
    "HEARTokenizerModel",
    "average_window_logits",
    "compute_mask_time_indices",
    "cross_fade_merge",
    "cross_fade_window",
    "window_starts",
]
