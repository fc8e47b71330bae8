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


def window_starts(num_samples: int, size: int, hop: int) -> list[int]:
    """First samples of the windows a clip is scored with: `size` samples every `hop`, plus one that ends at the
    clip's end if the hops miss it; `[0]` (the whole clip) when it is not longer than `size`.

    The one layout of long clips: `HEARFeatureExtractor` (pipeline, model) and, for evaluation,
    `hf_audio_cr.data.AudioClassificationCollator(max_seconds=..., mode="eval")` both call it."""
    if num_samples <= size:
        return [0]
    starts = list(range(0, num_samples - size + 1, hop))
    if starts[-1] != num_samples - size:
        starts.append(num_samples - size)
    return starts


def check_long_audio(long_audio: str) -> str:
    if long_audio not in ("stream", "window"):
        raise ValueError(f"HEARFeatureExtractor: long_audio must be 'stream' or 'window', got {long_audio!r}.")
    return long_audio


class HEARFeatureExtractor(SequenceFeatureExtractor):
    r"""Log-Mel spectrogram and log power spectrum of 16 kHz audio, as HEAR's models take them (Sec. II-A, II-D).

    Per clip: remove the waveform's mean, centred STFT (Hann window of 400 samples = 25 ms, hop 160 = 10 ms,
    n_fft 1024, reflect padding at the clip's own edges), power spectrum, 128-bin HTK Mel filterbank,
    `log(x + 1e-6)` for both the Mel spectrogram and the 513-bin power spectrum, then each is normalised to zero
    mean and unit variance over (frequency, time) of that clip's own frames. Padding frames of a batch never enter
    the statistics and are zero after normalisation, so a clip gets the same features alone or in any batch.

    A clip of `n` samples gives `1 + n // 160` frames (10 s -> 1001 frames -> 500 tokens). Inputs may be numpy
    arrays or torch tensors on any device; features are computed on the input's device (or `device=`), with one
    batched STFT per call.

    Returns a `BatchFeature` with `input_values` `(batch, frames, 128)`, `power_spectrum` `(batch, frames, 513)`
    (unless `return_power_spectrum=False`) and `attention_mask` `(batch, frames)` (1 on a clip's frames).

    Long audio: a clip longer than `max_seconds` (30 s, the task model's 1500 learned positions) is scored as
    windows of `max_seconds` every `window_hop_seconds` (default half of it), the last one ending at the clip's
    end; each window is featurised as a clip of its own and the model averages the windows' logits per clip --
    what HEAR fine-tuning evaluates (`AudioClassificationCollator(max_seconds=..., mode="eval")` +
    `HEARFineTuningTrainer`, the same `window_starts`). Clips that fit are taken whole, as above. When some clip
    of a call is longer:

    * `long_audio="stream"` (the default): `input_values` is a `HEARStreamedWindows` object holding the clips
      (not copied) that featurises a few windows at a time while `HEARForAudioClassification` scores them, so
      memory does not grow with the recording (`pipeline("audio-classification")` on an hour of audio).
      `return_tensors="np"` gives the `"window"` output.
    * `long_audio="window"`: every window at once as a batch of clips (`input_values` `(windows, frames, 128)`,
      ...) plus `window_to_clip` `(windows,)`, the clip each window came from (short clips: one row each).

    `max_seconds=None` scores every clip whole (the task model then interpolates its positions past 30 s).

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
        max_seconds (`float`, *optional*, defaults to 30.0): window length for clips longer than it (None: whole).
        window_hop_seconds (`float`, *optional*): hop between windows (default `max_seconds / 2`).
        long_audio (`str`, defaults to `"stream"`): `"stream"` or `"window"` (see above).
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
        max_seconds: float | None = 30.0,
        window_hop_seconds: float | None = None,
        long_audio: str = "stream",
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
        self.long_audio = check_long_audio(long_audio)
        if max_seconds is not None and max_seconds * sampling_rate < self.min_samples:
            raise ValueError(f"HEARFeatureExtractor(max_seconds={max_seconds}): a window needs at least "
                             f"{self.min_samples} samples ({self.min_samples / sampling_rate:.3f} s); or None for whole clips.")
        if window_hop_seconds is not None and window_hop_seconds <= 0:
            raise ValueError(f"HEARFeatureExtractor(window_hop_seconds={window_hop_seconds}): give a positive hop.")
        self.max_seconds = max_seconds
        # saved as a number: a folder keeps the hop it was evaluated with even if max_seconds is edited later
        self.window_hop_seconds = window_hop_seconds or (max_seconds / 2 if max_seconds is not None else None)

    @property
    def num_mel_bins(self) -> int:
        return self.feature_size

    @property
    def min_samples(self) -> int:
        """Shortest clip: reflect padding by n_fft // 2 needs more samples than that (33 ms)."""
        return self.n_fft // 2 + 1

    @property
    def window_samples(self) -> int | None:
        """Samples per window of long audio (None: clips are scored whole)."""
        return None if self.max_seconds is None else int(round(self.max_seconds * self.sampling_rate))

    @property
    def window_hop_samples(self) -> int | None:
        return None if self.max_seconds is None else max(1, int(round(self.window_hop_seconds * self.sampling_rate)))

    def num_windows(self, num_samples: int) -> int:
        """How many windows a clip of `num_samples` samples is scored with (1 when it fits one)."""
        size = self.window_samples
        return 1 if size is None else len(window_starts(num_samples, size, self.window_hop_samples))

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
        long_audio: str | None = None,
        device: str | torch.device | None = None,
        max_seconds: float | None = ...,
        **kwargs,
    ) -> BatchFeature:
        """Compute the features of one clip or a batch (see the class docstring for shapes and long audio).

        `long_audio=` overrides the extractor's mode for this call; `max_seconds=None` scores this call's clips whole
        (HEAR pre-training's crops), whatever the extractor's `max_seconds`."""
        if max_seconds is not ... and max_seconds is not None and max_seconds != self.max_seconds:
            raise ValueError(  # one window layout per extractor: the one a saved model is scored with
                f"{type(self).__name__}(max_seconds={self.max_seconds}) called with max_seconds={max_seconds}: a call "
                "takes only max_seconds=None (whole clips); build the extractor with the window length instead."
            )
        name = type(self).__name__
        clips = validate_waveforms(raw_speech, sampling_rate, self.sampling_rate, self.min_samples, name)
        return_power_spectrum = self.return_power_spectrum if return_power_spectrum is None else return_power_spectrum
        long_audio = check_long_audio(long_audio or self.long_audio)
        if return_tensors not in ("pt", "np", None):
            raise ValueError(f"{name}: return_tensors must be 'pt' or 'np', got {return_tensors!r}.")
        device = torch.device(device) if device is not None else clips[0].device
        # `max_seconds=None` in a call: whole clips this time (HEAR pre-training reads whole or cropped clips)
        size = None if max_seconds is None else self.window_samples
        if size is None or max(clip.numel() for clip in clips) <= size:  # every clip scored whole, as before
            data = self._whole_clips(clips, return_power_spectrum, device)
        elif long_audio == "stream" and return_tensors != "np":
            return BatchFeature(data={"input_values": HEARStreamedWindows(self, clips, device, return_power_spectrum)})
        else:  # "window": every window of every clip as its own clip, and which clip each window came from
            windows, window_to_clip = [], []
            for index, clip in enumerate(clips):
                starts = window_starts(clip.numel(), size, self.window_hop_samples)
                windows += self._cut_windows(clip, starts)
                window_to_clip += [index] * len(starts)
            data = self._whole_clips(windows, return_power_spectrum, device)
            data["window_to_clip"] = torch.tensor(window_to_clip, device=device)
        if return_tensors == "np":
            data = {k: v.cpu().numpy() for k, v in data.items()}
        return BatchFeature(data=data)

    def _cut_windows(self, clip, starts: list[int]) -> list:
        """The windows of `clip` that begin at `starts` (the clip itself when it fits one window)."""
        size = self.window_samples
        return [clip if clip.numel() <= size else clip[start : start + size] for start in starts]

    def _whole_clips(self, clips: list, return_power_spectrum: bool, device: torch.device) -> dict:
        """Features of validated clips, each taken whole (its own STFT edges and statistics): the tensors."""
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
        return data


class HEARStreamedWindows:
    """The windows of long clips, featurised when they are scored (`HEARFeatureExtractor(long_audio="stream")`).

    Holds the validated clips (no copy; a file's `ResampledAudio` is read a window at a time);
    `window_batches(n)` yields each clip's windows `n` at a time, each window featurised as its own clip (as the
    `"window"` output), so a model that scores and discards them (`HEARForAudioClassification`) needs memory for
    `n` windows whatever the length. Clips that fit one window come whole, as one batch of their own.
    """

    def __init__(self, feature_extractor: HEARFeatureExtractor, clips: list, device: torch.device,
                 return_power_spectrum: bool = True):
        self.feature_extractor = feature_extractor
        self.clips = clips
        self.device = torch.device(device)
        self.return_power_spectrum = return_power_spectrum
        self.num_windows = [feature_extractor.num_windows(clip.numel()) for clip in clips]

    @property
    def window_to_clip(self) -> torch.Tensor:
        """The clip of each window, in the order `window_batches` yields them (the `"window"` output's map)."""
        return torch.repeat_interleave(torch.arange(len(self.clips)), torch.tensor(self.num_windows))

    def __len__(self) -> int:
        return len(self.clips)

    def to(self, device=None, *args, **kwargs) -> HEARStreamedWindows:
        """A view computing on `device` (dtype arguments are ignored: the consumer casts each batch)."""
        if device is None or isinstance(device, torch.dtype):
            return self
        return HEARStreamedWindows(self.feature_extractor, self.clips, torch.device(device), self.return_power_spectrum)

    def window_batches(self, batch_size: int):
        """Yield `(clip_index, features)`: `input_values`, `power_spectrum`, `attention_mask` of at most
        `batch_size` windows of one clip, equal to those windows' rows of the `"window"` output."""
        fe = self.feature_extractor
        size, hop = fe.window_samples, fe.window_hop_samples
        for index, clip in enumerate(self.clips):
            starts = window_starts(clip.numel(), size, hop)
            for first in range(0, len(starts), batch_size):
                windows = fe._cut_windows(clip, starts[first : first + batch_size])
                yield index, fe._whole_clips(windows, self.return_power_spectrum, self.device)

    def materialize(self) -> BatchFeature:
        """All windows at once: the `long_audio="window"` output for the same clips."""
        fe = self.feature_extractor
        return fe(self.clips, sampling_rate=fe.sampling_rate, long_audio="window", device=self.device,
                  return_power_spectrum=self.return_power_spectrum)

    def __repr__(self) -> str:
        return f"HEARStreamedWindows(clips={len(self.clips)}, windows={self.num_windows}, device={self.device})"


__all__ = ["HEARFeatureExtractor", "HEARStreamedWindows", "window_starts"]
