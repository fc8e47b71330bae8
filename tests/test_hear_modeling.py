"""HEAR acoustic model, masked acoustic modeling and classifier: sizes and compute of the paper configuration,
sliding-window equivalence, padding invariance, masking, losses and the ablation switches."""
import math

import pytest
import torch

from hf_audio_cr.benchmark import count_flops  # counts CPU attention too (torch counts CUDA kernels only)
from hf_audio_cr.models.hear import (
    HEARConfig,
    HEARFeatureExtractor,
    HEARForAudioClassification,
    HEARForMaskedAcousticModeling,
    HEARModel,
    HEARTokenizerModel,
    compute_mask_time_indices,
)
from hf_audio_cr.models.hear.modeling_hear_layers import HEARRelativePositionAttention

SR = 16000
# Small widths and 20-token windows (0.4 s, stride 15 = 0.3 s) so real clips of a second use several windows.
TINY = dict(
    hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2, window_length=20,
    window_overlap=5, spectrum_hidden_size=16, task_hidden_size=32, task_intermediate_size=64,
    task_num_attention_heads=2, classifier_hidden_size=16, num_labels=3, hidden_dropout=0.0, attention_dropout=0.0,
    tokenizer_config=dict(hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=1,
                          codebook_size=12, decoder_hidden_size=16, decoder_intermediate_size=32,
                          decoder_num_attention_heads=2, decoder_num_hidden_layers=1, teacher_hidden_size=24),
)


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def fe():
    return HEARFeatureExtractor()


@pytest.fixture(scope="module")
def tiny_classifier():
    torch.manual_seed(0)
    return HEARForAudioClassification(HEARConfig(**TINY)).eval()


def test_paper_configuration_sizes_and_compute(real_clips, fe):
    """Table III: 12 M acoustic + 2 M task + 1 M head = 15 M parameters, 9.47 G multiply-adds for 10 s."""
    model = HEARForAudioClassification(HEARConfig(num_labels=50)).eval()  # ESC-50 head
    acoustic, task = count(model.hear), count(model.task_model)
    head = count(model.spectrum_fusion) + count(model.classifier)  # gating fusion + pooling MLP
    assert 11.0e6 < acoustic < 12.5e6
    assert 1.5e6 < task < 2.5e6
    assert 0.75e6 < head < 1.5e6
    assert abs(count(model) - 15e6) < 0.05 * 15e6
    assert count(HEARForMaskedAcousticModeling(model.config).token_head) == 384 * 1024 + 1024
    assert 2.0e6 < count(HEARTokenizerModel(model.config.tokenizer_config)) < 2.5e6

    features = fe(real_clips["speech_female.ogg"][: 10 * SR], sampling_rate=SR)
    assert features["input_values"].shape[1] == 1001  # 500 tokens -> 2 windows of 300
    macs = count_flops(model, features) / 2  # FlopCounterMode counts 2 FLOPs per multiply-add
    assert abs(macs - 9.47e9) < 0.10 * 9.47e9, macs


def _direct(model: HEARModel, tokens: torch.Tensor, valid: int) -> torch.Tensor:
    """The encoder on one token span, no windowing."""
    mask = torch.arange(tokens.shape[1])[None, :] < valid
    return model.encoder(tokens, mask)[0][0]


def test_one_window_clip_same_through_windows_and_direct(tiny_classifier, real_clips, fe):
    model = tiny_classifier.hear
    clip = real_clips["trumpet.ogg"][: 39 * 160]  # 40 frames = 20 tokens = exactly one window
    longer = real_clips["robin.ogg"][: SR]  # 50 tokens: the batch goes through the windowed path
    batch = fe([clip, longer], sampling_rate=SR)
    with torch.no_grad():
        windowed = model(batch["input_values"], batch["attention_mask"]).last_hidden_state[0, :20]
        tokens = model.front_end(fe(clip, sampling_rate=SR)["input_values"])
        assert tokens.shape[1] == model.config.window_length
        torch.testing.assert_close(windowed, _direct(model, tokens, 20), atol=1e-5, rtol=1e-5)


def test_long_clip_is_a_cross_fade_of_window_outputs(tiny_classifier, real_clips, fe):
    model, config = tiny_classifier.hear, tiny_classifier.config
    size, overlap, stride = config.window_length, config.window_overlap, config.window_stride
    features = fe(real_clips["speech_female.ogg"][: int(1.05 * SR)], sampling_rate=SR)  # 53 tokens, 4 windows
    with torch.no_grad():
        out = model(**{k: features[k] for k in ("input_values", "attention_mask")}).last_hidden_state[0]
        tokens = model.front_end(features["input_values"])
    length = tokens.shape[1]
    assert out.shape[0] == length == 53
    starts = list(range(0, length - overlap, stride))
    assert starts == [0, 15, 30, 45]
    with torch.no_grad():
        windows = [_direct(model, tokens[:, s : s + size], min(size, length - s)) for s in starts]
    # the reference code's ramp: raised cosine at linspace(0, 1, overlap), floored at 1e-3
    rising = [max(0.5 - 0.5 * math.cos(math.pi * m / (overlap - 1)), 1e-3) for m in range(overlap)]
    for t in range(length):
        covering = [(k, t - s) for k, s in enumerate(starts) if 0 <= t - s < size]
        if len(covering) == 1:
            (k, i), = covering
            torch.testing.assert_close(out[t], windows[k][i], atol=1e-5, rtol=1e-5)
        else:  # two windows share it: weight of the later one rises along the raised cosine
            (a, i), (b, j) = covering
            weight = rising[j] / (rising[j] + rising[overlap - 1 - j])  # normalised by the weight sum
            assert 0 < weight < 1
            torch.testing.assert_close(out[t], (1 - weight) * windows[a][i] + weight * windows[b][j], atol=1e-5, rtol=1e-5)
            assert not torch.allclose(windows[a][i], windows[b][j], atol=1e-3)  # the merge is not trivial


def test_padding_does_not_change_a_clip(tiny_classifier, real_clips, fe):
    """A 0.25 s clip alone (direct path) vs. padded in a batch with a 5 s clip (18 windows)."""
    short, long = real_clips["robin.ogg"][: SR // 4], real_clips["trumpet.ogg"]
    alone, batch = fe(short, sampling_rate=SR), fe([long, short], sampling_rate=SR)
    with torch.no_grad():
        a = tiny_classifier(**alone, output_hidden_states=True)
        b = tiny_classifier(**batch, output_hidden_states=True)
    tokens = a.hidden_states[-1].shape[1]
    torch.testing.assert_close(b.hidden_states[-1][1, :tokens], a.hidden_states[-1][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(b.logits[1], a.logits[0], atol=1e-5, rtol=1e-5)


def test_mask_time_indices_zero_tokens_after_front_end(tiny_classifier, real_clips, fe):
    model = tiny_classifier.hear
    features = fe(real_clips["robin.ogg"][: SR // 4], sampling_rate=SR)
    with torch.no_grad():
        plain = model(**{k: features[k] for k in ("input_values", "attention_mask")})
        mask = compute_mask_time_indices(plain.token_attention_mask, 0.4, torch.Generator().manual_seed(0))
        assert 0 < mask.sum() < mask.numel()
        masked = model(features["input_values"], features["attention_mask"], mask_time_indices=mask)
        tokens = model.front_end(features["input_values"]).masked_fill(mask[..., None], 0.0)
        expected = _direct(model, tokens, tokens.shape[1])
    torch.testing.assert_close(masked.last_hidden_state[0], expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(masked.last_hidden_state, plain.last_hidden_state, atol=1e-3)
    with pytest.raises(ValueError, match="mask_time_indices must have shape"):
        model(features["input_values"], mask_time_indices=mask[:, :-1])


def test_masked_acoustic_modeling_loss_counts_masked_positions_only(real_clips, fe):
    torch.manual_seed(0)
    model = HEARForMaskedAcousticModeling(HEARConfig(**TINY))
    features = fe(real_clips["speech_female.ogg"][: SR // 2], sampling_rate=SR)
    inputs = {k: features[k] for k in ("input_values", "attention_mask")}
    tokens = features["input_values"].shape[1] // 2
    mask = torch.zeros(1, tokens, dtype=torch.bool)
    mask[0, ::3] = True
    labels = torch.randint(0, 12, (1, tokens))
    out = model(**inputs, mask_time_indices=mask, labels=labels)
    assert out.logits.shape == (1, tokens, 12)
    expected = torch.nn.functional.cross_entropy(out.logits[mask], labels[mask])
    torch.testing.assert_close(out.loss, expected)
    changed = labels.clone()
    changed[~mask] = (labels[~mask] + 1) % 12  # targets outside the mask do not matter
    torch.testing.assert_close(model(**inputs, mask_time_indices=mask, labels=changed).loss, out.loss)
    out.loss.backward()
    assert model.hear.front_end.conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("value_side", [True, False])
@pytest.mark.parametrize("length", [5, 9])  # within the 2 x 6 table, and clipped distances
def test_relative_attention_matches_shaw_formula(value_side, length):
    """Both value-side settings (explicit softmax / SDPA with the key-side bias as attn_mask), both layouts."""
    torch.manual_seed(0)
    attention = HEARRelativePositionAttention(16, 2, 6, relative_value_embeddings=value_side, attention_dropout=0.0)
    torch.nn.init.normal_(attention.content_bias)
    torch.nn.init.normal_(attention.position_bias)
    x = torch.randn(2, length, 16)
    mask = torch.arange(length)[None, :] < torch.tensor([length, 3])[:, None]
    out = attention(x, mask)

    def heads(t):
        return t.view(2, length, 2, 8).transpose(1, 2)

    q, k, v = heads(attention.query(x)), heads(attention.key(x)), heads(attention.value(x))
    distance = (torch.arange(length)[None, :] - torch.arange(length)[:, None]).clamp(-6, 5) + 6
    scores = (q + attention.content_bias[:, None]) @ k.transpose(-1, -2)
    scores = scores + torch.einsum("bhid,ijd->bhij", q + attention.position_bias[:, None], attention.relative_key.weight[distance])
    probs = (scores / math.sqrt(8)).masked_fill(~mask[:, None, None, :], float("-inf")).softmax(-1)
    attended = probs @ v
    if value_side:
        attended = attended + torch.einsum("bhij,ijd->bhid", probs, attention.relative_value.weight[distance])
    expected = attention.output(attended.transpose(1, 2).reshape(2, length, 16))
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_classification_losses_and_problem_type(tiny_classifier, real_clips, fe):
    features = fe([real_clips["robin.ogg"], real_clips["trumpet.ogg"]], sampling_rate=SR)
    out = tiny_classifier(**features, labels=torch.tensor([2, 0]))
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, torch.tensor([2, 0])))
    multi = HEARForAudioClassification(HEARConfig(**TINY, problem_type="multi_label_classification")).eval()
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    out = multi(**features, labels=targets)
    torch.testing.assert_close(out.loss, torch.nn.functional.binary_cross_entropy_with_logits(out.logits, targets))


def test_transfer_and_without_spectrum_ablations(real_clips, fe):
    features = fe([real_clips["robin.ogg"], real_clips["trumpet.ogg"]], sampling_rate=SR)
    frozen = HEARForAudioClassification(HEARConfig(**TINY, freeze_acoustic_model=True)).train()
    assert not frozen.hear.training and frozen.task_model.training
    frozen(**features, labels=torch.tensor([0, 1])).loss.backward()
    assert all(p.grad is None for p in frozen.hear.parameters())
    assert frozen.task_model.layers[0].qkv.weight.grad.abs().sum() > 0

    no_spectrum = HEARForAudioClassification(HEARConfig(**TINY, use_power_spectrum=False)).eval()
    assert no_spectrum.spectrum_fusion is None
    logits = no_spectrum(features["input_values"], attention_mask=features["attention_mask"]).logits
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()
    with pytest.raises(ValueError, match="power_spectrum"):
        HEARForAudioClassification(HEARConfig(**TINY)).eval()(features["input_values"])


def test_task_model_takes_clips_longer_than_its_position_table(real_clips, fe):
    model = HEARForAudioClassification(HEARConfig(**{**TINY, "task_max_position_embeddings": 16})).eval()
    with torch.no_grad():
        logits = model(**fe(real_clips["robin.ogg"], sampling_rate=SR)).logits  # 135 tokens > 16 positions
    assert torch.isfinite(logits).all()


def test_input_errors_are_clear(tiny_classifier):
    with pytest.raises(ValueError, match=r"input_values must have shape \(batch, frames, 128\)"):
        tiny_classifier.hear(torch.zeros(1, 128, 100))
    with pytest.raises(ValueError, match="attention_mask must have shape"):
        tiny_classifier.hear(torch.zeros(1, 10, 128), attention_mask=torch.ones(1, 9))


def test_initialisation_follows_the_reference_code():
    """Where the paper is silent: Xavier-uniform q/k/v (relative layers and the task layer's stacked q/k/v, as
    nn.MultiheadAttention), N(0, 1) relative tables, zero query biases and zero task positions."""
    torch.manual_seed(0)
    model = HEARForAudioClassification(HEARConfig(num_labels=50))  # the paper's sizes: 384 wide, 300-token tables
    attention = model.hear.encoder.layers[0].attention
    bound = math.sqrt(6 / (384 + 384))
    for projection in (attention.query, attention.key, attention.value):
        weight = projection.weight
        assert weight.abs().max() <= bound and abs(weight.std().item() - bound / math.sqrt(3)) < 0.02 * bound
    assert attention.output.weight.std().item() < 0.025  # the others keep initializer_range (0.02)
    for table in (attention.relative_key.weight, attention.relative_value.weight):
        assert table.shape == (600, 96) and abs(table.std().item() - 1.0) < 0.02 and abs(table.mean().item()) < 0.02
    assert not attention.content_bias.any() and not attention.position_bias.any()
    assert not model.task_model.position_embeddings.any()
    qkv = model.task_model.layers[0].qkv.weight  # (3 x 384, 384): fan_in 384, fan_out 1152
    task_bound = math.sqrt(6 / (384 + 3 * 384))
    assert qkv.abs().max() <= task_bound and abs(qkv.std().item() - task_bound / math.sqrt(3)) < 0.02 * task_bound
    tokenizer = HEARTokenizerModel(model.config.tokenizer_config)
    decoder_table = tokenizer.decoder.encoder.layers[0].attention.relative_key.weight
    assert abs(decoder_table.std().item() - 1.0) < 0.03
    assert abs(tokenizer.quantizer.codebook.std().item() - 1.0) < 0.03  # torch.randn in the reference
