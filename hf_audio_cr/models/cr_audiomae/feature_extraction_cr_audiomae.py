"""AudioMAE's Kaldi fbank front end as a batched, `save_pretrained`-able feature extractor.

Self-contained (only transformers/torch/torchaudio imports) so it travels as remote code.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import numpy as np
import torch
from torchaudio.compliance.kaldi import get_mel_banks
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature

RESAMPLE_HINT = (
    "resample first, e.g. `dataset.cast_column('audio', datasets.Audio(sampling_rate=16000))` or "
    "`torchaudio.functional.resample(waveform, orig_sr, 16000)`"
)


# Copied verbatim into models/hear/feature_extraction_hear.py (remote code needs self-contained folders);
# tests/test_remote_code_copies.py keeps the copies identical.
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


def is_resampled_audio(clip) -> bool:
    """A recording the pipeline reads span by span (pipeline_audio_classification.ResampledAudio: `clip[a:b]`,
    `numel()`, `mean()`, `materialize()`), taken as a clip without reading it whole."""
    return hasattr(clip, "materialize") and hasattr(clip, "native_rate")


@lru_cache(maxsize=8)  # built once per setting and device, not on every call
def kaldi_filterbank(num_mel_bins: int, window_size: int, sampling_rate: float, device: str, band: int = 32):
    """Kaldi's Mel matrix cut into bands of `band` Mel bins, each with the FFT-bin range it touches, plus the
    Hanning window and FFT size: `(bands, window, n_fft)`."""
    n_fft = 1 << (window_size - 1).bit_length()  # Kaldi's round_to_power_of_two
    mel, _ = get_mel_banks(num_mel_bins, n_fft, sampling_rate, 20.0, 0.0, 100.0, -500.0, 1.0)
    mel = torch.nn.functional.pad(mel, (0, 1))  # Nyquist bin carries no Mel weight, as in Kaldi
    bands = []
    for first in range(0, num_mel_bins, band):
        block = mel[first : first + band]
        used = (block > 0).any(dim=0).nonzero().flatten()
        low, high = (int(used[0]), int(used[-1]) + 1) if len(used) else (0, 1)
        bands.append((first, low, high, block[:, low:high].T.contiguous().to(device)))
    window = torch.hann_window(window_size, periodic=False).to(device=device, dtype=torch.float32)
    return tuple(bands), window, n_fft


class AudioMAEFeatureExtractor(SequenceFeatureExtractor):
    r"""Kaldi-compatible log-Mel filterbank features as AudioMAE computes them.

    Per clip: subtract the waveform mean, frame it (25 ms Hanning window, 10 ms shift, `snip_edges`), remove
    each frame's DC offset, pre-emphasise (0.97), FFT on 512 points, 128 Mel bins (20 Hz to Nyquist), natural log;
    dither 0, `htk_compat=True`, `use_energy=False` (no energy column). Frames are padded with zeros or cut to
    `max_length`, then normalised as `(x - mean) / (2 * std)` with AudioSet statistics.

    Batched: all clips of a call are framed together, so there is no Python loop over frames; inputs may be
    numpy arrays or torch tensors on any device (features are computed on the input's device unless `device=`).

    Audio longer than `max_length` frames (10.24 s) is cut into windows of `max_length` frames every
    `window_hop` frames; the model scores each window and takes the maximum over windows:

    * `long_audio="stream"` (the default): `input_values` is a `StreamedWindows` object that holds the
      waveforms (not copied) and computes the windows' fbanks batch by batch while the model scores them, so
      memory does not grow with the length of the recording (`pipeline("audio-classification")` on an hour
      of audio). `.materialize()` gives the `"window"` tensors. Calls whose clips all fit one window, and
      `return_tensors="np"`, return plain tensors as below.
    * `long_audio="window"`: all windows at once, `input_values` of shape
      `(batch, num_windows, max_length, num_mel_bins)` with a `window_mask` (batched evaluation, ONNX).
    * `long_audio="truncate"`: the first `max_length` frames only (training).

    Args:
        feature_size (`int`, defaults to 1): channels of the input audio (mono).
        sampling_rate (`int`, defaults to 16000): rate the audio must have.
        num_mel_bins (`int`, defaults to 128): Mel filterbank bins.
        max_length (`int`, defaults to 1024): frames per window (10.24 s).
        frame_length_ms (`float`, defaults to 25.0) / frame_shift_ms (`float`, defaults to 10.0): Kaldi framing.
        preemphasis (`float`, defaults to 0.97): Kaldi pre-emphasis coefficient.
        do_normalize (`bool`, defaults to `True`): apply the AudioSet normalisation.
        mean (`float`, defaults to -4.2677393) / std (`float`, defaults to 4.5689974): AudioSet fbank statistics.
        long_audio (`str`, defaults to `"stream"`): `"stream"`, `"window"` or `"truncate"`.
        window_hop (`int`, defaults to 512): frames between window starts (50 % overlap).
        chunk_frames (`int`, defaults to 1024): frames (summed over the batch) transformed at once on CPU.
    """

    model_input_names = ["input_values", "window_mask"]
    reads_resampled_audio = True  # the pipeline may hand it a file read span by span (streamed, never whole)

    def __init__(
        self,
        feature_size: int = 1,
        sampling_rate: int = 16000,
        num_mel_bins: int = 128,
        max_length: int = 1024,
        frame_length_ms: float = 25.0,
        frame_shift_ms: float = 10.0,
        preemphasis: float = 0.97,
        do_normalize: bool = True,
        mean: float = -4.2677393,
        std: float = 4.5689974,
        long_audio: str = "stream",
        window_hop: int = 512,
        chunk_frames: int = 1024,
        padding_value: float = 0.0,
        **kwargs,
    ):
        if sampling_rate != 16000:  # refuse here: the frame layout below is fixed in samples at 16 kHz
            raise ValueError(
                f"AudioMAEFeatureExtractor(sampling_rate={sampling_rate}): the model was trained on 16 kHz fbank frames "
                f"(25 ms / 10 ms, 128 Mel bins up to 8 kHz); "
                f"another rate changes the frame rate. Keep 16000 and {RESAMPLE_HINT}."
            )
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        check_long_audio(long_audio)
        self.num_mel_bins = num_mel_bins
        self.max_length = max_length
        self.frame_length_ms = frame_length_ms
        self.frame_shift_ms = frame_shift_ms
        self.preemphasis = preemphasis
        self.do_normalize = do_normalize
        self.mean = mean
        self.std = std
        self.long_audio = long_audio
        self.window_hop = window_hop
        self.chunk_frames = chunk_frames

    @property
    def window_size(self) -> int:
        return int(self.sampling_rate * self.frame_length_ms / 1000)

    @property
    def window_shift(self) -> int:
        return int(self.sampling_rate * self.frame_shift_ms / 1000)

    def _filterbank(self, device: torch.device) -> tuple[tuple, torch.Tensor, int]:
        return kaldi_filterbank(self.num_mel_bins, self.window_size, float(self.sampling_rate), str(device))

    def fbank(self, clips, num_frames: torch.Tensor, min_rows: int = 0, normalize: bool = False,
              means: list | None = None) -> torch.Tensor:
        """Log-Mel frames `(batch, max(num_frames, min_rows), num_mel_bins)` of `clips` (1-D waveforms, or the rows
        of a 2-D batch) with `means[i]` subtracted from clip `i` (None: already zero-mean); rows past a clip's
        last frame hold `padding_value` (AudioMAE pads the fbank with zeros before normalising).
        `normalize=True` applies the AudioSet normalisation too (to the padding rows as well)."""
        device = clips[0].device
        mel, window, n_fft = self._filterbank(device)
        size, shift = self.window_size, self.window_shift
        batch, total = len(clips), int(num_frames.max())
        out = torch.empty(batch, max(total, min_rows), self.num_mel_bins, device=device)
        # Chunks of about `chunk_frames` frames keep every step (waveform to normalisation) in cache on CPU, in
        # scratch buffers reused across chunks (a fresh batch-sized buffer costs more in page faults than the
        # arithmetic on it), and bound memory on hour-long audio: whole clips in groups when they are short, time
        # spans of one clip when long. On a GPU one chunk covers the batch. No Python loop runs over frames.
        rows = self.chunk_frames if device.type == "cpu" else 1 << 22
        clips_per_chunk = min(batch, max(1, rows // total))
        step = total if clips_per_chunk > 1 else min(rows, total)
        scratch = _FbankScratch(clips_per_chunk, step, size, shift, n_fft, device)
        last = num_frames.tolist() if device.type == "cpu" else None  # (a host sync; one chunk on a GPU anyway)
        for first_clip in range(0, batch, clips_per_chunk):
            group = range(first_clip, min(first_clip + clips_per_chunk, batch))
            for start in range(0, total, step):
                if last is not None and start >= max(last[i] for i in group):
                    break  # past the end of the group's clips (a short clip next to a long one): padding rows only
                stop = min(start + step, total)
                begin, end = start * shift, (stop - 1) * shift + size
                span = scratch.waveform[: len(group), : end - begin]
                for row, i in enumerate(group):  # the clip's mean removed while copying its samples (AudioMAE)
                    samples = clips[i][begin:end].to(device)
                    if means is None:
                        span[row, : samples.numel()].copy_(samples)
                    else:
                        torch.sub(samples, means[i], out=span[row, : samples.numel()])
                    span[row, samples.numel() :].zero_()  # past the clip's end: frames that become padding
                energies = self._log_mel_power(span, mel, window, n_fft, scratch, out=out[group.start : group.stop, start:stop])
                energies.clamp_(min=torch.finfo(torch.float32).eps).log_()
                if normalize:
                    self._normalize_(energies)
        padding = self.padding_value
        if normalize:
            padding = (self.padding_value - self.mean) / (2 * self.std)
        if last is not None:  # only the rows past each clip's end
            for i, frames in enumerate(last):
                out[i, frames:] = padding
            return out
        valid = torch.arange(out.shape[1], device=out.device)[None, :] < num_frames[:, None]
        return out.masked_fill_(~valid[..., None], padding)  # one kernel, no host sync per clip

    def _log_mel_power(self, span: torch.Tensor, mel: tuple, window: torch.Tensor, n_fft: int,
                       scratch: _FbankScratch, out: torch.Tensor) -> torch.Tensor:
        """Mel energies (before the log) of every frame of the zero-mean `span` `(clips, samples)`, written into
        `out` `(clips, frames, bins)`."""
        frames = span.unfold(-1, self.window_size, self.window_shift)
        # Frames are written straight into the zero-padded FFT buffer: no padding copy inside rfft.
        # Up to the FFT every value is rounded as in torchaudio: a rounding-level change of the frame smears over
        # all FFT bins and moves bins ~100 dB below the frame's peak by ~1 % (1e-3 on the features, robin.ogg),
        # so pre-emphasis on the whole waveform or frame means from block sums are not used here.
        buffer = scratch.buffer(*frames.shape[:-1])
        emphasised = buffer[..., : self.window_size]
        torch.sub(frames, frames.mean(dim=-1, keepdim=True), out=emphasised)  # Kaldi remove_dc_offset
        # Kaldi pre-emphasis y[n] = x[n] - a x[n-1], with the same two roundings as torchaudio (a fused a*b+c
        # differs in the last bit). Its first sample (x[0] - a x[0]) is skipped: the Hann window is 0 at n = 0.
        previous = torch.mul(emphasised[..., :-1], self.preemphasis, out=scratch.previous(*frames.shape[:-1]))
        emphasised[..., 1:].sub_(previous)
        emphasised.mul_(window)
        spectrum = torch.fft.rfft(buffer)  # (rfft's out= computes elsewhere and copies)
        parts = torch.view_as_real(spectrum).square_()
        power = torch.add(parts[..., 0], parts[..., 1], out=scratch.power(*frames.shape[:-1]))  # contiguous
        # Mel triangles are narrow: multiply each band by its FFT bins only. When the chunk's output rows are one
        # strided matrix (one clip per chunk on CPU), BLAS writes each band straight into its columns of `out`;
        # otherwise a batched product and a copy.
        flat = out.shape[0] == 1 or out.stride(0) == out.shape[1] * out.shape[2]
        for first_bin, low, high, weights in mel:
            columns = out[..., first_bin : first_bin + weights.shape[1]]
            if flat:
                torch.mm(power.view(-1, power.shape[-1])[:, low:high], weights, out=columns.view(-1, weights.shape[1]))
            else:
                columns.copy_(power[..., low:high] @ weights)
        return out

    def __call__(
        self,
        raw_speech,
        sampling_rate: int | None = None,
        return_tensors: str | None = "pt",
        long_audio: str | None = None,
        device: str | torch.device | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Compute `input_values` for one clip or a batch (see the class docstring for shapes)."""
        clips = validate_waveforms(raw_speech, sampling_rate, self.sampling_rate, self.window_size, type(self).__name__)
        long_audio = check_long_audio(long_audio or self.long_audio)
        device = torch.device(device) if device is not None else clips[0].device
        if long_audio == "stream":
            if return_tensors != "np" and max(self.frames_of(c.numel()) for c in clips) > self.max_length:
                return BatchFeature(data={"input_values": StreamedWindows(self, clips, device)})
            long_audio = "window"  # every clip fits one window: the same tensors either way
        clips = [(clip.materialize() if is_resampled_audio(clip) else clip).to(device) for clip in clips]
        # each clip's mean is removed over its own samples (AudioMAE), chunk by chunk as fbank copies them: no
        # batch-sized waveform copy
        means = [clip.mean() for clip in clips]
        lengths = torch.tensor([c.numel() for c in clips], device=device)
        num_frames = 1 + (lengths - self.window_size) // self.window_shift
        if long_audio == "truncate":
            num_frames = num_frames.clamp(max=self.max_length)  # only the frames that will be kept are computed
        # already padded to one window and normalised
        features = self.fbank(clips, num_frames, min_rows=self.max_length, normalize=self.do_normalize, means=means)
        padding = (self.padding_value - self.mean) / (2 * self.std) if self.do_normalize else self.padding_value
        if features.shape[1] == self.max_length:
            data = {"input_values": features}
        else:
            data = self._windows(features, num_frames, padding)
        if return_tensors == "np":
            data = {k: v.cpu().numpy() for k, v in data.items()}
        return BatchFeature(data=data, tensor_type=return_tensors if return_tensors != "pt" else None)

    def log_mel(self, waveform) -> torch.Tensor:
        """Log-Mel frames `(frames, num_mel_bins)` of one whole clip (mean removed, not normalised, not padded):
        what `scripts/prepare_audioset.py --store_fbank fp16` stores; `from_log_mel` turns them into inputs."""
        (clip,) = validate_waveforms(waveform, self.sampling_rate, self.sampling_rate, self.window_size,
                                     type(self).__name__)
        clip = clip.materialize() if is_resampled_audio(clip) else clip
        frames = self.frames_of(clip.numel())
        return self.fbank([clip], torch.tensor([frames], device=clip.device), means=[clip.mean()])[0]

    def from_log_mel(self, log_mels: list) -> BatchFeature:
        """`input_values` `(batch, max_length, num_mel_bins)` from stored `log_mel` frames (any float dtype): cut
        or padded to `max_length`, then normalised -- `long_audio="truncate"` of the clips they came from."""
        out = torch.full((len(log_mels), self.max_length, self.num_mel_bins), float(self.padding_value))
        for i, frames in enumerate(log_mels):
            frames = torch.as_tensor(frames)[: self.max_length]
            out[i, : frames.shape[0]] = frames
        if self.do_normalize:
            self._normalize_(out)
        return BatchFeature(data={"input_values": out})

    def _normalize_(self, features: torch.Tensor) -> torch.Tensor:
        """AudioSet normalisation `(x - mean) / (2 std)` in place, as one pass `x / (2 std) - mean / (2 std)`."""
        bias = torch.tensor(-self.mean / (2 * self.std), dtype=features.dtype, device=features.device)
        return torch.add(bias, features, alpha=1 / (2 * self.std), out=features)

    def _windows(self, features: torch.Tensor, num_frames: torch.Tensor, padding: float) -> dict:
        """Cut `(batch, frames, bins)` into `(batch, windows, max_length, bins)` windows plus a validity mask."""
        hop, size = self.window_hop, self.max_length
        num_windows = 1 + torch.clamp(num_frames - size, min=0).add(hop - 1).div(hop, rounding_mode="floor")
        most = int(num_windows.max())
        needed = (most - 1) * hop + size
        features = torch.nn.functional.pad(features, (0, 0, 0, needed - features.shape[1]), value=padding)
        windows = features.unfold(1, size, hop).transpose(-1, -2)  # (batch, windows, size, bins)
        mask = torch.arange(most, device=features.device)[None, :] < num_windows[:, None]
        return {"input_values": windows.contiguous(), "window_mask": mask}

    def frames_of(self, num_samples: int) -> int:
        """Kaldi frames (`snip_edges`) of a clip of `num_samples` samples."""
        return 1 + (num_samples - self.window_size) // self.window_shift

    def num_windows(self, num_samples: int) -> int:
        """How many windows a clip of `num_samples` samples is scored with."""
        return 1 + max(0, math.ceil((self.frames_of(num_samples) - self.max_length) / self.window_hop))

    def window_features(self, waveform: torch.Tensor, mean: torch.Tensor, first: int, count: int) -> torch.Tensor:
        """Windows `first .. first + count - 1` of one clip, `(count, max_length, num_mel_bins)`, computed from
        only the samples they cover; equal to the same windows of `long_audio="window"`."""
        hop, size = self.window_hop, self.max_length
        total = self.frames_of(waveform.numel())
        start, needed = first * hop, (count - 1) * hop + size
        stop = min(start + needed, total)  # frames past the clip's end are padding
        span = waveform[start * self.window_shift : (stop - 1) * self.window_shift + self.window_size]
        span = span.to(mean.device)
        features = self.fbank([span], torch.tensor([stop - start], device=span.device), min_rows=needed,
                              normalize=self.do_normalize, means=[mean])[0]  # the whole clip's mean, as `__call__`
        return features.unfold(0, size, hop).transpose(-1, -2)  # rows past the clip's end: normalised padding


class _FbankScratch:
    """Buffers of one `fbank` call, sized for its largest chunk and reused by every chunk (views from the front,
    so each chunk's tensors are contiguous)."""

    def __init__(self, clips: int, frames: int, size: int, shift: int, n_fft: int, device: torch.device):
        self.waveform = torch.empty(clips, (frames - 1) * shift + size, device=device)
        self.size, self.n_fft, bins = size, n_fft, n_fft // 2 + 1
        # the FFT input: columns size.. stay 0 (only :size is written), so they are zeroed once here
        self._buffer = torch.zeros(clips * frames * n_fft, device=device)
        self._previous = torch.empty(clips * frames * (size - 1), device=device)
        self._power = torch.empty(clips * frames * bins, device=device)

    @staticmethod
    def _view(storage: torch.Tensor, clips: int, frames: int, width: int) -> torch.Tensor:
        return storage[: clips * frames * width].view(clips, frames, width)

    def buffer(self, clips: int, frames: int) -> torch.Tensor:
        return self._view(self._buffer, clips, frames, self.n_fft)

    def previous(self, clips: int, frames: int) -> torch.Tensor:
        return self._view(self._previous, clips, frames, self.size - 1)

    def power(self, clips: int, frames: int) -> torch.Tensor:
        return self._view(self._power, clips, frames, self.n_fft // 2 + 1)


def check_long_audio(long_audio: str) -> str:
    if long_audio not in ("stream", "window", "truncate"):
        raise ValueError(f"long_audio must be 'stream', 'window' or 'truncate', got {long_audio!r}.")
    return long_audio


class StreamedWindows:
    """The windows of long clips, computed when they are scored (`AudioMAEFeatureExtractor(long_audio="stream")`).

    Holds the validated waveforms (no copy) and each clip's mean; `window_batches` yields the fbank windows a
    few at a time, so a model that scores and discards them (`CRAudioMAEForAudioClassification`) needs memory
    for one batch of windows whatever the length. `shape` is that of the materialised `input_values`.
    """

    def __init__(self, feature_extractor: AudioMAEFeatureExtractor, clips: list[torch.Tensor], device: torch.device):
        self.feature_extractor = feature_extractor
        self.clips = clips
        self.device = torch.device(device)
        self.means = [clip.mean().to(self.device) for clip in clips]  # float32 mean over the clip, as "window"
        self.num_windows = [feature_extractor.num_windows(clip.numel()) for clip in clips]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        fe = self.feature_extractor
        return (len(self.clips), max(self.num_windows), fe.max_length, fe.num_mel_bins)

    def __len__(self) -> int:
        return len(self.clips)

    def to(self, device=None, *args, **kwargs) -> StreamedWindows:
        """A view computing on `device` (dtype arguments are ignored: the consumer casts each batch)."""
        if device is None or isinstance(device, torch.dtype):
            return self
        return StreamedWindows(self.feature_extractor, self.clips, torch.device(device))

    def window_batches(self, batch_size: int):
        """Yield `(clip_index, windows)` with at most `batch_size` windows `(n, max_length, num_mel_bins)`."""
        for index, (clip, mean, count) in enumerate(zip(self.clips, self.means, self.num_windows)):
            for first in range(0, count, batch_size):
                yield index, self.feature_extractor.window_features(clip, mean, first, min(batch_size, count - first))

    def materialize(self) -> BatchFeature:
        """All windows at once: the `long_audio="window"` output for the same clips."""
        return self.feature_extractor(self.clips, sampling_rate=self.feature_extractor.sampling_rate,
                                      long_audio="window", device=self.device)

    def __repr__(self) -> str:
        return f"StreamedWindows(shape={self.shape}, device={self.device})"


__all__ = ["AudioMAEFeatureExtractor", "StreamedWindows", "validate_waveforms"]
