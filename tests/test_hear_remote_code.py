"""Saved HEAR folders: Auto classes in-process, remote code in a fresh interpreter that never imports
hf_audio_cr, and the audio-classification pipeline scoring a 30 s clip as a whole (six sliding windows)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import (
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForPreTraining,
    pipeline,
)

from hf_audio_cr.models.hear import (
    HEARConfig,
    HEARFeatureExtractor,
    HEARForAudioClassification,
    HEARForMaskedAcousticModeling,
    HEARModel,
    HEARTokenizerModel,
)

SR = 16000
LABELS = {0: "speech", 1: "bird", 2: "trumpet"}
# Small widths, the paper's 300-token windows: 30 s = 1500 tokens = 6 windows.
TINY = dict(
    hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2, spectrum_hidden_size=16,
    task_hidden_size=32, task_intermediate_size=64, task_num_attention_heads=2, classifier_hidden_size=16,
    id2label=LABELS, label2id={v: k for k, v in LABELS.items()},
    tokenizer_config=dict(hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=1,
                          codebook_size=12, decoder_hidden_size=16, decoder_intermediate_size=32,
                          decoder_num_attention_heads=2, decoder_num_hidden_layers=1, teacher_hidden_size=24),
)

FRESH_PROCESS = r"""
import json, sys
import numpy as np
from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification, pipeline

folder, tokenizer_folder, clip_path = sys.argv[1:4]
clf = pipeline("audio-classification", model=folder, trust_remote_code=True)
wave = np.load(clip_path)
scores = {row["label"]: row["score"] for row in clf(wave, top_k=3)}
frames = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=True)(wave, sampling_rate=16000)["input_values"].shape[1]
base = AutoModel.from_pretrained(folder, trust_remote_code=True)
tokenizer = AutoModel.from_pretrained(tokenizer_folder, trust_remote_code=True)
print(json.dumps({
    "scores": scores, "frames": frames, "pipeline_model": type(clf.model).__name__,
    "base": type(base).__name__, "tokenizer": type(tokenizer).__name__,
    "temperature": tokenizer.gumbel_temperature,
    "tokenizer_config": type(AutoConfig.from_pretrained(tokenizer_folder, trust_remote_code=True)).__name__,
    "imported_hf_audio_cr": any(name.split(".")[0] == "hf_audio_cr" for name in sys.modules),
}))
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory, real_clips):
    folder = tmp_path_factory.mktemp("hear")
    torch.manual_seed(0)
    model = HEARForAudioClassification(HEARConfig(**TINY)).eval()
    for module in model.modules():  # non-trivial BatchNorm statistics, so the head is tested as saved
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
    model.save_pretrained(folder / "classifier")
    HEARFeatureExtractor().save_pretrained(folder / "classifier")
    tokenizer = HEARTokenizerModel(model.config.tokenizer_config)
    tokenizer.anneal_gumbel_temperature(steps=1000)
    tokenizer.save_pretrained(folder / "tokenizer")
    wave = np.resize(real_clips["speech_female.ogg"], 30 * SR)  # 30 s of real speech
    np.save(folder / "clip.npy", wave)
    return folder, model, wave


def _probabilities(model, wave) -> torch.Tensor:
    with torch.no_grad():
        return model(**HEARFeatureExtractor()(wave, sampling_rate=SR)).logits[0].softmax(-1)


def test_auto_classes_in_process(saved):
    folder, model, wave = saved
    classifier = folder / "classifier"
    assert type(AutoModel.from_pretrained(classifier)) is HEARModel
    assert type(AutoModelForPreTraining.from_pretrained(classifier)) is HEARForMaskedAcousticModeling
    assert type(AutoFeatureExtractor.from_pretrained(classifier)) is HEARFeatureExtractor
    loaded = AutoModelForAudioClassification.from_pretrained(classifier).eval()
    assert type(loaded) is HEARForAudioClassification
    torch.testing.assert_close(_probabilities(loaded, wave[: 3 * SR]), _probabilities(model, wave[: 3 * SR]))
    assert type(AutoModel.from_pretrained(folder / "tokenizer")) is HEARTokenizerModel


def test_pipeline_scores_a_30_second_clip_as_a_whole(saved):
    folder, model, wave = saved
    scores = {row["label"]: row["score"] for row in pipeline("audio-classification", model=str(folder / "classifier"), trust_remote_code=True)(wave, top_k=3)}
    whole = _probabilities(model, wave)
    assert scores == pytest.approx({LABELS[i]: p for i, p in enumerate(whole.tolist())}, abs=1e-5)
    first_window = _probabilities(model, wave[: 6 * SR])
    assert not torch.allclose(whole, first_window, atol=1e-4)  # the clip was not cut to one window


@pytest.mark.slow  # fresh interpreter
def test_remote_code_in_a_fresh_interpreter(saved, tmp_path):
    folder, model, wave = saved
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(folder / "classifier"), str(folder / "tokenizer"), str(folder / "clip.npy")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["imported_hf_audio_cr"] is False
    assert (result["pipeline_model"], result["base"]) == ("HEARForAudioClassification", "HEARModel")
    assert (result["tokenizer"], result["tokenizer_config"]) == ("HEARTokenizerModel", "HEARTokenizerConfig")
    assert result["temperature"] == pytest.approx(2.0 * 0.999995**1000, abs=1e-6)
    assert result["frames"] == 3001  # 1500 tokens through six 300-token windows
    whole = _probabilities(model, wave)
    assert result["scores"] == pytest.approx({LABELS[i]: p for i, p in enumerate(whole.tolist())}, abs=1e-5)
