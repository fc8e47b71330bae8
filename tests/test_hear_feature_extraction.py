"""HEARFeatureExtractor on real recordings: torchaudio parity, batching/padding, normalisation, errors."""
import numpy as np
import pytest
import torch
import torchaudio

from hf_audio_cr.models.hear import HEARFeatureExtractor


def reference_features(wave: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """One clip through torchaudio's own centred transforms, normalised over all its frames (no padding)."""
    x = torch.from_numpy(wave)
    x = x - x.mean()
    common = dict(n_fft=1024, win_length=400, hop_length=160, center=True, power=2.0)
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=16000, n_mels=128, **common)(x)
    power = torchaudio.transforms.Spectrogram(**common)(x)

    def norm(spec):
        spec = torch.log(spec + 1e-6)
        return ((spec - spec.mean()) / (spec.std(unbiased=False) + 1e-6)).T

    return norm(mel), norm(power)


def test_matches_torchaudio_centred_transforms(real_clips):
    fe = HEARFeatureExtractor()
    wave = real_clips["trumpet.ogg"]
    out = fe(wave, sampling_rate=16000)
    mel, power = reference_features(wave)
    assert out["input_values"].shape == (1, 1 + len(wave) // 160, 128)
    assert out["power_spectrum"].shape == (1, 1 + len(wave) // 160, 513)
    torch.testing.assert_close(out["input_values"][0], mel, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out["power_spectrum"][0], power, atol=1e-4, rtol=1e-4)
    assert out["attention_mask"].all()


def test_batch_padding_leaves_each_clip_unchanged(real_clips):
    fe = HEARFeatureExtractor()
    robin, speech = real_clips["robin.ogg"], real_clips["speech_female.ogg"]
    alone = fe(robin, sampling_rate=16000)
    batch = fe([robin, speech], sampling_rate=16000)
    frames = 1 + len(robin) // 160
    assert batch["input_values"].shape[1] == 1 + len(speech) // 160
    assert batch["attention_mask"][0].sum() == frames and batch["attention_mask"][1].all()
    for key in ("input_values", "power_spectrum"):
        torch.testing.assert_close(batch[key][0, :frames], alone[key][0], atol=1e-5, rtol=1e-5)
        assert batch[key][0, frames:].abs().max() == 0  # padding frames are zero, outside the statistics
        valid = batch[key][0, :frames]
        assert abs(valid.mean().item()) < 1e-4 and abs(valid.std(unbiased=False).item() - 1) < 1e-3


def test_numpy_output_and_round_trip(tmp_path, real_clips):
    fe = HEARFeatureExtractor(return_power_spectrum=False)
    fe.save_pretrained(tmp_path)
    loaded = HEARFeatureExtractor.from_pretrained(tmp_path)
    assert loaded.return_power_spectrum is False and loaded.hop_length == 160
    out = loaded(torch.from_numpy(real_clips["robin.ogg"]), sampling_rate=16000, return_tensors="np")
    assert set(out) == {"input_values", "attention_mask"} and isinstance(out["input_values"], np.ndarray)


@pytest.mark.parametrize(
    "audio, rate, message",
    [
        (np.zeros(16000, dtype=np.float32), 44100, "44100 Hz"),
        ([np.zeros((2, 16000), dtype=np.float32)], 16000, "mono"),
        ([], 16000, "empty batch"),
        (np.array([0.0, np.nan] * 8000, dtype=np.float32), 16000, "NaN"),
        (np.zeros(100, dtype=np.float32), 16000, "at least 513 "),
        (np.zeros(16000, dtype=np.int16), 16000, "integer samples"),
    ],
)
def test_bad_audio_gets_a_clear_error(audio, rate, message):
    with pytest.raises(ValueError, match=message):
        HEARFeatureExtractor()(audio, sampling_rate=rate)


def test_a_call_takes_whole_clips_or_the_extractors_own_window(real_clips):
    """`max_seconds=None` per call scores a long clip whole; any other per-call length is refused (one window
    layout per extractor, the one its saved model is scored with) instead of being ignored."""
    fe = HEARFeatureExtractor(max_seconds=2.0)
    clip = real_clips["trumpet.ogg"]  # 5.3 s: longer than the window
    whole = fe(clip, sampling_rate=16000, max_seconds=None)
    assert whole["input_values"].shape[0] == 1 and "window_to_clip" not in whole
    assert torch.equal(whole["input_values"], HEARFeatureExtractor(max_seconds=None)(clip, sampling_rate=16000)["input_values"])
    same = fe(clip, sampling_rate=16000, max_seconds=2.0, long_audio="window")
    assert torch.equal(same["window_to_clip"], fe(clip, sampling_rate=16000, long_audio="window")["window_to_clip"])
    with pytest.raises(ValueError, match=r"called with max_seconds=6.0: a call takes only max_seconds=None"):
        fe(clip, sampling_rate=16000, max_seconds=6.0)
