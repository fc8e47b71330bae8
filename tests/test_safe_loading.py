"""Weights travel as safetensors; a pickle that carries a payload is refused, never executed: by the Hub publishing\npath, the HEAR teacher loader and the original-checkpoint converter."""
import pickle

import pytest
import torch
from safetensors.torch import load_file

from _helpers import TINY_CR_AUDIOMAE
from hf_audio_cr import AudioMAEFeatureExtractor, CRAudioMAEConfig, CRAudioMAEForAudioClassification
from hf_audio_cr.hub import PushToHubArguments, build_hub_folder
from hf_audio_cr.training import load_teacher

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


def _run_folder(path, weights=None):
    """A training run's output folder with its weights as ``pytorch_model.bin`` (a plain state dict, or
    ``weights`` written by the caller) instead of safetensors, as older pipelines leave them."""
    torch.manual_seed(0)
    model = CRAudioMAEForAudioClassification(CRAudioMAEConfig(**TINY))
    model.config.save_pretrained(path)
    AudioMAEFeatureExtractor(max_length=128).save_pretrained(path)
    if weights is None:
        torch.save(model.state_dict(), path / "pytorch_model.bin")
    return model


def test_the_published_folder_carries_its_weights_as_safetensors_only(tmp_path):
    model = _run_folder(tmp_path / "run")
    folder = build_hub_folder(PushToHubArguments(model_dir=str(tmp_path / "run"), repo_id="me/tiny",
                                                 output_dir=str(tmp_path / "hub"), dry_run=True))
    weights = sorted(p.name for p in folder.iterdir() if p.suffix in {".safetensors", ".bin", ".pth", ".pt", ".ckpt"})
    assert weights == ["model.safetensors"]
    published = load_file(folder / "model.safetensors")
    assert all(torch.equal(published[k], v) for k, v in model.state_dict().items())


def test_publishing_or_distilling_from_a_pickle_with_a_payload_refuses_it(tmp_path):
    _run_folder(tmp_path / "run", weights=False)
    marker = tmp_path / "payload_ran"
    _write_malicious_pickle(tmp_path / "run" / "pytorch_model.bin", marker)
    with pytest.raises(Exception) as excinfo:  # scripts/push_to_hub.py --dry_run
        build_hub_folder(PushToHubArguments(model_dir=str(tmp_path / "run"), repo_id="me/tiny",
                                            output_dir=str(tmp_path / "hub"), dry_run=True))
    assert "weights_only" in str(excinfo.value) or "safetensors" in str(excinfo.value).lower()
    with pytest.raises(Exception):  # a HEAR tokenizer's teacher (configs/hear/tokenizer.yaml --teacher)
        load_teacher(tmp_path / "run")
    assert not marker.exists(), "the pickle payload was executed"


def test_checkpoint_converter_refuses_the_payload(tmp_path):
    # Original AudioMAE checkpoints are .pth pickles: the converter reads them with weights_only=True.
    from hf_audio_cr.models.cr_audiomae.convert_audiomae_checkpoint import load_original_state_dict

    marker = tmp_path / "payload_ran"
    _write_malicious_pickle(tmp_path / "finetuned.pth", marker)
    with pytest.raises(ValueError, match=r"finetuned\.pth.*weights_only=True"):
        load_original_state_dict(tmp_path / "finetuned.pth")
    assert not marker.exists(), "the pickle payload was executed"
