"""ONNX export (dynamo exporter) of trained-shape tiny models: parity with PyTorch <= 1e-4 through onnxruntime
on real recordings, for dynamic batch and dynamic number of windows."""
import numpy as np
import pytest
import torch

from _helpers import TINY_CR_AUDIOMAE, TINY_HEAR_WINDOWED
from hf_audio_cr import AudioMAEFeatureExtractor, CRAudioMAEConfig, CRAudioMAEForAudioClassification
from hf_audio_cr.export import ExportArguments, OnnxAudioClassifier, export_and_check, export_onnx, max_abs_difference

TINY = TINY_CR_AUDIOMAE


@pytest.fixture(scope="module")
def cr_audiomae_onnx(real_clips, tmp_path_factory):
    torch.manual_seed(0)
    model = CRAudioMAEForAudioClassification(CRAudioMAEConfig(**TINY)).eval()
    extractor = AudioMAEFeatureExtractor(max_length=128, window_hop=64)
    example = extractor(real_clips["robin.ogg"][: 16000 * 3], sampling_rate=16000, return_tensors="pt")
    path = export_onnx(model, dict(example), tmp_path_factory.mktemp("onnx") / "cr_audiomae.onnx")
    return model, extractor, OnnxAudioClassifier(path)


@pytest.mark.slow  # ONNX export
@pytest.mark.parametrize("seconds", [1.0, 2.5, 9.0])
def test_cr_audiomae_parity_for_any_number_of_windows(cr_audiomae_onnx, real_clips, seconds):
    model, extractor, onnx_model = cr_audiomae_onnx
    features = dict(extractor(real_clips["speech_female.ogg"][: int(16000 * seconds)], sampling_rate=16000))
    assert max_abs_difference(model, onnx_model, features) <= 1e-4


@pytest.mark.slow  # ONNX export
def test_cr_audiomae_parity_on_a_padded_batch_with_window_mask(cr_audiomae_onnx, real_clips):
    model, extractor, onnx_model = cr_audiomae_onnx
    clips = [real_clips["trumpet.ogg"][:24000], real_clips["robin.ogg"], real_clips["speech_female.ogg"][:80000]]
    features = dict(extractor(clips, sampling_rate=16000, long_audio="window"))
    assert not features["window_mask"].all()  # padded windows exist and must not win the clip max
    logits = onnx_model(**features)
    assert logits.shape == (3, model.config.num_labels) and np.isfinite(logits).all()
    assert max_abs_difference(model, onnx_model, features) <= 1e-4


@pytest.mark.slow  # ONNX export
def test_export_script_checks_parity_on_a_saved_folder(tmp_path, audio_dir):
    folder = tmp_path / "tagger"
    CRAudioMAEForAudioClassification(CRAudioMAEConfig(**TINY)).save_pretrained(folder)
    AudioMAEFeatureExtractor(max_length=128, window_hop=64).save_pretrained(folder)
    report = export_and_check(ExportArguments(model=str(folder), output=str(tmp_path / "tagger.onnx"),
                                              audio=[str(audio_dir / "trumpet.ogg")]))
    assert (tmp_path / "tagger.onnx").is_file() and len(report["parity"]) == 4
    assert report["max_abs_difference"] <= 1e-4


def test_export_refuses_an_example_that_would_freeze_the_window_axis(tmp_path, real_clips):
    model = CRAudioMAEForAudioClassification(CRAudioMAEConfig(**TINY)).eval()
    features = dict(AudioMAEFeatureExtractor(max_length=128, window_hop=64)(
        [real_clips["robin.ogg"][:48000], real_clips["trumpet.ogg"][:48000]], sampling_rate=16000, long_audio="window"))
    features["input_values"] = features["input_values"][:, :1]
    features["window_mask"] = features["window_mask"][:, :1]
    with pytest.raises(ValueError, match="windows"):
        export_onnx(model, features, tmp_path / "x.onnx")


def test_missing_onnx_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="export_onnx"):
        OnnxAudioClassifier(tmp_path / "none.onnx")


HEAR_TINY = dict(TINY_HEAR_WINDOWED, num_labels=5, task_max_position_embeddings=500)


@pytest.fixture(scope="module")
def hear_onnx(real_clips, tmp_path_factory):
    from hf_audio_cr.models.hear import HEARConfig, HEARFeatureExtractor, HEARForAudioClassification

    torch.manual_seed(0)
    model = HEARForAudioClassification(HEARConfig(**HEAR_TINY)).eval()
    extractor = HEARFeatureExtractor()
    example = dict(extractor(real_clips["speech_female.ogg"][: 16000 * 4], sampling_rate=16000))
    path = export_onnx(model, example, tmp_path_factory.mktemp("onnx") / "hear.onnx")
    return model, extractor, OnnxAudioClassifier(path)


@pytest.mark.slow  # ONNX export
@pytest.mark.parametrize("seconds", [0.3, 1.0, 2.35, 7.0])
def test_hear_parity_with_sliding_windows_in_the_graph(hear_onnx, real_clips, seconds):
    """0.3 s fits one 0.4 s window (padded inside the runner), longer clips use several cross-faded windows;
    odd frame counts (1 + n // 160) are padded with masked frames."""
    model, extractor, onnx_model = hear_onnx
    features = dict(extractor(real_clips["speech_female.ogg"][: int(16000 * seconds)], sampling_rate=16000))
    assert max_abs_difference(model, onnx_model, features) <= 1e-4


@pytest.mark.slow  # ONNX export
def test_hear_parity_on_a_padded_batch(hear_onnx, real_clips):
    model, extractor, onnx_model = hear_onnx
    features = dict(extractor([real_clips["robin.ogg"][:12000], real_clips["trumpet.ogg"][:70000]], sampling_rate=16000))
    assert max_abs_difference(model, onnx_model, features) <= 1e-4


@pytest.mark.slow  # ONNX export
def test_hear_graph_refuses_clips_beyond_its_position_table(hear_onnx, real_clips):
    _, extractor, onnx_model = hear_onnx
    clip = np.concatenate([real_clips["speech_female.ogg"]] * 3)[: 16000 * 11]  # 1101 frames > 2 * 500
    with pytest.raises(ValueError, match="at most 1000"):
        onnx_model(**extractor(clip, sampling_rate=16000))
