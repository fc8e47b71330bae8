"""CR-AudioMAE models: size of the paper configuration, heads, patch drop, windows, checkpointing."""
import pytest
import torch

from hf_audio_cr import CRAudioMAEConfig, CRAudioMAEForAudioClassification, CRAudioMAEModel
from hf_audio_cr.data import audioset_id2label


def tiny_config(**kwargs):
    return CRAudioMAEConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_length=128, **kwargs
    )


def test_paper_configuration_size_counted_without_running():
    config = CRAudioMAEConfig()
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.intermediate_size) == (768, 12, 12, 3072)
    assert config.patch_grid == (64, 8) and config.num_labels == 527
    assert config.problem_type == "multi_label_classification" and config.layer_norm_eps == 1e-6
    assert config.id2label[0] == "Speech" and config.id2label[526] == "Field recording"
    assert config.id2label == audioset_id2label("527")  # the data package's names for the standard label set
    with torch.device("meta"):
        model = CRAudioMAEForAudioClassification(config)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert 86e6 <= total <= 89e6  # ViT-B/16 on 512 patches with a 527-way head: 86.05 M
    assert total - trainable == 513 * 768
    # the position table is a stored weight, not trained: 512 patches + cls
    assert model.audiomae.embeddings.position_embeddings.shape == (1, 513, 768)
    assert not model.audiomae.embeddings.position_embeddings.requires_grad


def test_multi_label_loss_is_mean_bce_and_single_label_is_cross_entropy():
    torch.manual_seed(0)
    x = torch.randn(3, 128, 128)
    multi = CRAudioMAEForAudioClassification(tiny_config(num_labels=5)).eval()
    targets = torch.randint(0, 2, (3, 5)).float()
    out = multi(x, labels=targets)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(out.logits, targets)
    assert out.logits.shape == (3, 5) and torch.allclose(out.loss, expected)
    single = CRAudioMAEForAudioClassification(tiny_config(num_labels=5, problem_type="single_label_classification")).eval()
    classes = torch.tensor([0, 4, 2])
    out = single(x, labels=classes)
    assert torch.allclose(out.loss, torch.nn.functional.cross_entropy(out.logits, classes))
    with pytest.raises(ValueError, match="multi-label targets must have shape"):
        multi(x, labels=torch.zeros(3, 7))


def test_patch_drop_only_in_training_and_drawn_per_sample():
    model = CRAudioMAEModel(tiny_config(drop_path_rate=0.0))
    x = torch.randn(1, 128, 128).repeat(4, 1, 1)  # four copies of one input
    model.train()
    tokens = model(x).last_hidden_state
    grid_t, grid_f = model.config.patch_grid  # 8 x 8
    assert tokens.shape[1] == 1 + int(grid_t * 0.8) * int(grid_f * 0.8)  # 6 time columns x 6 freq rows kept
    pooled = model(x).pooler_output
    assert not torch.allclose(pooled[0], pooled[1])  # each copy got its own mask
    model.eval()
    out = model(x, output_hidden_states=True)
    assert out.last_hidden_state.shape[1] == 1 + grid_t * grid_f
    assert torch.allclose(out.pooler_output[0], out.pooler_output[1], atol=1e-6)
    assert len(out.hidden_states) == 1 + model.config.num_hidden_layers


def test_windowed_input_scores_each_window_and_takes_the_max():
    torch.manual_seed(0)
    model = CRAudioMAEForAudioClassification(tiny_config(num_labels=4, window_batch_size=2)).eval()
    windows = torch.randn(2, 3, 128, 128)
    mask = torch.tensor([[True, True, True], [True, False, False]])
    with torch.no_grad():
        logits = model(windows, window_mask=mask).logits
        first = model(windows[0]).logits.amax(dim=0)
        second = model(windows[1, :1]).logits[0]
    assert torch.allclose(logits[0], first, atol=1e-5)
    assert torch.allclose(logits[1], second, atol=1e-5)  # padding windows never win the max


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    config = tiny_config(num_labels=3, drop_path_rate=0.0, patch_drop_time=0.0, patch_drop_freq=0.0)
    model = CRAudioMAEForAudioClassification(config)
    x, y = torch.randn(2, 128, 128), torch.ones(2, 3)
    model.train()
    model(x, labels=y).loss.backward()
    plain = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    model.activation_checkpointing_enable()
    assert model.audiomae.layers[0].gradient_checkpointing
    model(x, labels=y).loss.backward()
    checkpointed = [p.grad for p in model.parameters() if p.grad is not None]
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain, checkpointed))


def test_wrong_input_shape_names_the_feature_extractor():
    model = CRAudioMAEForAudioClassification(tiny_config())
    with pytest.raises(ValueError, match="AudioMAEFeatureExtractor"):
        model(torch.randn(2, 100, 128))


@pytest.mark.parametrize("checkpoint", ["audiomae_small_finetune.pth", "audiomae_small_pretrain.pth"])
def test_from_scratch_position_table_is_the_one_audiomae_pretraining_builds(checkpoint):
    # AudioMAE builds it on its (freq, time) = (8, 64) patch_hw grid, transposed relative to the token grid
    from hf_audio_cr.models.cr_audiomae.convert_audiomae_checkpoint import load_original_state_dict

    stored = load_original_state_dict(f"tests/fixtures/reference/{checkpoint}")["pos_embed"]  # width 64
    model = CRAudioMAEModel(CRAudioMAEConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64))
    assert torch.equal(model.embeddings.position_embeddings, stored)
