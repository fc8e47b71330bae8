"""HEAR objectives against hand computations on small fixed tensors, and the teachers' time alignment."""
import math

import pytest
import torch
from transformers import ASTConfig, ASTModel

from _helpers import PRETRAINING_FILES, TINY_HEAR, TINY_TEACHER, load_file
from hf_audio_cr.models.cr_audiomae import CRAudioMAEConfig, CRAudioMAEModel
from hf_audio_cr.models.hear import HEARConfig, HEARFeatureExtractor, HEARForMaskedAcousticModeling
from hf_audio_cr.training.hear_losses import (
    codebook_diversity_loss,
    distillation_loss,
    hear_tokenizer_loss,
    masked_acoustic_modeling_loss,
    reconstruction_loss,
)
from hf_audio_cr.training.hear_teachers import ASTTeacher, CRAudioMAETeacher, interpolate_to_token_rate


def test_reconstruction_loss_averages_valid_frames_only():
    reconstruction = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [9.0, 9.0]]])
    target = torch.tensor([[[0.0, 2.0], [3.0, 2.0]], [[1.0, 1.0], [0.0, 0.0]]])
    mask = torch.tensor([[True, True], [True, False]])  # the last frame is padding: its error of 81 never counts
    # squared errors of the valid frames: (1, 0), (0, 4), (1, 1) -> 7 over 6 values
    assert reconstruction_loss(reconstruction, target, mask).item() == pytest.approx(7 / 6)


def test_distillation_loss_is_one_minus_cosine_over_valid_tokens():
    prediction = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [5.0, 5.0]]])
    teacher = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]])
    mask = torch.tensor([[True, True, False]])
    # cos = 1 and 1/sqrt(2); the third token is masked out
    expected = ((1 - 1.0) + (1 - 1 / math.sqrt(2))) / 2
    assert distillation_loss(prediction, teacher, mask).item() == pytest.approx(expected)


def test_diversity_loss_is_squared_deviation_of_mean_assignment_from_uniform():
    probabilities = torch.tensor([[[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]]])
    logits = probabilities.log() + 3.0  # softmax(log p + c) = p
    mask = torch.tensor([[True, True, False]])
    # mean over the two valid tokens: (0.4, 0.4, 0.1, 0.1); minus 1/4 -> (0.15, 0.15, -0.15, -0.15)
    assert codebook_diversity_loss(logits, mask).item() == pytest.approx(4 * 0.15**2)
    # uniform use of the codebook costs nothing; a collapse to one code costs (1 - 1/V)^2 + (V - 1) / V^2
    assert codebook_diversity_loss(torch.zeros(1, 3, 4), torch.ones(1, 3, dtype=torch.bool)).item() == pytest.approx(0.0)
    collapsed = torch.tensor([[[50.0, 0.0, 0.0, 0.0]] * 3])
    assert codebook_diversity_loss(collapsed, torch.ones(1, 3, dtype=torch.bool)).item() == pytest.approx(0.75, abs=1e-6)


def test_eq1_weights_the_three_terms_and_crops_frames_to_tokens():
    torch.manual_seed(0)
    code_logits = torch.randn(2, 3, 8)
    reconstruction = torch.randn(2, 6, 4)
    input_values = torch.randn(2, 7, 4)  # an odd trailing frame belongs to no token
    prediction, teacher = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    token_mask = torch.tensor([[True, True, True], [True, False, False]])
    teacher_mask = torch.tensor([[True, True, False], [True, True, True]])
    terms = hear_tokenizer_loss(code_logits, reconstruction, prediction, input_values, token_mask, teacher, teacher_mask)
    frame_mask = torch.tensor([[True] * 6, [True, True, False, False, False, False]])
    rec = ((reconstruction - input_values[:, :6]) ** 2)[frame_mask].mean()
    both = token_mask & teacher_mask
    dist = (1 - torch.nn.functional.cosine_similarity(prediction[both], teacher[both], dim=-1)).mean()
    p = code_logits[token_mask].softmax(-1).mean(0)
    div = ((p - 1 / 8) ** 2).sum()
    torch.testing.assert_close(terms.reconstruction_loss, rec)
    torch.testing.assert_close(terms.distillation_loss, dist)
    torch.testing.assert_close(terms.diversity_loss, div)
    torch.testing.assert_close(terms.loss, 0.3 * rec + 0.7 * dist + 0.1 * div)
    with pytest.raises(ValueError, match="teacher_features"):
        hear_tokenizer_loss(code_logits, reconstruction, prediction, input_values, token_mask)


def test_masked_acoustic_modeling_loss_is_cross_entropy_at_masked_tokens():
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 9.0]]])
    codes = torch.tensor([[0, 2, 1]])
    mask = torch.tensor([[True, True, False]])
    # -log softmax: token 0 -> log(e^2 + 2) - 2, token 1 -> log(e + 2) - 0
    expected = ((math.log(math.exp(2) + 2) - 2) + math.log(math.e + 2)) / 2
    assert masked_acoustic_modeling_loss(logits, codes, mask).item() == pytest.approx(expected)


def test_mam_loss_matches_the_models_own_loss_on_real_audio():
    torch.manual_seed(0)
    model = HEARForMaskedAcousticModeling(HEARConfig(**TINY_HEAR)).eval()
    fe = HEARFeatureExtractor()
    waves = [load_file(PRETRAINING_FILES[0])[:16000], load_file(PRETRAINING_FILES[5])[:8000]]  # padded batch
    features = fe(waves, sampling_rate=16000, return_power_spectrum=False)
    tokens = features["input_values"].shape[1] // 2
    codes = torch.randint(0, model.config.codebook_size, (2, tokens))
    token_mask = torch.arange(tokens)[None] < (features["attention_mask"].sum(1) // 2)[:, None]
    mask = (torch.rand(2, tokens) < 0.4) & token_mask
    with torch.no_grad():
        out = model(**features, mask_time_indices=mask, labels=codes)
    torch.testing.assert_close(masked_acoustic_modeling_loss(out.logits, codes, mask), out.loss)


def test_interpolation_to_token_rate_by_hand():
    # teacher frames 0, 10, 20, ... centred every 0.1 s from 0.0875 s (AST's 16-frame patches every 10 frames)
    features = (10.0 * torch.arange(6.0))[None, :, None]
    out = interpolate_to_token_rate(features, 0.1, 0.0875, num_tokens=30, valid_frames=torch.tensor([4]))
    centres = 0.005 + 0.02 * torch.arange(30.0)
    expected = (10.0 * ((centres - 0.0875) / 0.1)).clamp(0.0, 30.0)  # linear in time, held at frames 0 and 3
    torch.testing.assert_close(out[0, :, 0], expected)
    # equal rate and offset (SSAST frame patches, 1:1 with tokens): the identity
    same = torch.randn(2, 7, 3)
    torch.testing.assert_close(interpolate_to_token_rate(same, 0.02, 0.005, 7), same)


@pytest.fixture(scope="module")
def real_waves():
    return [load_file(PRETRAINING_FILES[2])[:48000], load_file(PRETRAINING_FILES[5])]  # 3 s speech, 0.9 s digit


def test_ast_teacher_averages_frequency_rows_per_time_column(real_waves):
    torch.manual_seed(0)
    config = ASTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_length=200)
    teacher = ASTTeacher(ASTModel(config))
    inputs = teacher.prepare(real_waves)
    num_samples = torch.tensor([len(w) for w in real_waves])
    features, covered = teacher(inputs, num_samples, num_tokens=150)
    assert features.shape == (2, 150, 32)
    # the frame features are the patch grid (frequency-major in ASTPatchEmbeddings) averaged over frequency
    with torch.no_grad():
        hidden = teacher.model(**inputs).last_hidden_state[:, 2:]
    f_out, t_out = (128 - 16) // 10 + 1, (200 - 16) // 10 + 1
    torch.testing.assert_close(teacher.frame_features(**inputs), hidden.reshape(2, f_out, t_out, 32).mean(1))
    # 200 fbank frames = 2.015 s of the 3 s clip: tokens past that are left out; the 0.9 s clip is covered to its end
    assert covered[0].sum().item() == 101 and covered[1].sum().item() == 46  # centres 0.005 + 0.02 i < 0.911 s
    assert not features.requires_grad


def test_cr_audiomae_teacher_on_real_audio(real_waves):
    torch.manual_seed(0)
    teacher = CRAudioMAETeacher(CRAudioMAEModel(CRAudioMAEConfig(**TINY_TEACHER)))
    assert (teacher.frame_period, teacher.frame_offset) == pytest.approx((0.16, 0.0875))
    inputs = teacher.prepare(real_waves)
    features, covered = teacher(inputs, torch.tensor([len(w) for w in real_waves]), num_tokens=150)
    assert features.shape == (2, 150, 32) and torch.isfinite(features).all()
    with torch.no_grad():
        hidden = teacher.model(**inputs).last_hidden_state[:, 1:]
    grid = hidden.reshape(2, 8, 8, 32).mean(2)  # 8 time columns x 8 frequency rows, time-major
    torch.testing.assert_close(teacher.frame_features(**inputs), grid)
    # its 128-frame window sees 1.295 s: 65 tokens of the speech clip, the whole 0.911 s digit (46 tokens)
    assert covered[0].sum().item() == 65 and covered[1].sum().item() == 46
    # past the last real patch the features hold it (no extrapolation into padding)
    torch.testing.assert_close(features[1, 46:], features[1, 46:47].expand(104, -1))


def test_load_teacher_picks_the_adapter_from_a_folder(tmp_path):
    from transformers import ASTFeatureExtractor

    from hf_audio_cr.training.hear_teachers import load_teacher

    ASTModel(ASTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)).save_pretrained(tmp_path / "ast")
    ASTFeatureExtractor().save_pretrained(tmp_path / "ast")
    CRAudioMAEModel(CRAudioMAEConfig(**TINY_TEACHER)).save_pretrained(tmp_path / "cr")
    ast_teacher, cr_teacher = load_teacher(tmp_path / "ast"), load_teacher(tmp_path / "cr")
    assert isinstance(ast_teacher, ASTTeacher) and ast_teacher.hidden_size == 32 and ast_teacher.frame_period == pytest.approx(0.1)
    assert isinstance(cr_teacher, CRAudioMAETeacher) and cr_teacher.feature_extractor.max_length == 128
    HEARForMaskedAcousticModeling(HEARConfig(**TINY_HEAR)).save_pretrained(tmp_path / "hear")
    with pytest.raises(ValueError, match="no adapter for model_type 'hear'"):
        load_teacher(tmp_path / "hear")
