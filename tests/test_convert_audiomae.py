"""Converting original AudioMAE / timm ViT weights: logits match the reference architecture."""
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import torch
from torch import nn

from hf_audio_cr import CRAudioMAEForAudioClassification, CRAudioMAEModel
from hf_audio_cr.models.cr_audiomae.convert_audiomae_checkpoint import load_original_state_dict

timm = pytest.importorskip("timm")  # in the test extras: a missing timm fails loudly at install, not here

ROOT = Path(__file__).resolve().parents[1]


def audiomae_reference(num_classes=7, depth=2, dim=48, heads=3):
    """timm's VisionTransformer with AudioMAE's fine-tuning settings (mean pooling, fc_norm, eps 1e-6)."""
    torch.manual_seed(0)
    model = timm.models.vision_transformer.VisionTransformer(
        img_size=(1024, 128), patch_size=16, in_chans=1, num_classes=num_classes, embed_dim=dim, depth=depth,
        num_heads=heads, mlp_ratio=4, qkv_bias=True, global_pool="avg", norm_layer=partial(nn.LayerNorm, eps=1e-6),
    )
    with torch.no_grad():  # random, non-trivial weights everywhere (timm zero-inits some)
        for p in model.parameters():
            p.normal_(0, 0.05)
    return model.eval()


def test_original_checkpoint_converts_with_matching_logits(tmp_path):
    reference = audiomae_reference()
    state = reference.state_dict()
    state["decoder_embed.weight"] = torch.zeros(4, 4)  # a pretrained file's decoder is reported, not loaded
    torch.save({"model": state, "epoch": 3}, tmp_path / "finetuned.pth")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/convert_audiomae_checkpoint.py"), str(tmp_path / "finetuned.pth"),
         str(tmp_path / "converted"), "--num-attention-heads", "3"],
        capture_output=True, text=True, check=True,
    )
    assert "unexpected keys (not used): ['decoder_embed.weight']" in result.stdout
    assert "missing keys (freshly initialised): none" in result.stdout
    assert (tmp_path / "converted" / "model.safetensors").is_file()
    model = CRAudioMAEForAudioClassification.from_pretrained(tmp_path / "converted").eval()
    assert model.config.num_labels == 7 and model.config.num_hidden_layers == 2
    torch.manual_seed(1)
    fbank = torch.randn(2, 1024, 128)
    with torch.no_grad():
        expected = reference(fbank.unsqueeze(1))
        got = model(fbank).logits
    assert (got - expected).abs().max().item() <= 1e-5
    # the stored position table is loaded as is, never regenerated, and stays frozen (AudioMAE never trains it)
    assert torch.equal(model.audiomae.embeddings.position_embeddings, state["pos_embed"])
    assert not model.audiomae.embeddings.position_embeddings.requires_grad


REFERENCE = ROOT / "tests" / "fixtures" / "reference"  # outputs of the original AudioMAE code, see AUDIOMAE_FIXTURES.md


def convert_with_the_script(checkpoint, output_dir, *flags):
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/convert_audiomae_checkpoint.py"), str(checkpoint), str(output_dir), *flags],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_original_finetune_checkpoint_gives_the_recorded_logits(tmp_path):
    # written by AudioMAE's own save_model: model, optimizer, epoch, scaler and args (an argparse.Namespace)
    from safetensors.torch import load_file

    stdout = convert_with_the_script(REFERENCE / "audiomae_small_finetune.pth", tmp_path / "converted", "--num-attention-heads", "4")
    assert "missing keys (freshly initialised): none" in stdout and "unexpected keys (not used): none" in stdout
    model = CRAudioMAEForAudioClassification.from_pretrained(tmp_path / "converted").eval()
    recorded = load_file(REFERENCE / "audiomae_small_finetune_io.safetensors")
    with torch.no_grad():
        out = model.audiomae(recorded["fbank"])
        logits = model.head(out.pooler_output)
    assert (out.pooler_output - recorded["pooled"]).abs().max().item() <= 1e-5
    assert (logits - recorded["logits"]).abs().max().item() <= 1e-5
    original = load_original_state_dict(REFERENCE / "audiomae_small_finetune.pth")
    table = model.audiomae.embeddings.position_embeddings
    assert torch.equal(table, original["pos_embed"]) and not table.requires_grad


def test_shorter_input_keeps_audiomae_time_columns_of_the_stored_table(tmp_path):
    # AudioMAE fine-tunes shorter clips (ESC-50: 512 frames) on the first time columns of its (freq, time) table
    from hf_audio_cr.models.cr_audiomae.convert_audiomae_checkpoint import convert_checkpoint
    from hf_audio_cr.models.cr_audiomae.modeling_cr_audiomae import sincos_position_embedding

    model, _ = convert_checkpoint(REFERENCE / "audiomae_small_finetune.pth", tmp_path / "short", num_attention_heads=4, max_length=512)
    stored = load_original_state_dict(REFERENCE / "audiomae_small_finetune.pth")["pos_embed"]
    table = model.audiomae.embeddings.position_embeddings
    kept = torch.cat([stored[:, :1], stored[:, 1:].reshape(1, 8, 64, 64)[:, :, :32].reshape(1, 256, 64)], dim=1)
    assert torch.equal(table, kept) and torch.equal(table, sincos_position_embedding(64, (32, 8)))


def test_original_mae_checkpoint_gives_the_recorded_encoder_tokens(tmp_path):
    from safetensors.torch import load_file

    from hf_audio_cr.models.cr_audiomae.convert_audiomae_checkpoint import convert_checkpoint

    _, report = convert_checkpoint(REFERENCE / "audiomae_small_pretrain.pth", tmp_path / "converted", num_attention_heads=4)
    assert {"decoder_pred.weight", "norm.weight", "mask_token"} <= set(report.unexpected_keys)  # decoder, final norm
    model = CRAudioMAEModel.from_pretrained(tmp_path / "converted").eval()
    original = load_original_state_dict(REFERENCE / "audiomae_small_pretrain.pth")
    fbank = load_file(REFERENCE / "audiomae_small_finetune_io.safetensors")["fbank"]
    recorded = load_file(REFERENCE / "audiomae_small_pretrain_io.safetensors")["encoder_tokens"]
    with torch.no_grad():
        tokens = model(fbank).last_hidden_state
    # forward_encoder ends with the MAE's own `norm`, which fine-tuning replaces by fc_norm over the mean
    tokens = torch.nn.functional.layer_norm(tokens, (tokens.shape[-1],), original["norm.weight"], original["norm.bias"], 1e-6)
    assert tokens.shape == recorded.shape == (2, 513, 64)
    assert (tokens - recorded).abs().max().item() <= 1e-5
    assert not model.embeddings.position_embeddings.requires_grad


@pytest.mark.parametrize("name", ["finetune_vit_base_patch16_audioset_1024x128",
                                  "pretrain_mae_vit_base_patch16_dec512d8b_decoder_mode1"])
def test_full_size_original_keys_map_onto_the_paper_model(name):
    import json

    from hf_audio_cr.models.cr_audiomae.convert_audiomae_checkpoint import config_from_state_dict, convert_state_dict

    listing = json.loads((REFERENCE / "audiomae_vit_b_keys.json").read_text())[name]
    original = {key: torch.empty(shape, device="meta") for key, shape, _ in listing["keys [name, shape, dtype]"]}
    config = config_from_state_dict(original)
    with torch.device("meta"):
        ours = CRAudioMAEForAudioClassification(config).state_dict()
    converted, unused = convert_state_dict(original, config)
    assert {k: tuple(v.shape) for k, v in converted.items()} == {k: tuple(ours[k].shape) for k in converted}
    assert all(k.startswith(("decoder_", "mask_token", "norm.")) for k in unused)
    if name.startswith("finetune"):  # every original tensor is used, every one of ours is filled
        assert unused == [] and set(converted) == set(ours) and len(converted) == listing["n_tensors"] == 152
        assert sum(v.numel() for v in original.values()) == listing["n_parameters"] == 86_053_391
    else:  # the encoder of the released MAE setup (Swin decoder): all but fc_norm and the head
        assert set(ours) - set(converted) == {"audiomae.fc_norm.weight", "audiomae.fc_norm.bias", "head.weight", "head.bias"}


def test_only_argparse_namespace_is_allowed_beyond_tensors(tmp_path):
    import argparse
    import pathlib

    class Payload:
        def __reduce__(self):
            return (open, (str(tmp_path / "payload_ran"), "w"))

    weights = {"cls_token": torch.zeros(1, 1, 4)}
    torch.save({"model": weights, "args": argparse.Namespace(lr=1e-3, model="vit_base_patch16")}, tmp_path / "ok.pth")
    assert torch.equal(load_original_state_dict(tmp_path / "ok.pth")["cls_token"], weights["cls_token"])
    # code inside the allowed class is still refused, and so is any other class
    torch.save({"model": weights, "args": argparse.Namespace(hook=Payload())}, tmp_path / "namespace_payload.pth")
    torch.save({"model": weights, "args": argparse.Namespace(output_dir=pathlib.PurePosixPath("out"))}, tmp_path / "path.pth")
    for name in ("namespace_payload.pth", "path.pth"):
        with pytest.raises(ValueError, match=rf"{name}: refused to load.*weights_only=True"):
            load_original_state_dict(tmp_path / name)
    assert not (tmp_path / "payload_ran").exists(), "the pickle payload was executed"
    assert argparse.Namespace not in torch.serialization.get_safe_globals()  # allowed for our load only


def test_pickle_with_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"model": {"x": Payload()}}, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match="weights_only=True"):
        load_original_state_dict(tmp_path / "evil.pth")


FORK_LABEL_FILES = {  # preset -> the fork's CSV whose rows the fixture records (independently of our presets)
    "modified_audiomae_556": "class_label_indices556.csv [index, mid, display_name]",
    "modified_audiomae_556_reformatted": "class_labels_indices556_reformatted.csv [index, mid, display_name]",
}


@pytest.fixture(scope="module")
def marked_556_checkpoint(tmp_path_factory):
    """The original fine-tune checkpoint with a 556-row head whose row j is marked: bias j, weights ~ j."""
    import argparse

    with torch.serialization.safe_globals([argparse.Namespace]):
        checkpoint = torch.load(REFERENCE / "audiomae_small_finetune.pth", weights_only=True)
    generator = torch.Generator().manual_seed(0)
    checkpoint["model"]["head.weight"] = torch.randn(556, 64, generator=generator) * 0.01 + torch.arange(556.0)[:, None] / 556
    checkpoint["model"]["head.bias"] = torch.arange(556.0)
    checkpoint["args"].nb_classes = 556
    path = tmp_path_factory.mktemp("fork") / "checkpoint-fork556.pth"
    torch.save(checkpoint, path)
    return path, checkpoint["model"]


def _fork_rows(preset):
    import json

    return json.loads((REFERENCE / "modified_audiomae_556_mids.json").read_text())[FORK_LABEL_FILES[preset]]


@pytest.mark.parametrize("preset", sorted(FORK_LABEL_FILES))
def test_fork_556_head_rows_are_put_in_the_package_order(marked_556_checkpoint, tmp_path, preset):
    from safetensors.torch import load_file

    from hf_audio_cr.data import audioset_label_set
    from hf_audio_cr.models.cr_audiomae.convert_audiomae_checkpoint import convert_checkpoint

    path, original = marked_556_checkpoint
    _, report = convert_checkpoint(path, tmp_path / "converted", label_order=preset, num_attention_heads=4)
    assert report.label_set == "556" and report.missing_keys == report.unexpected_keys == []
    model = CRAudioMAEForAudioClassification.from_pretrained(tmp_path / "converted").eval()
    fork_rows = _fork_rows(preset)  # [index, mid, display_name] in the fork file's order
    source_row = {mid: index for index, mid, _ in fork_rows}
    fork_name = {mid: name for _, mid, name in fork_rows}
    ours = audioset_label_set("556")
    assert model.config.num_labels == 556
    assert [model.config.id2label[i] for i in range(556)] == [fork_name[mid] for mid in ours]
    assert model.head.bias.tolist() == [float(source_row[mid]) for mid in ours]  # each row's mark = its fork index
    assert model.config.id2label[0] == "Speech" and model.head.bias[0].item() == source_row["/m/09x0r"]
    # logits of the converted model = the fork head's logits, column by MID
    recorded = load_file(REFERENCE / "audiomae_small_finetune_io.safetensors")
    with torch.no_grad():
        logits = model(recorded["fbank"]).logits
    fork_logits = recorded["pooled"] @ original["head.weight"].T + original["head.bias"]
    order = torch.tensor([source_row[mid] for mid in ours])
    # logits near 400: one float32 step there is 3e-5, so the bound is relative (two matmul kernels, one CPU)
    torch.testing.assert_close(logits, fork_logits[:, order], rtol=1e-6, atol=1e-5)


def test_head_order_from_a_label_csv_and_clear_errors(marked_556_checkpoint, tmp_path):
    import csv

    from hf_audio_cr.models.cr_audiomae.convert_audiomae_checkpoint import convert_checkpoint

    path, _ = marked_556_checkpoint
    rows = _fork_rows("modified_audiomae_556_reformatted")
    with open(tmp_path / "class_labels_indices556_reformatted.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "mid", "display_name"])
        writer.writerows(rows)
    stdout = convert_with_the_script(path, tmp_path / "a", "--num-attention-heads", "4",
                                     "--label-order", str(tmp_path / "class_labels_indices556_reformatted.csv"))
    assert "head rows in the package's 556-label order" in stdout
    from_csv = CRAudioMAEForAudioClassification.from_pretrained(tmp_path / "a")
    from_preset, _ = convert_checkpoint(path, tmp_path / "b", label_order="modified_audiomae_556_reformatted", num_attention_heads=4)
    assert torch.equal(from_csv.head.bias, from_preset.head.bias) and from_csv.config.id2label == from_preset.config.id2label
    with pytest.raises(ValueError, match="556 rows.*label_order='modified_audiomae_556'"):
        convert_checkpoint(path, tmp_path / "c", num_attention_heads=4)  # no silent LABEL_i / wrong order
    with pytest.raises(ValueError, match="lists 527 labels but the checkpoint's head has 556 rows"):
        convert_checkpoint(path, tmp_path / "d", label_order="audioset_527", num_attention_heads=4)
    with pytest.raises(ValueError, match="'missing.csv' is neither a preset"):
        convert_checkpoint(path, tmp_path / "e", label_order="missing.csv", num_attention_heads=4)
