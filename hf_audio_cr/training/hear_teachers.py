"""Teachers for HEAR's tokenizer distillation (Sec. II-B): frozen frame-level encoders brought to the 20 ms token rate.

The paper distils SSAST's frame-patch features (one patch = 2 fbank frames = 20 ms, aligned 1:1 with HEAR's
tokens). Any frame-level encoder can teach through :class:`HEARTeacher`: it computes its own input features from
the waveforms, returns hidden states at its own frame rate, and :func:`interpolate_to_token_rate` resamples them
in time onto HEAR's tokens.

Timing convention (seconds, from the clip's first sample):

* HEAR token ``i`` covers the centred-STFT frames ``2i`` and ``2i + 1`` (centres at 10 ms steps from 0), so its
  centre is ``0.005 + 0.02 i``.
* A Kaldi-fbank frame ``k`` (25 ms window, 10 ms shift, snip edges: AST, AudioMAE) is centred at
  ``0.0125 + 0.01 k``; a patch covering fbank frames ``s .. s + P - 1`` is centred at ``0.0125 + 0.01 (s + (P - 1)/2)``.
* Each token takes the linear interpolation of the two teacher frames around its centre (clamped to the first /
  last frame the teacher computed from real audio); tokens whose centre lies past the audio the teacher saw
  (its input window is shorter than the clip) are marked invalid and left out of the distillation loss.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..paths import check_local_or_hub

TOKEN_PERIOD = 0.02  # HEAR: Conv1d kernel/stride 2 over 10 ms frames
TOKEN_OFFSET = 0.005  # centre of token 0: between the centred frames at 0 and 10 ms
FBANK_OFFSET = 0.0125  # centre of Kaldi frame 0: half of a 25 ms window


def interpolate_to_token_rate(
    features: torch.Tensor,
    frame_period: float,
    frame_offset: float,
    num_tokens: int,
    valid_frames: torch.Tensor | None = None,
    token_period: float = TOKEN_PERIOD,
    token_offset: float = TOKEN_OFFSET,
) -> torch.Tensor:
    """Linear interpolation in time of ``(batch, frames, d)`` teacher features onto ``num_tokens`` HEAR tokens.

    Teacher frame ``j`` is centred at ``frame_offset + j * frame_period`` seconds, token ``i`` at
    ``token_offset + i * token_period``. ``valid_frames`` ``(batch,)`` limits each clip to its first frames (the
    rest is padding): positions are clamped into ``[0, valid_frames - 1]``. With equal rates and offsets this is
    the identity (SSAST's frame patches, 1:1 with the tokens).
    """
    batch, frames, _ = features.shape
    if valid_frames is None:
        valid_frames = torch.full((batch,), frames, device=features.device)
    last = (valid_frames.to(features.device).clamp(1, frames) - 1).to(torch.float64)
    times = token_offset + token_period * torch.arange(num_tokens, device=features.device, dtype=torch.float64)
    position = ((times - frame_offset) / frame_period)[None, :].clamp(min=0.0)
    position = torch.minimum(position, last[:, None])  # (batch, tokens)
    low = position.floor().long()
    high = torch.minimum(low + 1, last[:, None].long())
    weight = (position - low).to(features.dtype)[..., None]

    def take(index: torch.Tensor) -> torch.Tensor:
        return features.gather(1, index[..., None].expand(-1, -1, features.shape[-1]))

    return take(low) * (1 - weight) + take(high) * weight


def token_centres(num_tokens: int, device=None) -> torch.Tensor:
    """Centre time in seconds of each HEAR token."""
    return TOKEN_OFFSET + TOKEN_PERIOD * torch.arange(num_tokens, device=device, dtype=torch.float64)


class HEARTeacher(nn.Module):
    """A frozen frame-level audio encoder whose hidden states the tokenizer's decoder learns to predict.

    Subclasses set ``frame_period`` / ``frame_offset`` (seconds, see the module docstring) and ``hidden_size``,
    and implement:

    * ``input_processor()``: a :class:`TeacherInputProcessor` turning 16 kHz mono waveforms into the teacher's input
      tensors (the data collator holds it, so it runs in DataLoader workers without the model; batch keys are
      prefixed ``teacher_``); ``prepare(waveforms)`` calls it;
    * ``frame_features(**inputs)``: ``(batch, frames, hidden_size)`` hidden states at the teacher's frame rate;
    * ``valid_frames(num_samples)`` and ``covered_seconds(num_samples)``: per clip, how many teacher frames come
      from real audio and how much of the clip the teacher's input window saw.

    ``forward(inputs, num_samples, num_tokens)`` returns features at the token rate and the token mask, without
    gradient.
    """

    sampling_rate = 16000
    frame_period: float
    frame_offset: float
    hidden_size: int

    def input_processor(self) -> TeacherInputProcessor:
        """The waveforms -> teacher inputs step alone (no model inside), for data collators and workers."""
        raise NotImplementedError

    def prepare(self, waveforms: list) -> dict:
        return self.input_processor()(waveforms)

    def frame_features(self, **inputs) -> torch.Tensor:
        raise NotImplementedError

    def valid_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def covered_seconds(self, num_samples: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def train(self, mode: bool = True):
        return super().train(False)  # a teacher never trains (no dropout, no patch drop)

    @torch.no_grad()
    def forward(self, inputs: dict, num_samples: torch.Tensor, num_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        """-> ``(batch, num_tokens, hidden_size)`` features and ``(batch, num_tokens)`` bool mask of covered tokens."""
        features = self.frame_features(**inputs)
        num_samples = num_samples.to(features.device)
        at_tokens = interpolate_to_token_rate(
            features, self.frame_period, self.frame_offset, num_tokens, self.valid_frames(num_samples)
        )
        covered = token_centres(num_tokens, features.device)[None, :] < self.covered_seconds(num_samples)[:, None]
        return at_tokens, covered


class TeacherInputProcessor:
    """Waveforms -> ``{"input_values": ...}`` through a teacher's feature extractor (picklable, no model inside)."""

    def __init__(self, feature_extractor, sampling_rate: int = 16000, **call_kwargs):
        self.feature_extractor, self.sampling_rate, self.call_kwargs = feature_extractor, sampling_rate, call_kwargs

    def __call__(self, waveforms: list) -> dict:
        waves = [np.asarray(w, dtype=np.float32) for w in waveforms]
        features = self.feature_extractor(waves, sampling_rate=self.sampling_rate, return_tensors="pt", **self.call_kwargs)
        return {"input_values": torch.as_tensor(features["input_values"])}


class _KaldiPatchTeacher(HEARTeacher):
    """Shared timing of ViT teachers on Kaldi fbanks (10 ms shift, 25 ms window, `max_length` frames)."""

    max_length: int
    patch_frames: int  # fbank frames a patch spans in time
    patch_stride: int  # fbank frames between patch starts

    def _setup_timing(self):
        self.frame_period = 0.01 * self.patch_stride
        self.frame_offset = FBANK_OFFSET + 0.01 * (self.patch_frames - 1) / 2
        self.time_patches = (self.max_length - self.patch_frames) // self.patch_stride + 1

    def _fbank_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        return (1 + (num_samples - 400).clamp_min(0) // 160).clamp(max=self.max_length)

    def valid_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        # a patch counts when its centre frame lies on real audio
        centre = (self._fbank_frames(num_samples).double() - (self.patch_frames - 1) / 2) / self.patch_stride
        return centre.ceil().long().clamp(1, self.time_patches)

    def covered_seconds(self, num_samples: torch.Tensor) -> torch.Tensor:
        window = (self.max_length - 1) * 0.01 + 0.025
        return torch.minimum(num_samples.double() / self.sampling_rate, torch.tensor(window, dtype=torch.float64))


class ASTTeacher(_KaldiPatchTeacher):
    """transformers' ``ASTModel`` (AST / SSAST patch models) as a teacher.

    Patches are ``patch_size`` x ``patch_size`` on the (frequency, time) fbank every ``frequency_stride`` /
    ``time_stride`` frames; the hidden states of one time column are averaged over its frequency rows (the cls and
    distillation tokens are dropped). ``layer`` picks a hidden layer (default: the last hidden state).
    """

    def __init__(self, model, feature_extractor=None, layer: int | None = None):
        super().__init__()
        from transformers import ASTFeatureExtractor

        config = model.config
        self.model = model.eval().requires_grad_(False)
        self.feature_extractor = feature_extractor or ASTFeatureExtractor(
            num_mel_bins=config.num_mel_bins, max_length=config.max_length
        )
        self.layer = layer
        self.hidden_size = config.hidden_size
        self.max_length = config.max_length
        self.patch_frames, self.patch_stride = config.patch_size, config.time_stride
        self.frequency_patches = (config.num_mel_bins - config.patch_size) // config.frequency_stride + 1
        self._setup_timing()

    def input_processor(self) -> TeacherInputProcessor:
        return TeacherInputProcessor(self.feature_extractor, self.sampling_rate)

    def frame_features(self, input_values: torch.Tensor) -> torch.Tensor:
        outputs = self.model(input_values=input_values, output_hidden_states=self.layer is not None)
        hidden = outputs.last_hidden_state if self.layer is None else outputs.hidden_states[self.layer]
        patches = hidden[:, 2:]  # drop [CLS] and the distillation token
        # ASTPatchEmbeddings flattens (frequency, time): frequency-major order
        grid = patches.reshape(patches.shape[0], self.frequency_patches, self.time_patches, -1)
        return grid.mean(dim=1)


class CRAudioMAETeacher(_KaldiPatchTeacher):
    """Our ``CRAudioMAEModel`` as a teacher: 16 x 16 patches (time-major tokens after [CLS]), averaged over the
    frequency patch rows of each time column (one teacher frame per 160 ms)."""

    def __init__(self, model, feature_extractor=None, layer: int | None = None):
        super().__init__()
        from ..models.cr_audiomae import AudioMAEFeatureExtractor, CRAudioMAEForAudioClassification

        if isinstance(model, CRAudioMAEForAudioClassification):
            model = model.audiomae
        config = model.config
        self.model = model.eval().requires_grad_(False)
        self.feature_extractor = feature_extractor or AudioMAEFeatureExtractor(
            num_mel_bins=config.num_mel_bins, max_length=config.max_length
        )
        self.layer = layer
        self.hidden_size = config.hidden_size
        self.max_length = config.max_length
        self.patch_frames = self.patch_stride = config.patch_size
        self.grid = config.patch_grid  # (time, frequency)
        self._setup_timing()

    def input_processor(self) -> TeacherInputProcessor:
        return TeacherInputProcessor(self.feature_extractor, self.sampling_rate, long_audio="truncate")

    def frame_features(self, input_values: torch.Tensor) -> torch.Tensor:
        outputs = self.model(input_values=input_values, output_hidden_states=self.layer is not None)
        hidden = outputs.last_hidden_state if self.layer is None else outputs.hidden_states[self.layer]
        patches = hidden[:, 1:]  # drop [CLS]
        return patches.reshape(patches.shape[0], self.grid[0], self.grid[1], -1).mean(dim=2)


def load_teacher(name_or_path, layer: int | None = None, **from_pretrained_kwargs) -> HEARTeacher:
    """A teacher from a Hub id or a local folder: AST/SSAST (``audio-spectrogram-transformer``) or CR-AudioMAE."""
    from transformers import ASTModel, AutoConfig, AutoFeatureExtractor

    from ..models.cr_audiomae import CRAudioMAEModel

    if not isinstance(name_or_path, (str, Path)):
        raise TypeError(f"load_teacher: pass a model id or folder, got {type(name_or_path).__name__}.")
    if Path(name_or_path).suffix in (".pth", ".pt", ".bin") and Path(name_or_path).is_file():
        raise ValueError(
            f"load_teacher: {name_or_path} is a raw checkpoint; convert it to a model folder first (for AudioMAE: "
            "scripts/convert_audiomae_checkpoint.py), then pass the folder."
        )
    name_or_path = check_local_or_hub(name_or_path)
    config = AutoConfig.from_pretrained(name_or_path, **from_pretrained_kwargs)
    try:
        feature_extractor = AutoFeatureExtractor.from_pretrained(name_or_path, **from_pretrained_kwargs)
    except (OSError, ValueError):
        feature_extractor = None  # the adapter builds the default one from the config
    if config.model_type == "audio-spectrogram-transformer":
        return ASTTeacher(ASTModel.from_pretrained(name_or_path, **from_pretrained_kwargs), feature_extractor, layer)
    if config.model_type == "cr_audiomae":
        return CRAudioMAETeacher(CRAudioMAEModel.from_pretrained(name_or_path, **from_pretrained_kwargs), feature_extractor, layer)
    raise ValueError(
        f"load_teacher: no adapter for model_type {config.model_type!r} ({name_or_path}); supported: "
        "'audio-spectrogram-transformer' (AST/SSAST) and 'cr_audiomae'. Subclass HEARTeacher for other encoders."
    )


def num_hear_tokens(num_samples: int, hop_length: int = 160, frames_per_token: int = 2) -> int:
    """Tokens HEAR makes of a clip: centred STFT frames ``1 + n // 160``, two per token."""
    return (1 + num_samples // hop_length) // frames_per_token


class _TeacherFeatureMap:
    """Batched ``datasets.map`` function for :func:`add_teacher_features` (kept picklable for caching)."""

    def __init__(self, teacher: HEARTeacher, audio_column: str, quality):
        self.teacher, self.audio_column, self.quality = teacher, audio_column, quality

    def __call__(self, batch: dict) -> dict:
        columns = {name: [] for name in batch}
        columns["teacher_features"], columns["teacher_mask"] = [], []
        kept = []
        for index, audio in enumerate(batch[self.audio_column]):
            wave = self.quality.check(audio, clip_id=index)
            if wave is None:
                continue
            kept.append(wave)
            for name in batch:
                columns[name].append(batch[name][index])
        if not kept:
            return columns
        device = next(self.teacher.parameters()).device
        inputs = {k: v.to(device) for k, v in self.teacher.prepare(kept).items()}
        lengths = torch.tensor([len(w) for w in kept])
        tokens = [num_hear_tokens(len(w)) for w in kept]
        features, mask = self.teacher(inputs, lengths, max(tokens))
        for row, count in enumerate(tokens):
            columns["teacher_features"].append(features[row, :count].float().cpu().numpy())
            columns["teacher_mask"].append(mask[row, :count].cpu().numpy())
        return columns


def add_teacher_features(dataset, teacher: HEARTeacher, batch_size: int = 16, audio_column: str = "audio", quality=None, **map_kwargs):
    """Precompute the teacher's token-rate features into ``teacher_features`` / ``teacher_mask`` columns.

    Each row gets ``(tokens, hidden_size)`` float32 features and a ``(tokens,)`` bool mask for its whole clip, so
    a tokenizer run reads them instead of running the teacher at every step (the teacher costs far more than the
    tokenizer). Clips the quality policy rejects are dropped and counted. Works on map-style and streaming
    datasets (``datasets.map(batched=True)``; pass ``num_proc``/``cache_file_name`` etc. through ``map_kwargs``).
    """
    from ..data.quality import AudioQualityPolicy

    quality = quality or AudioQualityPolicy(sampling_rate=teacher.sampling_rate)
    return dataset.map(_TeacherFeatureMap(teacher, audio_column, quality), batched=True, batch_size=batch_size, **map_kwargs)


__all__ = [
    "ASTTeacher",
    "CRAudioMAETeacher",
    "HEARTeacher",
    "TeacherInputProcessor",
    "add_teacher_features",
    "interpolate_to_token_rate",
    "load_teacher",
    "num_hear_tokens",
]
