"""hf_audio_cr: CR-AudioMAE and HEAR as Hugging Face transformers models, trainers and pipelines.

The names below load on first use (PEP 562), so ``import hf_audio_cr`` and a script's ``--help`` stay fast.
Importing ``hf_audio_cr.models`` (or using any model name here) registers every model with the transformers
Auto classes.
"""

__version__ = "0.1.0"

from ._lazy import lazy_exports

# public name -> the submodule that defines it
_EXPORTS = {
    **dict.fromkeys(
        ("AudioMAEFeatureExtractor", "CRAudioMAEConfig", "CRAudioMAEForAudioClassification", "CRAudioMAEModel"),
        ".models.cr_audiomae",
    ),
    **dict.fromkeys(
        ("HEARConfig", "HEARFeatureExtractor", "HEARForAudioClassification", "HEARForMaskedAcousticModeling",
         "HEARModel", "HEARTokenizerConfig", "HEARTokenizerModel"),
        ".models.hear",
    ),
    **dict.fromkeys(
        ("AudioClassificationCollator", "AudioQualityCallback", "AudioQualityPolicy", "AudioSetTargets",
         "BadAudioError", "HEARPretrainingCollator", "audioset_id2label", "audioset_label_set", "load_audioset"),
        ".data",
    ),
    **dict.fromkeys(
        ("ASTTeacher", "AudiosetWeightedSampler", "CRAudioMAETeacher", "CRTrainer", "CRTrainingArguments",
         "HEARFineTuningArguments", "HEARFineTuningTrainer", "HEARMAMTrainer", "HEARMAMTrainingArguments",
         "HEARTeacher", "HEARTokenizerTrainer", "HEARTokenizerTrainingArguments",
         "SemiSupervisedCRTrainer", "add_teacher_features", "audioset_compute_metrics", "build_hear_classifier",
         "compute_accuracy", "consistency_loss", "exit_distributed_run", "load_teacher",
         "make_views"),
        ".training",
    ),
    "finetune_esc50_folds": ".experiments.hear_downstream",
    **dict.fromkeys(("OnnxAudioClassifier", "export_onnx"), ".export"),
    # the pipeline every saved folder carries as remote code (one copy per model family, kept identical)
    **dict.fromkeys(("AudioFileClassificationPipeline", "AudioFileError"),
                    ".models.cr_audiomae.pipeline_audio_classification"),
    **dict.fromkeys(("PushToHubArguments", "build_hub_folder", "push_folder"), ".hub"),
    **dict.fromkeys(("checkpoint_problems", "last_complete_checkpoint", "resolve_resume_checkpoint"),
                    ".training.checkpoints"),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
