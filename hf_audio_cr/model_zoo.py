"""The model zoo the benchmark and the ONNX export share: the paper-size (or ``quick``: tiny) HEAR, CR-AudioMAE and
AST with random weights, saved folders, and the waveform they are measured on."""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

SAMPLING_RATE = 16000
BUILTIN_MODELS = ("hear", "cr_audiomae", "ast")


@dataclass
class BenchmarkSubject:
    """One model to measure: the module, its feature extractor and how a waveform becomes model inputs."""

    name: str
    model: torch.nn.Module
    feature_extractor: Any
    # Seconds of audio one model window covers when the model itself cannot take longer input (AST):
    # longer clips are cut into windows with 50 % overlap that run as one batch, as the CR-AudioMAE
    # extractor does, so the two ViT-B models do the same work per clip.
    window_seconds: float | None = None

    def extract(self, waveform: np.ndarray | list[np.ndarray]) -> dict[str, torch.Tensor]:
        """Waveform (or a list, as a padded batch) -> the tensors ``model.forward`` takes (the feature
        extraction step of the RTF)."""
        if self.window_seconds is not None:
            if isinstance(waveform, list):
                raise ValueError(f"{self.name}: windows of one clip form the batch; pass a single waveform.")
            size = int(self.window_seconds * SAMPLING_RATE)
            hop = size // 2
            count = 1 + -(-max(len(waveform) - size, 0) // hop)
            waveform = [waveform[i * hop : i * hop + size] for i in range(count)]
        features = self.feature_extractor(waveform, sampling_rate=SAMPLING_RATE, return_tensors="pt")
        values = features.get("input_values")
        if hasattr(values, "materialize"):  # streamed windows: measured as one batch of windows, as ONNX runs them
            features = values.materialize()
        accepted = inspect.signature(self.model.forward).parameters
        return {key: value for key, value in features.items() if key in accepted and torch.is_tensor(value)}


def _tiny_ast_config_kwargs() -> dict:
    return dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_length=128)


def build_ast(quick: bool = False) -> BenchmarkSubject:
    """transformers' AST from ``ASTConfig`` (paper defaults, random weights: nothing is downloaded)."""
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    config = ASTConfig(num_labels=527, **(_tiny_ast_config_kwargs() if quick else {}))
    extractor = ASTFeatureExtractor(max_length=config.max_length, num_mel_bins=config.num_mel_bins)
    model = ASTForAudioClassification(config).eval()
    return BenchmarkSubject("ast", model, extractor, window_seconds=config.max_length / 100)


def build_cr_audiomae(quick: bool = False) -> BenchmarkSubject:
    """CR-AudioMAE ViT-B (paper: 12 layers, 768 wide, 16x16 patches on 1024x128 fbank)."""
    from .models.cr_audiomae import AudioMAEFeatureExtractor, CRAudioMAEConfig, CRAudioMAEForAudioClassification

    if quick:
        config = CRAudioMAEConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_length=128
        )
    else:
        config = CRAudioMAEConfig()
    extractor = AudioMAEFeatureExtractor(
        max_length=config.max_length, num_mel_bins=config.num_mel_bins, window_hop=config.max_length // 2
    )
    return BenchmarkSubject("cr_audiomae", CRAudioMAEForAudioClassification(config).eval(), extractor)


def build_hear(quick: bool = False) -> BenchmarkSubject:
    """HEAR with the paper's Table I sizes (acoustic model 384 x 6 layers over 6 s windows, task model 384 x 1)
    and an ESC-50 head (50 classes), as in the paper's 15M-parameter count."""
    from .models.hear import HEARConfig, HEARFeatureExtractor, HEARForAudioClassification

    config = HEARConfig(num_labels=50, **(HEAR_TINY_CONFIG if quick else {}))
    return BenchmarkSubject("hear", HEARForAudioClassification(config).eval(), HEARFeatureExtractor())


# Small widths; 2 s windows so a 10 s clip still runs the sliding-window path.
HEAR_TINY_CONFIG = dict(
    hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2, window_length=100,
    window_overlap=25, spectrum_hidden_size=16, task_hidden_size=32, task_intermediate_size=64,
    task_num_attention_heads=2, classifier_hidden_size=16,
)
BUILDERS: dict[str, Callable[[bool], BenchmarkSubject]] = {
    "hear": build_hear,
    "cr_audiomae": build_cr_audiomae,
    "ast": build_ast,
}


def load_model_dir(path: str, trust_remote_code: bool = False) -> BenchmarkSubject:
    """A saved model folder (``save_pretrained`` output with a feature extractor) as a subject."""
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    from . import models  # noqa: F401  registers the project's Auto classes

    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"--model_dirs {path}: no config.json there; pass a save_pretrained folder.")
    model = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=trust_remote_code).eval()
    extractor = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=trust_remote_code)
    window = model.config.max_length / 100 if model.config.model_type == "audio-spectrogram-transformer" else None
    return BenchmarkSubject(folder.name, model, extractor, window_seconds=window)


def benchmark_waveform(seconds: float, audio: str | None = None, seed: int = 0) -> np.ndarray:
    """``seconds`` of audio at 16 kHz: a recording tiled to length, or seeded noise (speed is content-blind)."""
    length = int(round(seconds * SAMPLING_RATE))
    if audio is None:
        return (0.1 * np.random.default_rng(seed).standard_normal(length)).astype(np.float32)
    from .data.audio_files import load_audio_file

    if not Path(audio).is_file():
        raise FileNotFoundError(f"--audio {audio}: no such file.")
    return np.resize(load_audio_file(audio, SAMPLING_RATE), length).astype(np.float32)
