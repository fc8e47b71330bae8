"""CR-AudioMAE: config, models and feature extractor, registered with the transformers Auto classes."""

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
)

from .configuration_cr_audiomae import CRAudioMAEConfig
from .feature_extraction_cr_audiomae import AudioMAEFeatureExtractor
from .modeling_cr_audiomae import CRAudioMAEForAudioClassification, CRAudioMAEModel, CRAudioMAEPreTrainedModel

AutoConfig.register(CRAudioMAEConfig.model_type, CRAudioMAEConfig, exist_ok=True)
AutoModel.register(CRAudioMAEConfig, CRAudioMAEModel, exist_ok=True)
AutoModelForAudioClassification.register(CRAudioMAEConfig, CRAudioMAEForAudioClassification, exist_ok=True)
AutoFeatureExtractor.register(CRAudioMAEConfig, AudioMAEFeatureExtractor, exist_ok=True)

# save_pretrained writes these files and `auto_map`, so folders load with trust_remote_code=True anywhere.
CRAudioMAEConfig.register_for_auto_class()
CRAudioMAEModel.register_for_auto_class("AutoModel")
CRAudioMAEForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")
AudioMAEFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")

__all__ = [
    "AudioMAEFeatureExtractor",
    "CRAudioMAEConfig",
    "CRAudioMAEForAudioClassification",
    "CRAudioMAEModel",
    "CRAudioMAEPreTrainedModel",
]
