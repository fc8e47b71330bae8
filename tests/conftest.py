"""Shared fixtures: real recordings decoded once and resampled to 16 kHz. Helpers and tiny configs that test
modules import live in tests/_helpers.py."""
import pytest
import torch

from _helpers import AUDIO_DIR, REAL_CLIPS, load_real_audio

# Two cores are shared between torch's intra-op pool and everything else: one thread keeps the suite steady.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def audio_dir():
    return AUDIO_DIR


@pytest.fixture(scope="session")
def real_clips() -> dict:
    """name -> 16 kHz mono float32 waveform for every fixture recording."""
    return {name: load_real_audio(name) for name in REAL_CLIPS}


@pytest.fixture(scope="session")
def tiny_fbanks(real_clips) -> dict:
    """name -> ``[num_crops, 128, 128]`` normalised fbanks of consecutive 1.28 s crops of each real clip
    (128 frames: the tiny test config's ``max_length``), computed once by the package's feature extractor."""
    from hf_audio_cr import AudioMAEFeatureExtractor

    extractor = AudioMAEFeatureExtractor(max_length=128)
    crop = 16000 * 128 // 100
    out = {}
    for name, wave in real_clips.items():
        crops = [wave[start : start + crop] for start in range(0, len(wave) - crop + 1, crop)]
        out[name] = extractor(crops, sampling_rate=16000, long_audio="truncate")["input_values"]
    return out
