"""HEAR acoustic tokenizer: outputs for the three stage-1 losses, Gumbel straight-through codes, and a
temperature that survives save/load."""
import torch

from hf_audio_cr.models.hear import HEARFeatureExtractor, HEARTokenizerConfig, HEARTokenizerModel

SR = 16000
TINY = dict(
    hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=2, codebook_size=12,
    code_vector_size=4, decoder_hidden_size=16, decoder_intermediate_size=32, decoder_num_attention_heads=2,
    decoder_num_hidden_layers=1, teacher_hidden_size=24,
)


def test_paper_defaults():
    config = HEARTokenizerConfig()
    assert (config.hidden_size, config.intermediate_size, config.num_attention_heads, config.num_hidden_layers) == (128, 512, 4, 6)
    assert (config.decoder_hidden_size, config.decoder_num_hidden_layers, config.teacher_hidden_size) == (128, 2, 768)
    assert (config.codebook_size, config.code_vector_size) == (1024, 32)
    assert (config.gumbel_init_temperature, config.gumbel_min_temperature, config.gumbel_temperature_decay) == (2.0, 0.5, 0.999995)


def test_outputs_for_the_tokenizer_losses(real_clips):
    torch.manual_seed(0)
    model = HEARTokenizerModel(HEARTokenizerConfig(**TINY)).eval()
    fe = HEARFeatureExtractor(return_power_spectrum=False)
    robin, trumpet = real_clips["robin.ogg"], real_clips["trumpet.ogg"]
    batch = fe([robin, trumpet], sampling_rate=SR)
    with torch.no_grad():
        out = model(**batch)
        alone = model(**fe(robin, sampling_rate=SR))
    frames = batch["input_values"].shape[1]
    tokens = frames // 2
    assert out.code_logits.shape == (2, tokens, 12)
    assert out.reconstruction.shape == (2, 2 * tokens, 128)  # back at the input frame rate
    assert out.teacher_prediction.shape == (2, tokens, 24)
    assert out.token_attention_mask[0].sum() == (1 + len(robin) // 160) // 2 and out.token_attention_mask[1].all()
    torch.testing.assert_close(out.codes, out.code_logits.argmax(-1))
    codes, mask = model.tokenize(**batch)
    assert torch.equal(codes, out.codes) and torch.equal(mask, out.token_attention_mask)
    n = alone.codes.shape[1]  # padding does not change the clip's codes
    assert torch.equal(out.codes[0, :n], alone.codes[0])


def test_gumbel_codes_train_straight_through_and_temperature_is_saved(tmp_path, real_clips):
    torch.manual_seed(0)
    model = HEARTokenizerModel(HEARTokenizerConfig(**TINY)).train()
    features = HEARFeatureExtractor(return_power_spectrum=False)(real_clips["robin.ogg"], sampling_rate=SR)
    out = model(**features)
    out.reconstruction.pow(2).mean().backward()  # hard one-hot forward, gradient reaches the encoder
    assert model.code_head.weight.grad.abs().sum() > 0
    assert model.quantizer.codebook.grad.abs().sum() > 0

    assert model.gumbel_temperature == 2.0
    model.anneal_gumbel_temperature(steps=100_000)
    expected = 2.0 * 0.999995**100_000
    assert abs(model.gumbel_temperature - expected) < 1e-5
    model.save_pretrained(tmp_path)
    reloaded = HEARTokenizerModel.from_pretrained(tmp_path)
    assert abs(reloaded.gumbel_temperature - expected) < 1e-5  # resumed runs continue the schedule
    reloaded.anneal_gumbel_temperature(steps=10_000_000)
    assert reloaded.gumbel_temperature == 0.5  # floor
