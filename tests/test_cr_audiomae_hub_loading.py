"""Saved CR-AudioMAE folders: Auto classes, remote code in a fresh interpreter, and the pipeline."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification, pipeline

from hf_audio_cr import AudioMAEFeatureExtractor, CRAudioMAEConfig, CRAudioMAEForAudioClassification, CRAudioMAEModel


@pytest.fixture(scope="module")
def saved_folder(tmp_path_factory):
    """A small multi-label model on the full 10.24 s input, saved as users publish it."""
    torch.manual_seed(0)
    config = CRAudioMAEConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    model = CRAudioMAEForAudioClassification(config).eval()
    folder = tmp_path_factory.mktemp("cr_audiomae")
    model.save_pretrained(folder)
    AudioMAEFeatureExtractor().save_pretrained(folder)
    return folder, model


def test_folder_carries_safetensors_code_and_auto_map(saved_folder):
    folder, _ = saved_folder
    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "modeling_cr_audiomae.py",
            "configuration_cr_audiomae.py", "feature_extraction_cr_audiomae.py"} <= names
    assert not any(n.endswith((".bin", ".pth", ".pt")) for n in names)
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_cr_audiomae.CRAudioMAEConfig",
        "AutoModel": "modeling_cr_audiomae.CRAudioMAEModel",
        "AutoModelForAudioClassification": "modeling_cr_audiomae.CRAudioMAEForAudioClassification",
    }
    assert json.loads((folder / "preprocessor_config.json").read_text())["auto_map"] == {
        "AutoFeatureExtractor": "feature_extraction_cr_audiomae.AudioMAEFeatureExtractor"
    }


def test_auto_classes_load_registered_local_classes(saved_folder):
    folder, _ = saved_folder
    assert isinstance(AutoConfig.from_pretrained(folder), CRAudioMAEConfig)
    assert isinstance(AutoModel.from_pretrained(folder), CRAudioMAEModel)
    assert isinstance(AutoModelForAudioClassification.from_pretrained(folder), CRAudioMAEForAudioClassification)
    assert isinstance(AutoFeatureExtractor.from_pretrained(folder), AudioMAEFeatureExtractor)


def test_position_table_stays_frozen_through_every_from_pretrained(saved_folder):
    # transformers re-creates loaded weights as trainable Parameters; AudioMAE's sin-cos table is fixed
    folder, model = saved_folder
    for loaded in (
        CRAudioMAEForAudioClassification.from_pretrained(folder),
        AutoModelForAudioClassification.from_pretrained(folder),
        CRAudioMAEForAudioClassification.from_pretrained(folder, output_loading_info=True)[0],
    ):
        table = loaded.audiomae.embeddings.position_embeddings
        assert not table.requires_grad
        assert torch.equal(table, model.audiomae.embeddings.position_embeddings)
        assert all(p is not table for p in loaded.parameters() if p.requires_grad)
    encoder = AutoModel.from_pretrained(folder)
    assert not encoder.embeddings.position_embeddings.requires_grad
    assert sum(p.numel() for p in encoder.parameters() if not p.requires_grad) == 513 * 32  # the table only


FRESH_PROCESS = r"""
import json, sys
import soundfile as sf, torch, torchaudio
from transformers import AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification
folder, audio = sys.argv[1], sys.argv[2]
model = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=True).eval()
encoder = AutoModel.from_pretrained(folder, trust_remote_code=True)
fe = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=True)
wave, sr = sf.read(audio, dtype="float32")
wave = torchaudio.functional.resample(torch.from_numpy(wave), sr, 16000)
with torch.no_grad():
    logits = model(**fe(wave, sampling_rate=16000)).logits
print(json.dumps({"logits": logits[0].tolist(), "model": type(model).__module__, "encoder": type(encoder).__name__,
                  "frozen": [not m.requires_grad for m in (model.audiomae.embeddings.position_embeddings,
                                                          encoder.embeddings.position_embeddings)],
                  "hf_audio_cr_imported": any(m.startswith("hf_audio_cr") for m in sys.modules)}))
"""


@pytest.mark.slow  # fresh interpreter
def test_remote_code_loads_in_a_fresh_interpreter_with_the_same_logits(saved_folder, audio_dir, real_clips, tmp_path):
    folder, model = saved_folder
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(folder), str(audio_dir / "trumpet.ogg")],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    assert not remote["hf_audio_cr_imported"]
    assert remote["model"].startswith("transformers_modules") and remote["encoder"] == "CRAudioMAEModel"
    assert remote["frozen"] == [True, True]  # the folder's own code keeps the position table frozen too
    with torch.no_grad():
        local = model(**AudioMAEFeatureExtractor()(real_clips["trumpet.ogg"], sampling_rate=16000)).logits[0]
    assert torch.allclose(torch.tensor(remote["logits"]), local, atol=1e-5)


def test_pipeline_gives_sigmoid_scores_for_files_and_arrays(saved_folder, audio_dir, real_clips):
    folder, model = saved_folder
    tagger = pipeline("audio-classification", model=str(folder), trust_remote_code=True)
    from_file = tagger(str(audio_dir / "robin.ogg"), top_k=5)
    assert len(from_file) == 5 and all(0.0 < r["score"] < 1.0 for r in from_file)
    everything = tagger({"array": real_clips["robin.ogg"], "sampling_rate": 16000}, top_k=527)
    assert sum(r["score"] for r in everything) > 1.5  # independent sigmoids, not a softmax
    with torch.no_grad():
        expected = model(**AudioMAEFeatureExtractor()(real_clips["robin.ogg"], sampling_rate=16000)).logits[0].sigmoid()
    best = int(expected.argmax())
    assert everything[0]["label"] == model.config.id2label[best]
    assert everything[0]["score"] == pytest.approx(float(expected[best]), abs=1e-4)


def test_pipeline_scores_long_audio_by_windows_not_by_cutting(saved_folder, real_clips):
    folder, model = saved_folder
    speech = real_clips["speech_female.ogg"]
    long_clip = np.concatenate([real_clips["robin.ogg"], speech, real_clips["trumpet.ogg"], speech])  # ~36 s
    tagger = pipeline("audio-classification", model=str(folder), trust_remote_code=True)
    scores = {r["label"]: r["score"] for r in tagger(long_clip, top_k=527)}
    fe = AudioMAEFeatureExtractor()
    windows = fe(long_clip, sampling_rate=16000, long_audio="window")["input_values"][0]
    assert windows.shape[0] == fe.num_windows(len(long_clip)) > 3
    with torch.no_grad():
        per_window = model(windows).logits.sigmoid()
        first_window_only = model(fe(long_clip, sampling_rate=16000, long_audio="truncate")["input_values"]).logits[0].sigmoid()
    expected = per_window.amax(dim=0)
    got = torch.tensor([scores[model.config.id2label[i]] for i in range(model.config.num_labels)])
    assert torch.allclose(got, expected, atol=1e-4)
    assert not torch.allclose(got, first_window_only, atol=1e-4)  # the clip was not silently cut
