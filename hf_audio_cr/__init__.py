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
from .training import (
    AudiosetWeightedSampler,
    CRTrainer,
    CRTrainingArguments,
    SemiSupervisedCRTrainer,
    audioset_compute_metrics,
    consistency_loss,
    exit_distributed_run,
    make_views,
)
from .training.hear_teachers import ASTTeacher, CRAudioMAETeacher, HEARTeacher, add_teacher_features, load_teacher
from .training.hear_trainers import (
    HEARFineTuningArguments,
    HEARFineTuningTrainer,
    HEARMAMTrainer,
    HEARMAMTrainingArguments,
    HEARPretrainingCollator,
    HEARTokenizerTrainer,
    HEARTokenizerTrainingArguments,
)
from .training.hear_downstream import build_hear_classifier, compute_accuracy, esc50_cross_validate
from .export import OnnxAudioClassifier, export_onnx
from .hub import PushToHubArguments, build_hub_folder, push_folder
