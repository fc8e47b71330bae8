"""Converting original AudioMAE / timm ViT weights: logits match the reference architecture."""
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import torch
from torch import nn

from hf_audio_cr import CRAudioMAEForAudioClassification
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


def test_pickle_with_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"model": {"x": Payload()}}, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match="weights_only=True"):
        load_original_state_dict(tmp_path / "evil.pth")
