"""HEAR's front end: waveform -> instance-normalised log-Mel spectrogram and log power spectrum.

Self-contained (only transformers/torch/torchaudio imports) so it travels as remote code.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torchaudio
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature

RESAMPLE_HINT = (
    "resample first, e.g. `dataset.cast_column('audio', datasets.Audio(sampling_rate=16000))` or "
    "`torchaudio.functional.resample(waveform, orig_sr, 16000)`"
)


# Copied from hf_audio_cr.models.cr_audiomae.feature_extraction_cr_audiomae.validate_waveforms: each model folder
# must be self-contained to load as remote code; tests/test_remote_code_copies.py keeps the copies identical.
def validate_waveforms(raw_speech, sampling_rate: int | None, expected_rate: int, min_samples: int, name: str):
    """Turn the accepted input forms into a list of 1-D float tensors, with a clear error for bad input.

    Accepted: one 1-D clip, a list of 1-D clips (numpy or torch, any device), or a 2-D array/tensor read as a
    batch of equally long mono clips (the transformers convention). A list element with two dimensions is
    multi-channel audio and is refused.
    """
    if sampling_rate is None:
        raise ValueError(f"{name}: pass `sampling_rate=` (expected {expected_rate} Hz) so the rate can be checked.")
    if sampling_rate != expected_rate:
        raise ValueError(f"{name}: got audio at {sampling_rate} Hz but the model expects {expected_rate} Hz; {RESAMPLE_HINT}.")
    if isinstance(raw_speech, (np.ndarray, torch.Tensor)) and raw_speech.ndim == 2:
        if raw_speech.shape[-1] < min_samples <= raw_speech.shape[0]:  # soundfile's (samples, channels) layout
            raise ValueError(
                f"{name}: got an array of shape {tuple(raw_speech.shape)}, which looks like multi-channel audio "
                "(samples, channels); pass mono audio, e.g. `waveform.mean(axis=1)`."
            )
        raw_speech = list(raw_speech)
    elif isinstance(raw_speech, (np.ndarray, torch.Tensor)) or not isinstance(raw_speech, (list, tuple)):
        raw_speech = [raw_speech]
    if len(raw_speech) == 0:
        raise ValueError(f"{name}: got an empty batch (no clips).")
    clips = []
    for i, clip in enumerate(raw_speech):
        if isinstance(clip, (list, tuple)):
            clip = np.asarray(clip, dtype=np.float32)
        if isinstance(clip, np.ndarray):
            if not np.issubdtype(clip.dtype, np.floating):
                raise ValueError(
                    f"{name}: clip {i} has integer samples ({clip.dtype}); convert PCM to float in [-1, 1] "
                    "first, e.g. `x.astype(np.float32) / np.iinfo(x.dtype).max`."
                )
            if not clip.flags.writeable:  # e.g. np.frombuffer (the pipeline's decoder): read-only, never copied
                with warnings.catch_warnings():  # nothing here writes into input clips
                    warnings.simplefilter("ignore", UserWarning)
                    clip = torch.from_numpy(clip)
            else:
                clip = torch.from_numpy(clip)
        if not isinstance(clip, torch.Tensor) and not is_resampled_audio(clip):
            raise TypeError(f"{name}: clip {i} is a {type(clip).__name__}; pass numpy arrays or torch tensors.")
        if isinstance(clip, torch.Tensor):
            if clip.ndim == 2 and 1 in clip.shape:
                clip = clip.reshape(-1)
            if clip.ndim != 1:
                raise ValueError(
                    f"{name}: clip {i} has shape {tuple(clip.shape)}; expected mono audio (1-D). Average the "
                    "channels (`waveform.mean(0)`) or pick one before calling the feature extractor."
                )
            if not clip.is_floating_point():
                raise ValueError(f"{name}: clip {i} has integer samples ({clip.dtype}); convert to float in [-1, 1].")
        if clip.numel() < min_samples:
            raise ValueError(
                f"{name}: clip {i} has {clip.numel()} samples; at least {min_samples} "
                f"({1000 * min_samples / expected_rate:.0f} ms) are needed for one analysis frame."
            )
        if is_resampled_audio(clip):  # read span by span when used; its samples were checked as it was read
            if not clip.finite:
                raise ValueError(f"{name}: clip {i} contains NaN or inf samples; clean or drop the clip.")
            clips.append(clip)
            continue
        # one cheap reduction first (NaN/inf make the sum non-finite), the exact check only when it fires
        if not torch.isfinite(clip.sum()) and not torch.isfinite(clip).all():
            raise ValueError(f"{name}: clip {i} contains NaN or inf samples; clean or drop the clip.")
        clips.append(clip.to(torch.float32))
    return clips


# Copied from hf_audio_cr.models.cr_audiomae.feature_extraction_cr_audiomae.is_resampled_audio
def is_resampled_audio(clip) -> bool:
    """A recording the pipeline reads span by span (pipeline_audio_classification.ResampledAudio: `clip[a:b]`,
    `numel()`, `mean()`, `materialize()`), taken as a clip without reading it whole."""
    return hasattr(clip, "materialize") and hasattr(clip, "native_rate")


class HEARFeatureExtractor(SequenceFeatureExtractor):
    r"""Log-Mel spectrogram and log power spectrum of 16 kHz audio, as HEAR's models take them (Sec. II-A, II-D).

    Per clip: remove the waveform's mean, centred STFT (Hann window of 400 samples = 25 ms, hop 160 = 10 ms,
    n_fft 1024, reflect padding at the clip's own edges), power spectrum, 128-bin HTK Mel filterbank,
    `log(x + 1e-6)` for both the Mel spectrogram and the 513-bin power spectrum, then each is normalised to zero
    mean and unit variance over (frequency, time) of that clip's own frames. Padding frames of a batch never enter
    the statistics and are zero after normalisation, so a clip gets the same features alone or in any batch.

    Any length: a clip of `n` samples gives `1 + n // 160` frames (10 s -> 1001 frames -> 500 tokens); the model
    runs long clips through its sliding windows. Inputs may be numpy arrays or torch tensors on any device;
    features are computed on the input's device (or `device=`), with one batched STFT per call.

    Returns a `BatchFeature` with `input_values` `(batch, frames, 128)`, `power_spectrum` `(batch, frames, 513)`
    (unless `return_power_spectrum=False`) and `attention_mask` `(batch, frames)` (1 on a clip's frames).

    Args:
        feature_size (`int`, defaults to 128): Mel bins (the feature dimension of `input_values`).
        sampling_rate (`int`, defaults to 16000): rate the audio must have.
        n_fft (`int`, defaults to 1024): FFT size (513 power-spectrum bins).
        win_length (`int`, defaults to 400): Hann window length in samples.
        hop_length (`int`, defaults to 160): frame shift in samples.
        log_offset (`float`, defaults to 1e-6): added before the logarithm.
        norm_eps (`float`, defaults to 1e-6): added to the standard deviation of the instance normalisation.
        remove_dc_offset (`bool`, defaults to `True`): subtract each clip's mean sample first (reference code).
        return_power_spectrum (`bool`, defaults to `True`): also return the normalised log power spectrum.
    """

    model_input_names = ["input_values", "power_spectrum", "attention_mask"]
    reads_resampled_audio = True  # the pipeline may hand it a file read span by span (never decoded whole)

    def __init__(
        self,
        feature_size: int = 128,
        sampling_rate: int = 16000,
        n_fft: int = 1024,
        win_length: int = 400,
        hop_length: int = 160,
        log_offset: float = 1e-6,
        norm_eps: float = 1e-6,
        remove_dc_offset: bool = True,
        return_power_spectrum: bool = True,
        padding_value: float = 0.0,
        **kwargs,
    ):
        kwargs.setdefault("return_attention_mask", True)
        if sampling_rate != 16000:  # refuse here: the frame layout below is fixed in samples at 16 kHz
            raise ValueError(
                f"HEARFeatureExtractor(sampling_rate={sampling_rate}): the model was trained on 16 kHz frames (n_fft 1024, hop 160 = 10 ms); "
                f"another rate changes the frame rate. Keep 16000 and {RESAMPLE_HINT}."
            )
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        if win_length > n_fft:
            raise ValueError(f"HEARFeatureExtractor: win_length ({win_length}) must not exceed n_fft ({n_fft}).")
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.log_offset = log_offset
        self.norm_eps = norm_eps
        self.remove_dc_offset = remove_dc_offset
        self.return_power_spectrum = return_power_spectrum

    @property
    def num_mel_bins(self) -> int:
        return self.feature_size

    @property
    def min_samples(self) -> int:
        """Shortest clip: reflect padding by n_fft // 2 needs more samples than that (33 ms)."""
        return self.n_fft // 2 + 1

    def num_frames(self, num_samples):
        """Frames of a centred STFT: `1 + n // hop` (works on ints and tensors)."""
        return 1 + num_samples // self.hop_length

    # frames (summed over the batch) transformed at once on CPU: the STFT's complex frames and temporaries
    # stay in cache and never exist for a whole hour of audio at once
    chunk_frames = 4096

    def _instance_norm_(self, log_spec: torch.Tensor, num_frames: list[int]) -> torch.Tensor:
        """In place: zero mean, unit variance over (frequency, time) of each clip's valid frames; padding -> 0.

        Two passes over time chunks with float64 sums (the statistics of an hour of audio without a second
        copy of it)."""
        step = max(1, self.chunk_frames) if log_spec.device.type == "cpu" else 1 << 22
        for i, frames in enumerate(num_frames):
            clip = log_spec[i, :frames]
            count = frames * log_spec.shape[-1]
            total = sum(clip[t : t + step].sum(dtype=torch.float64) for t in range(0, frames, step))
            mean = (total / count).to(log_spec.dtype)
            squares = sum((clip[t : t + step] - mean).square_().sum(dtype=torch.float64) for t in range(0, frames, step))
            scale = (squares / count).sqrt().to(log_spec.dtype) + self.norm_eps
            for t in range(0, frames, step):
                clip[t : t + step].sub_(mean).div_(scale)
            log_spec[i, frames:] = 0.0
        return log_spec

    def __call__(
        self,
        raw_speech,
        sampling_rate: int | None = None,
        return_tensors: str | None = "pt",
        return_power_spectrum: bool | None = None,
        device: str | torch.device | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Compute the features of one clip or a batch (see the class docstring for shapes)."""
        name = type(self).__name__
        clips = validate_waveforms(raw_speech, sampling_rate, self.sampling_rate, self.min_samples, name)
        return_power_spectrum = self.return_power_spectrum if return_power_spectrum is None else return_power_spectrum
        device = torch.device(device) if device is not None else clips[0].device
        half = self.n_fft // 2
        lengths = torch.tensor([c.numel() for c in clips], device=device)
        # Each clip is reflect-padded at its own edges (as a centred STFT of the clip alone), then the batch is
        # zero-padded on the right: one STFT for the batch, no frame sees another clip's padding.
        waveforms = torch.zeros(len(clips), int(lengths.max()) + 2 * half, device=device)
        for i, clip in enumerate(clips):  # written in place: no full-length temporary per clip
            samples = waveforms[i, half : half + clip.numel()]
            if is_resampled_audio(clip):  # read span by span (a long file is never decoded whole)
                step = 1 << 20
                for start in range(0, clip.numel(), step):
                    samples[start : start + step] = clip[start : start + step]
            else:
                samples.copy_(clip)
            if self.remove_dc_offset:
                samples.sub_(samples.mean())
            # reflect padding as torch.nn.functional.pad(mode="reflect"): x[half..1] | x | x[n-2..n-1-half]
            waveforms[i, :half] = samples[1 : half + 1].flip(0)
            waveforms[i, half + clip.numel() : clip.numel() + 2 * half] = samples[-half - 1 : -1].flip(0)
        spectrogram = torchaudio.transforms.Spectrogram(
            n_fft=self.n_fft, win_length=self.win_length, hop_length=self.hop_length, center=False, power=2.0
        ).to(device)
        mel_scale = torchaudio.transforms.MelScale(
            n_mels=self.feature_size, sample_rate=self.sampling_rate, n_stft=self.n_fft // 2 + 1
        ).to(device)
        num_frames = self.num_frames(lengths)
        batch, total = len(clips), int(num_frames.max())
        log_mel = waveforms.new_empty(batch, total, self.feature_size)
        log_power = waveforms.new_empty(batch, total, self.n_fft // 2 + 1) if return_power_spectrum else None
        step = max(1, self.chunk_frames // batch) if device.type == "cpu" else total
        for start in range(0, total, step):  # frames are independent: the STFT runs chunk by chunk
            stop = min(start + step, total)
            power = spectrogram(waveforms[:, start * self.hop_length : (stop - 1) * self.hop_length + self.n_fft])
            log_mel[:, start:stop] = torch.log(mel_scale(power) + self.log_offset).transpose(1, 2)
            if log_power is not None:
                log_power[:, start:stop] = torch.log(power + self.log_offset).transpose(1, 2)
        valid = torch.arange(total, device=device)[None, :] < num_frames[:, None]
        data = {"input_values": self._instance_norm_(log_mel, num_frames.tolist())}
        if log_power is not None:
            data["power_spectrum"] = self._instance_norm_(log_power, num_frames.tolist())
        data["attention_mask"] = valid.to(torch.long)
        if return_tensors == "np":
            data = {k: v.cpu().numpy() for k, v in data.items()}
        elif return_tensors not in ("pt", None):
            raise ValueError(f"{name}: return_tensors must be 'pt' or 'np', got {return_tensors!r}.")
        return BatchFeature(data=data)


__all__ = ["HEARFeatureExtractor"]
