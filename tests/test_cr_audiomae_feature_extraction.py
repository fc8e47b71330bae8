"""AudioMAEFeatureExtractor: parity with torchaudio's Kaldi fbank on real recordings, batching, windows, errors."""
import numpy as np
import pytest
import torch
import torchaudio

from hf_audio_cr import AudioMAEFeatureExtractor

MEAN, STD = -4.2677393, 4.5689974


def reference_fbank(wave: np.ndarray) -> torch.Tensor:
    """AudioMAE's recipe, one clip at a time, with torchaudio's Kaldi implementation."""
    w = torch.from_numpy(wave)[None]
    w = w - w.mean()
    fb = torchaudio.compliance.kaldi.fbank(
        w, htk_compat=True, sample_frequency=16000, use_energy=False, window_type="hanning",
        num_mel_bins=128, dither=0.0, frame_shift=10,
    )
    return (fb + 4.2677393) / (2 * 4.5689974)


def test_batched_features_match_kaldi_fbank_on_real_recordings(real_clips):
    fe = AudioMAEFeatureExtractor()
    clips = list(real_clips.values())  # 2.7 s, 5.3 s and 14 s: different lengths in one call
    features = fe(clips, sampling_rate=16000, long_audio="truncate")["input_values"]
    assert features.shape == (3, 1024, 128)
    for i, clip in enumerate(clips):
        ref = reference_fbank(clip)[:1024]
        n = ref.shape[0]
        assert (features[i, :n] - ref).abs().max().item() <= 1e-4
        # padding frames hold the normalised zero, as AudioMAE's zero padding before normalisation
        assert torch.allclose(features[i, n:], torch.full_like(features[i, n:], (0 - MEAN) / (2 * STD)))


def test_chunked_fbank_matches_kaldi_on_offset_quiet_and_mixed_length_clips(real_clips):
    """fbank removes each clip's mean while copying it chunk by chunk into buffers reused by every chunk (FFT
    padding zeroed once, the first sample's pre-emphasis skipped because the Hann window is 0 there). A constant
    offset or a quiet passage makes any rounding change visible in the bins far below a frame's peak (robin.ogg
    has bins ~100 dB down), so each chunking must stay at torchaudio's rounding."""
    robin, speech, trumpet = real_clips["robin.ogg"], real_clips["speech_female.ogg"], real_clips["trumpet.ogg"]
    clips = [robin + np.float32(0.25), speech * np.float32(1e-3), trumpet, robin[:8000], speech[16000:22400]]
    ref = [reference_fbank(c)[:1024] for c in clips]
    # default (one clip per chunk), time spans of 300 frames (the last one shorter), one chunk for the batch (the
    # GPU layout); short clips alone: several clips per chunk
    for chunk_frames in (1024, 300, 1 << 22):
        fe = AudioMAEFeatureExtractor(chunk_frames=chunk_frames)
        for batch in ([0, 1, 2, 3, 4], [3, 4]):
            features = fe([clips[j] for j in batch], sampling_rate=16000, long_audio="truncate")["input_values"]
            for i, j in enumerate(batch):
                expected = ref[j]
                n = expected.shape[0]
                assert (features[i, :n] - expected).abs().max().item() <= 1e-4, (chunk_frames, j)
                assert torch.allclose(features[i, n:], torch.full_like(features[i, n:], (0 - MEAN) / (2 * STD)))


def test_numpy_and_torch_inputs_agree_and_single_clip_equals_batched(real_clips):
    fe = AudioMAEFeatureExtractor()
    robin = real_clips["robin.ogg"]
    from_numpy = fe(robin, sampling_rate=16000)["input_values"]
    from_torch = fe(torch.from_numpy(robin), sampling_rate=16000)["input_values"]
    batched = fe([robin, real_clips["trumpet.ogg"]], sampling_rate=16000)["input_values"]
    assert from_numpy.shape == (1, 1024, 128)
    assert torch.equal(from_numpy, from_torch)
    assert torch.equal(from_numpy[0], batched[0])
    as_np = fe(robin, sampling_rate=16000, return_tensors="np")["input_values"]
    assert isinstance(as_np, np.ndarray) and np.array_equal(as_np, from_numpy.numpy())


def test_long_audio_is_windowed_not_cut(real_clips):
    fe = AudioMAEFeatureExtractor()
    speech = real_clips["speech_female.ogg"]  # ~14 s: longer than one 10.24 s window
    long_clip = np.concatenate([speech, speech, speech])  # ~42 s
    out = fe([real_clips["robin.ogg"], long_clip], sampling_rate=16000, long_audio="window")
    windows, mask = out["input_values"], out["window_mask"]
    expected = fe.num_windows(len(long_clip))
    assert windows.shape == (2, expected, 1024, 128) and expected >= 7
    assert mask[0].tolist() == [True] + [False] * (expected - 1)
    assert mask[1].all()
    # each window is the fbank of its own stretch of audio: window k starts at frame k * hop
    ref = reference_fbank(long_clip)
    hop = fe.window_hop
    for k in (0, 3, expected - 2):
        assert (windows[1, k] - ref[k * hop : k * hop + 1024]).abs().max().item() <= 1e-4
    # the last window holds the clip's end, padded
    tail = ref[(expected - 1) * hop :]
    assert (windows[1, -1, : len(tail)] - tail).abs().max().item() <= 1e-4
    # the short clip's first window equals its single-window features
    assert torch.equal(windows[0, 0], fe(real_clips["robin.ogg"], sampling_rate=16000)["input_values"][0])


def test_feature_extractor_round_trips_through_save_pretrained(tmp_path, real_clips):
    fe = AudioMAEFeatureExtractor(max_length=512, window_hop=256)
    fe.save_pretrained(tmp_path)
    again = AudioMAEFeatureExtractor.from_pretrained(tmp_path)
    assert again.max_length == 512 and again.window_hop == 256
    clip = real_clips["trumpet.ogg"]
    assert torch.equal(fe(clip, sampling_rate=16000, long_audio="window")["input_values"],
                       again(clip, sampling_rate=16000, long_audio="window")["input_values"])


@pytest.mark.parametrize(
    "make_input, kwargs, message",
    [
        (lambda c: c, {"sampling_rate": 44100}, "cast_column"),
        (lambda c: c, {}, "sampling_rate"),
        (lambda c: [np.stack([c, c])], {"sampling_rate": 16000}, "mono"),
        (lambda c: np.zeros(0, dtype=np.float32), {"sampling_rate": 16000}, "0 samples"),
        (lambda c: np.where(np.arange(len(c)) == 5, np.nan, c).astype(np.float32), {"sampling_rate": 16000}, "NaN"),
        (lambda c: np.where(np.arange(len(c)) == 5, np.inf, c).astype(np.float32), {"sampling_rate": 16000}, "inf"),
        (lambda c: (c * 32767).astype(np.int16), {"sampling_rate": 16000}, "integer"),
        (lambda c: [], {"sampling_rate": 16000}, "empty batch"),
    ],
    ids=["wrong-rate", "no-rate", "stereo", "empty", "nan", "inf", "int16", "no-clips"],
)
def test_bad_input_gets_a_clear_error(real_clips, make_input, kwargs, message):
    fe = AudioMAEFeatureExtractor()
    with pytest.raises(ValueError, match=message):
        fe(make_input(real_clips["robin.ogg"]), **kwargs)


def test_soundfile_stereo_layout_is_named_as_multi_channel(real_clips):
    clip = real_clips["trumpet.ogg"]
    with pytest.raises(ValueError, match="multi-channel audio"):
        AudioMAEFeatureExtractor()(np.stack([clip, clip], axis=1), sampling_rate=16000)  # (samples, 2)
