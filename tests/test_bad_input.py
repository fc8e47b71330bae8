"""Bad input, end to end: every public entry point gets the same bad recordings and must answer with a
clear error naming the input and the fix (or the documented skip-and-count), never a traceback from
deep inside torch and never a silently wrong answer.

All bad files are derived from a real recording (LibriSpeech speech, tests/fixtures/audio)."""
import io

import numpy as np
import pytest
import soundfile as sf
import torch

from hf_audio_cr import AudioMAEFeatureExtractor

SPEECH = "speech_female.ogg"


@pytest.fixture(scope="module")
def speech(real_clips):
    return real_clips[SPEECH][:48000]  # 3 s at 16 kHz


@pytest.fixture(scope="module")
def feature_extractor():
    return AudioMAEFeatureExtractor()


# ----- waveform arrays into the feature extractor ------------------------------------------------------

@pytest.mark.parametrize(
    "case, make, match",
    [
        ("zero-length", lambda x: x[:0], r"clip 0 has 0 samples; at least 400"),
        ("NaN", lambda x: np.where(np.arange(x.size) == 100, np.nan, x).astype(np.float32), "NaN or inf"),
        ("inf", lambda x: np.where(np.arange(x.size) == 7, np.inf, x).astype(np.float32), "NaN or inf"),
        ("8-bit PCM ints", lambda x: (x * 127).astype(np.int8), r"integer samples \(int8\).*float"),
        ("24-bit PCM ints", lambda x: (x * 2**23).astype(np.int32), r"integer samples \(int32\).*float"),
        ("6-channel list item", lambda x: [np.stack([x] * 6)], r"shape \(6, 48000\); expected mono.*mean\(0\)"),
        ("empty batch", lambda x: [], "empty batch"),
    ],
)
def test_feature_extractor_rejects_bad_arrays(feature_extractor, speech, case, make, match):
    with pytest.raises(ValueError, match=match):
        feature_extractor(make(speech), sampling_rate=16000)


@pytest.mark.parametrize("rate", [8000, 48000])
def test_feature_extractor_names_the_resampling_fix(feature_extractor, speech, rate):
    with pytest.raises(ValueError, match=rf"{rate} Hz but the model expects 16000 Hz; resample first"):
        feature_extractor(speech, sampling_rate=rate)
    with pytest.raises(ValueError, match="pass `sampling_rate=`"):
        feature_extractor(speech)


def test_feature_extractor_on_digital_silence_is_finite_and_constant(feature_extractor):
    # Silence is a legal input (the quality policy decides whether to use it); its features must be the
    # floor value everywhere, not NaN/-inf from log(0).
    features = feature_extractor(np.zeros(16000, np.float32), sampling_rate=16000)["input_values"]
    assert torch.isfinite(features).all()
    assert features[0, :98].unique().numel() == 1
