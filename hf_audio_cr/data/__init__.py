"""Data: AudioSet streaming and label sets, downstream sets, the bad-audio policy and the batching collator."""
from .audioset import (
    AUDIOSET_HUB_ID,
    AUDIOSET_REVISION,
    AudioSetTargets,
    audioset_ancestors,
    audioset_id2label,
    audioset_label_set,
    audioset_ontology,
    load_audioset,
)
from .collate import AudioClassificationCollator
from .quality import (
    BAD_AUDIO_KINDS,
    AudioQualityCallback,
    AudioQualityPolicy,
    BadAudioError,
    UnreadableAudio,
    safe_decode,
)
