"""Hub publishing on a trained tiny CR-AudioMAE: Trainer run -> push_to_hub --dry_run -> the folder loads
as remote code in a fresh interpreter, the card's usage snippets run, and the card parses back with the
evaluation results of the run. Nothing is uploaded."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

from hf_audio_cr import AudioMAEFeatureExtractor, CRAudioMAEConfig, CRAudioMAEForAudioClassification
from hf_audio_cr.hub import PushToHubArguments, build_hub_folder, card_code_blocks, find_model_folder, read_eval_metrics
from hf_audio_cr.training import CRTrainer, CRTrainingArguments, audioset_compute_metrics

ROOT = Path(__file__).resolve().parent.parent
# AudioSet classes the three recordings contain.
CLIP_LABELS = {"robin.ogg": ["Bird"], "trumpet.ogg": ["Trumpet", "Music"], "speech_female.ogg": ["Speech"]}


@pytest.fixture(scope="module")
def trained_run(tiny_fbanks, tmp_path_factory):
    """A Trainer output dir as a real run leaves it: weights, feature extractor, eval JSON, trainer_state."""
    torch.manual_seed(0)
    config = CRAudioMAEConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                              max_length=128, num_mel_bins=128)
    model = CRAudioMAEForAudioClassification(config)
    rows = []
    for name, crops in tiny_fbanks.items():
        labels = torch.zeros(config.num_labels)
        labels[[config.label2id[label] for label in CLIP_LABELS[name]]] = 1.0
        rows += [{"input_values": crop, "labels": labels} for crop in crops[:4]]
    run_dir = tmp_path_factory.mktemp("run")
    args = CRTrainingArguments(output_dir=str(run_dir), max_steps=3, per_device_train_batch_size=4,
                               per_device_eval_batch_size=8, warmup_steps=0, report_to=[], save_strategy="no",
                               use_cpu=True, dataloader_num_workers=0, logging_steps=1, seed=0)
    trainer = CRTrainer(model=model, args=args, train_dataset=rows, eval_dataset=rows,
                        processing_class=AudioMAEFeatureExtractor(max_length=128),
                        compute_metrics=audioset_compute_metrics(num_eval_classes=None))
    trainer.train()
    metrics = trainer.evaluate()
    trainer.save_metrics("eval", metrics)
    trainer.save_model()
    trainer.save_state()
    return run_dir, metrics, trainer.model.eval()


@pytest.fixture(scope="module")
def hub_folder(trained_run, tmp_path_factory):
    run_dir, _, _ = trained_run
    out = tmp_path_factory.mktemp("hub") / "tiny-cr-audiomae"
    command = [sys.executable, str(ROOT / "scripts" / "push_to_hub.py")]  # the documented command line
    result = subprocess.run(command + ["--model_dir", str(run_dir), "--repo_id", "someone/tiny-cr-audiomae",
                                               "--output_dir", str(out), "--dry_run"],
                            capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "nothing uploaded" in result.stdout
    return out


def test_eval_metrics_come_from_the_run_json(trained_run):
    run_dir, metrics, _ = trained_run
    read = read_eval_metrics(run_dir)
    assert read["eval_mAP"] == pytest.approx(metrics["eval_mAP"]) and "eval_mAUC" in read
    assert json.loads((run_dir / "eval_results.json").read_text())["eval_mAP"] == pytest.approx(read["eval_mAP"])


def test_folder_is_self_contained_with_auto_map(hub_folder):
    names = {p.name for p in hub_folder.iterdir()}
    assert {"README.md", "config.json", "model.safetensors", "preprocessor_config.json", "modeling_cr_audiomae.py",
            "configuration_cr_audiomae.py", "feature_extraction_cr_audiomae.py"} <= names
    assert not any(n.endswith((".bin", ".pth", ".pt")) for n in names)
    auto_map = json.loads((hub_folder / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModelForAudioClassification"] == "modeling_cr_audiomae.CRAudioMAEForAudioClassification"


def test_card_metadata_parses_back_with_the_run_results(hub_folder, trained_run):
    _, metrics, _ = trained_run
    card = ModelCard.load(hub_folder / "README.md")
    data = card.data
    assert data.pipeline_tag == "audio-classification" and data.library_name == "transformers"
    assert data.license == "apache-2.0" and data.datasets == ["agkphysics/AudioSet"]
    assert "custom_code" in data.tags and "cr-audiomae" in data.tags
    results = {r.metric_name: r for r in data.eval_results}
    assert results["mAP"].metric_value == pytest.approx(metrics["eval_mAP"], abs=1e-4)
    assert results["mAP"].metric_type == "mAP" and results["mAP"].dataset_type == "agkphysics/AudioSet"
    assert results["mAUC"].metric_value == pytest.approx(metrics["eval_mAUC"], abs=1e-4)
    assert "3 optimisation steps" in card.text and "someone/tiny-cr-audiomae" in card.text


FRESH_PROCESS = r"""
import contextlib, io, json, sys
folder, audio, snippets = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
printed = []
for code in snippets:  # the card's usage snippets, pointed at the local folder and a real recording
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code.replace("someone/tiny-cr-audiomae", folder).replace("clip.wav", audio), {})
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


def test_fresh_process_loads_the_folder_and_runs_the_card_snippets(hub_folder, trained_run, audio_dir, real_clips,
                                                                  tmp_path):
    _, _, model = trained_run
    snippets = card_code_blocks((hub_folder / "README.md").read_text())
    assert len(snippets) == 2
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(hub_folder), str(audio_dir / "trumpet.ogg"),
                             json.dumps(snippets)], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    assert not remote["hf_audio_cr_imported"] and remote["module"].startswith("transformers_modules")
    with torch.no_grad():
        local = model(**AudioMAEFeatureExtractor(max_length=128)(real_clips["trumpet.ogg"], sampling_rate=16000))
    assert torch.allclose(torch.tensor(remote["logits"]), local.logits[0], atol=1e-5)
    best = model.config.id2label[int(local.logits[0].argmax())]
    assert remote["top"][0]["label"] == best
    assert best in remote["printed"][0] and best in remote["printed"][1]  # both snippets name the top class


def test_trainer_dir_without_final_model_uses_best_or_last_checkpoint(tmp_path):
    for step in (2, 10):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "config.json").write_text("{}")
    assert find_model_folder(tmp_path).name == "checkpoint-10"
    (tmp_path / "trainer_state.json").write_text(json.dumps({"best_model_checkpoint": str(tmp_path / "checkpoint-2")}))
    assert find_model_folder(tmp_path).name == "checkpoint-2"


def test_bad_inputs_name_the_problem(tmp_path, trained_run):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        find_model_folder(tmp_path)
    run_dir, _, _ = trained_run
    args = PushToHubArguments(model_dir=str(run_dir), repo_id="someone/x", output_dir=str(tmp_path / "o"),
                              dataset="imagenet", dry_run=True)
    with pytest.raises(ValueError, match="imagenet"):
        build_hub_folder(args)
    args = PushToHubArguments(model_dir=str(run_dir), repo_id="someone/x", eval_file=str(tmp_path / "nope.json"))
    with pytest.raises(FileNotFoundError, match="nope.json"):
        build_hub_folder(args)
