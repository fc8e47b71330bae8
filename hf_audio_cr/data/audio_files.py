"""Decoding one audio file to the mono float32 waveform the feature extractors take (tests, the embedded demo
set, benchmarks): soundfile decodes, channels are averaged, torchaudio resamples (its default sinc kernel)."""
from __future__ import annotations

import os

import numpy as np


def load_audio_file(path: str | os.PathLike, sampling_rate: int = 16000) -> np.ndarray:
    """``path`` decoded to mono float32 at ``sampling_rate`` (channels averaged, resampled only if needed)."""
    import soundfile as sf
    import torch
    import torchaudio

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such audio file.")
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    wave = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))
    if rate != sampling_rate:
        wave = torchaudio.functional.resample(wave, rate, sampling_rate)
    return wave.numpy()
