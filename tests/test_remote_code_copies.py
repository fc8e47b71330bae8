"""Model folders are self-contained for remote code, so shared helpers are copied: the copies must not drift."""
import inspect

from hf_audio_cr.models.cr_audiomae import feature_extraction_cr_audiomae as audiomae_fe
from hf_audio_cr.models.hear import feature_extraction_hear as hear_fe


def test_waveform_validation_is_the_same_in_both_feature_extractors():
    assert inspect.getsource(hear_fe.validate_waveforms) == inspect.getsource(audiomae_fe.validate_waveforms)
    assert inspect.getsource(hear_fe.is_resampled_audio) == inspect.getsource(audiomae_fe.is_resampled_audio)
    assert hear_fe.RESAMPLE_HINT == audiomae_fe.RESAMPLE_HINT


def test_the_pipeline_file_is_the_same_in_both_model_folders():
    from pathlib import Path

    models = Path(audiomae_fe.__file__).resolve().parents[1]
    name = "pipeline_audio_classification.py"
    assert (models / "cr_audiomae" / name).read_bytes() == (models / "hear" / name).read_bytes()
