"""Data: AudioSet streaming and label sets, downstream and pre-training sets, the bad-audio policy, the batching
collators and one-file decoding.

Names load their submodule on first use (PEP 562), so importing one light module (e.g. the argument
dataclasses a script parses) does not import the whole training stack."""
from .._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys((
        "AUDIOSET_HUB_ID", "AUDIOSET_REVISION", "AudioSetTargets", "audioset_ancestors", "audioset_id2label",
        "audioset_label_set", "audioset_ontology", "load_audioset", "load_audioset_labels", "write_audio_parquet",
        "write_audioset_parquet",
    ), ".audioset"),
    **dict.fromkeys(("AudioClassificationCollator", "HEARPretrainingCollator"), ".collate"),
    "load_audio_file": ".audio_files",
    "load_pretraining_audio": ".pretraining",
    **dict.fromkeys((
        "BAD_AUDIO_KINDS", "AudioQualityCallback", "AudioQualityPolicy", "BadAudioError", "SafeAudioDecoding",
        "UnreadableAudio", "safe_decode", "with_safe_audio",
    ), ".quality"),
    **dict.fromkeys((
        "DOWNSTREAM_TASKS", "ESC50_CLASSES", "FSDD_DIGITS", "FSDD_SPEAKERS", "SPEECH_COMMANDS_12_CLASSES", "SPEECH_COMMANDS_35_CLASSES",
        "esc50_cross_validation", "esc50_folds", "fsdd_leave_one_speaker_out", "fsdd_speaker_folds",
        "load_audiofolder", "load_downstream", "load_esc50", "load_fsdd", "load_speech_commands", "load_voxceleb1",
        "write_fsdd_parquet",
    ), ".downstream"),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
