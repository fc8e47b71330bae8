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
    HEARPretrainingCollator,
    audioset_id2label,
    audioset_label_set,
    load_audioset,
)
from .training import (
    ASTTeacher,
    AudiosetWeightedSampler,
    CRAudioMAETeacher,
    CRTrainer,
    CRTrainingArguments,
    HEARFineTuningArguments,
    HEARFineTuningTrainer,
    HEARMAMTrainer,
    HEARMAMTrainingArguments,
    HEARTeacher,
    HEARTokenizerTrainer,
    HEARTokenizerTrainingArguments,
    SemiSupervisedCRTrainer,
    add_teacher_features,
    audioset_compute_metrics,
    build_hear_classifier,
    compute_accuracy,
    consistency_loss,
    exit_distributed_run,
    load_teacher,
    make_views,
)
from .experiments.hear_downstream import finetune_esc50_folds
from .export import OnnxAudioClassifier, export_onnx
# the pipeline every saved folder carries as remote code (one copy per model family, kept identical)
from .models.cr_audiomae.pipeline_audio_classification import AudioFileClassificationPipeline, AudioFileError
from .hub import PushToHubArguments, build_hub_folder, push_folder
from .training.checkpoints import checkpoint_problems, last_complete_checkpoint, resolve_resume_checkpoint
