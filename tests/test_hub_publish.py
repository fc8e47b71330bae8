"""Hub publishing on a trained tiny CR-AudioMAE: Trainer run -> push_to_hub --dry_run -> the folder loads
as remote code in a fresh interpreter, the card's usage snippets run, and the card parses back with the
evaluation results of the run. Nothing is uploaded."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from transformers import Trainer, TrainingArguments

from _helpers import TINY_HEAR_WINDOWED
from hf_audio_cr import AudioMAEFeatureExtractor, CRAudioMAEConfig, CRAudioMAEForAudioClassification
from hf_audio_cr.hub import PushToHubArguments, build_hub_folder, card_code_blocks, find_model_folder, read_eval_metrics
from hf_audio_cr.training import CRTrainer, CRTrainingArguments, audioset_compute_metrics

ROOT = Path(__file__).resolve().parent.parent
# AudioSet classes the three recordings contain (CR-AudioMAE, multi-label) / one class each (HEAR, single-label).
CLIP_LABELS = {"robin.ogg": ["Bird"], "trumpet.ogg": ["Trumpet", "Music"], "speech_female.ogg": ["Speech"]}
HEAR_CLASSES = ["robin.ogg", "trumpet.ogg", "speech_female.ogg"]
HEAR_TINY = TINY_HEAR_WINDOWED
FAMILY = {  # family -> (repo id, evaluation metric key, card metric name, code files the folder must carry)
    "cr_audiomae": ("someone/tiny-cr-audiomae", "eval_mAP", "mAP",
                    {"modeling_cr_audiomae.py", "configuration_cr_audiomae.py", "feature_extraction_cr_audiomae.py"}),
    "hear": ("someone/tiny-hear", "eval_accuracy", "Accuracy",
             {"modeling_hear.py", "configuration_hear.py", "feature_extraction_hear.py"}),
}
# `--dataset` per family: the CR model carries AudioSet's labels (the card infers the set); the HEAR model's three
# fixture classes identify no set, so the run names one (a Hub id).
DATASET_ARGS = {"cr_audiomae": [], "hear": ["--dataset", "someone/three-fixture-clips"]}


def accuracy(eval_prediction) -> dict:
    predictions = np.asarray(eval_prediction.predictions).argmax(-1)
    return {"accuracy": float((predictions == np.asarray(eval_prediction.label_ids)).mean())}


def train_cr_audiomae(request, run_dir):
    """A few CRTrainer steps on 1.28 s fbank crops of the real clips, evaluated with the AudioSet mAP module."""
    tiny_fbanks = request.getfixturevalue("tiny_fbanks")
    config = CRAudioMAEConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                              max_length=128, num_mel_bins=128)
    rows = []
    for name, crops in tiny_fbanks.items():
        labels = torch.zeros(config.num_labels)
        labels[[config.label2id[label] for label in CLIP_LABELS[name]]] = 1.0
        rows += [{"input_values": crop, "labels": labels} for crop in crops[:4]]
    args = CRTrainingArguments(output_dir=str(run_dir), max_steps=3, per_device_train_batch_size=4, warmup_steps=0,
                               per_device_eval_batch_size=8, report_to=[], save_strategy="no", use_cpu=True,
                               logging_steps=1, seed=0)
    extractor = AudioMAEFeatureExtractor(max_length=128)
    return CRTrainer(model=CRAudioMAEForAudioClassification(config), args=args, train_dataset=rows, eval_dataset=rows,
                     processing_class=extractor, compute_metrics=audioset_compute_metrics(num_eval_classes=None))


def train_hear(request, run_dir):
    """A few transformers.Trainer steps of the HEAR classifier on 1 s crops of the real clips (3 classes)."""
    from hf_audio_cr.models.hear import HEARConfig, HEARFeatureExtractor, HEARForAudioClassification

    real_clips = request.getfixturevalue("real_clips")
    config = HEARConfig(**HEAR_TINY, num_labels=3, id2label=dict(enumerate(n.split(".")[0] for n in HEAR_CLASSES)),
                        problem_type="single_label_classification")
    extractor = HEARFeatureExtractor()
    rows = []
    for label, name in enumerate(HEAR_CLASSES):
        crops = [real_clips[name][i * 16000 : (i + 1) * 16000] for i in range(2)]
        features = extractor(crops, sampling_rate=16000)
        rows += [{**{k: v[i] for k, v in features.items()}, "labels": label} for i in range(2)]
    args = TrainingArguments(output_dir=str(run_dir), max_steps=3, per_device_train_batch_size=3, learning_rate=1e-3,
                             report_to=[], save_strategy="no", use_cpu=True, logging_steps=1, seed=0)
    return Trainer(model=HEARForAudioClassification(config), args=args, train_dataset=rows, eval_dataset=rows,
                   processing_class=extractor, compute_metrics=accuracy)


@pytest.fixture(scope="module", params=["cr_audiomae", "hear"])
def published(request, tmp_path_factory):
    """A Trainer output dir as a real run leaves it (weights, feature extractor, eval JSON, trainer_state), then
    the documented `scripts/push_to_hub.py --dry_run` command on it."""
    family = request.param
    torch.manual_seed(0)
    run_dir = tmp_path_factory.mktemp(f"run_{family}")
    trainer = (train_cr_audiomae if family == "cr_audiomae" else train_hear)(request, run_dir)
    trainer.train()
    metrics = trainer.evaluate()
    trainer.save_metrics("eval", metrics)
    trainer.save_model()
    trainer.save_state()
    repo_id = FAMILY[family][0]
    folder = tmp_path_factory.mktemp(f"hub_{family}") / repo_id.split("/")[1]
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "push_to_hub.py"), "--model_dir", str(run_dir), "--repo_id", repo_id,
         "--output_dir", str(folder), "--dry_run", *DATASET_ARGS[family]],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "nothing uploaded" in result.stdout
    return {"family": family, "run_dir": run_dir, "metrics": metrics, "model": trainer.model.eval(),
            "extractor": trainer.processing_class, "folder": folder, "repo_id": repo_id}


@pytest.mark.slow  # training runs + publishing (module fixture)
def test_eval_metrics_come_from_the_run_json(published):
    key = FAMILY[published["family"]][1]
    read = read_eval_metrics(published["run_dir"])
    assert read[key] == pytest.approx(published["metrics"][key])
    assert json.loads((published["run_dir"] / "eval_results.json").read_text())[key] == pytest.approx(read[key])


@pytest.mark.slow  # training runs + publishing (module fixture)
def test_folder_is_self_contained_with_auto_map(published):
    folder, family = published["folder"], published["family"]
    names = {p.name for p in folder.iterdir()}
    assert {"README.md", "config.json", "model.safetensors", "preprocessor_config.json"} | FAMILY[family][3] <= names
    assert not any(n.endswith((".bin", ".pth", ".pt")) for n in names)
    auto_map = json.loads((folder / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModelForAudioClassification"].startswith(f"modeling_{family}.")


@pytest.mark.slow  # training runs + publishing (module fixture)
def test_card_metadata_parses_back_with_the_run_results(published):
    family, metrics = published["family"], published["metrics"]
    card = ModelCard.load(published["folder"] / "README.md")
    data = card.data
    assert data.pipeline_tag == "audio-classification" and data.library_name == "transformers"
    assert data.license == "apache-2.0" and "custom_code" in data.tags
    key, metric_name = FAMILY[family][1], FAMILY[family][2]
    results = {r.metric_name: r for r in data.eval_results}
    assert results[metric_name].metric_value == pytest.approx(metrics[key], abs=1e-4)
    if family == "cr_audiomae":
        assert data.datasets == ["agkphysics/AudioSet"] and "cr-audiomae" in data.tags
        assert results["mAP"].metric_type == "mAP" and results["mAP"].dataset_type == "agkphysics/AudioSet"
        assert results["mAUC"].metric_value == pytest.approx(metrics["eval_mAUC"], abs=1e-4)
    else:
        assert data.datasets == ["someone/three-fixture-clips"] and "hear" in data.tags
        assert results["Accuracy"].metric_type == "accuracy"
        assert results["Accuracy"].dataset_type == "someone/three-fixture-clips"
    assert "3 optimisation steps" in card.text and published["repo_id"] in card.text


FRESH_PROCESS = r"""
import contextlib, io, json, sys
folder, repo_id, audio, snippets = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
printed = []
for code in snippets:  # the card's usage snippets, pointed at the local folder and a real recording
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code.replace(repo_id, folder).replace("clip.wav", audio), {})
    printed.append(out.getvalue())
import soundfile as sf, torch, torchaudio
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, pipeline
model = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=True).eval()
fe = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=True)
wave, sr = sf.read(audio, dtype="float32")
wave = torchaudio.functional.resample(torch.from_numpy(wave), sr, 16000)
with torch.no_grad():
    logits = model(**fe(wave, sampling_rate=16000)).logits[0]
top = pipeline("audio-classification", model=folder, trust_remote_code=True)(audio, top_k=3)
print(json.dumps({"printed": printed, "logits": logits.tolist(), "top": top, "module": type(model).__module__,
                  "hf_audio_cr_imported": any(m.startswith("hf_audio_cr") for m in sys.modules)}))
"""


@pytest.mark.slow  # training runs + publishing (module fixture)
def test_fresh_process_loads_the_folder_and_runs_the_card_snippets(published, audio_dir, real_clips, tmp_path):
    model, extractor, folder = published["model"], published["extractor"], published["folder"]
    snippets = card_code_blocks((folder / "README.md").read_text())
    assert len(snippets) == 2
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(folder), published["repo_id"],
                             str(audio_dir / "trumpet.ogg"), json.dumps(snippets)],
                            capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    assert not remote["hf_audio_cr_imported"] and remote["module"].startswith("transformers_modules")
    with torch.no_grad():
        local = model(**extractor(real_clips["trumpet.ogg"], sampling_rate=16000, return_tensors="pt")).logits[0]
    assert torch.allclose(torch.tensor(remote["logits"]), local, atol=1e-5)
    best = model.config.id2label[int(local.argmax())]
    assert remote["top"][0]["label"] == best
    assert best in remote["printed"][0] and best in remote["printed"][1]  # both snippets name the top class


def test_trainer_dir_without_final_model_uses_best_or_last_checkpoint(tmp_path):
    for step in (2, 10):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "config.json").write_text("{}")
    assert find_model_folder(tmp_path).name == "checkpoint-10"
    (tmp_path / "trainer_state.json").write_text(json.dumps({"best_model_checkpoint": str(tmp_path / "checkpoint-2")}))
    assert find_model_folder(tmp_path).name == "checkpoint-2"


@pytest.mark.slow  # training runs + publishing (module fixture)
def test_bad_inputs_name_the_problem(tmp_path, published):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        find_model_folder(tmp_path)
    run_dir = published["run_dir"]
    args = PushToHubArguments(model_dir=str(run_dir), repo_id="someone/x", output_dir=str(tmp_path / "o"),
                              dataset="imagenet", dry_run=True)
    with pytest.raises(ValueError, match="imagenet"):
        build_hub_folder(args)
    args = PushToHubArguments(model_dir=str(run_dir), repo_id="someone/x", eval_file=str(tmp_path / "nope.json"))
    with pytest.raises(FileNotFoundError, match="nope.json"):
        build_hub_folder(args)
