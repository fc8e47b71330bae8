"""Weights travel as safetensors; a pickle that carries a payload is refused, never executed."""
import pickle

import pytest

from _helpers import TINY_CR_AUDIOMAE
from hf_audio_cr import CRAudioMAEConfig, CRAudioMAEForAudioClassification

TINY = dict(TINY_CR_AUDIOMAE, num_labels=5)


class _Payload:
    """Unpickling this object opens (creates) ``marker`` for writing: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _write_malicious_pickle(path, marker):
    with open(path, "wb") as f:
        pickle.dump({"model.classifier.weight": _Payload(marker)}, f, protocol=2)


def test_save_pretrained_writes_only_safetensors(tmp_path):
    CRAudioMAEForAudioClassification(CRAudioMAEConfig(**TINY)).save_pretrained(tmp_path)
    weights = sorted(p.name for p in tmp_path.iterdir() if p.suffix in {".safetensors", ".bin", ".pth", ".pt", ".ckpt"})
    assert weights == ["model.safetensors"]


def test_from_pretrained_refuses_a_pickle_with_a_payload(tmp_path):
    CRAudioMAEConfig(**TINY).save_pretrained(tmp_path)
    marker = tmp_path / "payload_ran"
    _write_malicious_pickle(tmp_path / "pytorch_model.bin", marker)
    with pytest.raises(Exception) as excinfo:
        CRAudioMAEForAudioClassification.from_pretrained(tmp_path)
    assert not marker.exists(), "the pickle payload was executed"
    assert "weights_only" in str(excinfo.value) or "safetensors" in str(excinfo.value).lower()


def test_checkpoint_converter_refuses_the_payload(tmp_path):
    # Original AudioMAE checkpoints are .pth pickles: the converter reads them with weights_only=True.
    from hf_audio_cr.models.cr_audiomae.convert_audiomae_checkpoint import load_original_state_dict

    marker = tmp_path / "payload_ran"
    _write_malicious_pickle(tmp_path / "finetuned.pth", marker)
    with pytest.raises(ValueError, match=r"finetuned\.pth.*weights_only=True"):
        load_original_state_dict(tmp_path / "finetuned.pth")
    assert not marker.exists(), "the pickle payload was executed"
