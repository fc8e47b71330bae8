"""Efficiency benchmark: FLOP counting (incl. CPU attention), the script's table/JSON/PNG on tiny configs,
model folders and errors. No timing assertions: RTF values are only checked to be measured."""
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from _helpers import TINY_CR_AUDIOMAE
from hf_audio_cr import AudioMAEFeatureExtractor, CRAudioMAEConfig, CRAudioMAEForAudioClassification
from hf_audio_cr.benchmark import BenchmarkArguments, build_ast, count_flops, count_parameters, run_benchmark

ROOT = Path(__file__).resolve().parent.parent
TINY = TINY_CR_AUDIOMAE


def test_flops_include_attention_maps_on_cpu(real_clips):
    """torch's FLOP table has no CPU SDPA entry: without ours every attention map would count 0."""
    subject = build_ast(quick=True)
    inputs = subject.extract(real_clips["trumpet.ogg"])
    batch = inputs["input_values"].shape[0]
    with torch.inference_mode(), FlopCounterMode(display=False) as plain:
        subject.model(**inputs)
    config = subject.model.config
    tokens = 2 + 12 * 12  # cls + distillation tokens + (128 - 16) / 10 + 1 = 12 patches per axis
    # QK^T and AV: 2 matmuls of tokens x tokens x hidden, 2 FLOPs per multiply-add, per layer
    attention = config.num_hidden_layers * batch * 2 * 2 * tokens * tokens * config.hidden_size
    assert count_flops(subject.model, inputs) - plain.get_total_flops() == attention


def test_flops_of_a_vit_match_the_closed_form():
    config = CRAudioMAEConfig(**TINY, num_mel_bins=128)
    model = CRAudioMAEForAudioClassification(config).eval()
    x = torch.zeros(1, 128, 128)
    n, d, f = 64 + 1, config.hidden_size, config.intermediate_size  # 8x8 patches + cls
    per_layer = 2 * n * d * 3 * d + 2 * 2 * n * n * d + 2 * n * d * d + 2 * 2 * n * d * f
    patch_embed = 2 * 64 * 16 * 16 * d
    head = 2 * d * config.num_labels
    assert count_flops(model, {"input_values": x}) == config.num_hidden_layers * per_layer + patch_embed + head


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark_efficiency.py"), "--quick",
         "--models", "hear", "cr_audiomae", "--durations", "10", "60", "--threads", "1", "--output_dir", str(out)],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result.stdout


@pytest.mark.slow  # the benchmark script in a subprocess
def test_script_writes_table_json_and_chart(quick_run):
    out, stdout = quick_run
    report = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in report["results"]] == ["hear", "cr_audiomae"]
    for r in report["results"]:
        assert r["macs"]["10s"] == r["flops"]["10s"] // 2 > 0
        assert r["flops"]["60s"] > r["flops"]["10s"]  # more windows for the longer clip
        for seconds in ("10s", "60s"):
            for step in ("model", "fe+model"):
                assert r["rtf"][f"torch/{seconds}/1thr/{step}"] > 0
    lines = [line for line in stdout.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| model | backend | params (M) | GFLOPs @10s | GMACs @10s | RTF 10s 1thr model")
    assert len(lines) == 1 + 2  # header + one row per model
    assert (out / "results.md").read_text().strip() == report["markdown"].split("\n\nHEAR")[0].strip()
    image = matplotlib.image.imread(out / "results.png")
    assert image.ndim == 3 and image.shape[0] > 100


@pytest.mark.slow  # the benchmark script in a subprocess
def test_params_column_counts_every_parameter(quick_run):
    out, _ = quick_run
    report = json.loads((out / "results.json").read_text())
    row = next(r for r in report["results"] if r["model"] == "cr_audiomae")
    assert row["params"] == count_parameters(CRAudioMAEForAudioClassification(CRAudioMAEConfig(**TINY)))


@pytest.mark.slow  # ONNX export
def test_saved_model_folder_is_benchmarked_by_name_with_onnxruntime_rows(tmp_path):
    folder = tmp_path / "my_tagger"
    CRAudioMAEForAudioClassification(CRAudioMAEConfig(**TINY)).save_pretrained(folder)
    AudioMAEFeatureExtractor(max_length=128, window_hop=64).save_pretrained(folder)
    args = BenchmarkArguments(models=[], model_dirs=[str(folder)], durations=[10.0], threads=["all"], quick=True,
                              onnx=True, output_dir=str(tmp_path / "out"))
    report = run_benchmark(args)
    (row,) = report["results"]
    assert row["model"] == "my_tagger"
    cores = report["machine"]["cores"]  # "all" = the cores this process may use
    assert set(row["rtf"]) == {f"{backend}/10s/{cores}thr/{step}" for backend in ("torch", "onnxruntime")
                               for step in ("model", "fe+model")}
    assert "| my_tagger | onnxruntime |" in report["markdown"]
    assert row["params"] == count_parameters(CRAudioMAEForAudioClassification(CRAudioMAEConfig(**TINY)))


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown"):
        run_benchmark(BenchmarkArguments(models=["wav2vec"], output_dir=str(tmp_path)))
    with pytest.raises(FileNotFoundError, match="config.json"):
        run_benchmark(BenchmarkArguments(models=[], model_dirs=[str(tmp_path)], output_dir=str(tmp_path)))
    with pytest.raises(FileNotFoundError, match="--audio"):
        run_benchmark(BenchmarkArguments(models=["ast"], quick=True, audio=str(tmp_path / "x.wav"),
                                         output_dir=str(tmp_path)))


def test_headline_ratio_times_the_two_models_in_alternation():
    from hf_audio_cr.benchmark import (
        BenchmarkArguments,
        build_cr_audiomae,
        build_hear,
        format_markdown,
        paired_rtf_ratio,
    )

    hear, cr_audiomae = build_hear(quick=True), build_cr_audiomae(quick=True)
    calls = []  # which model each timed forward ran
    for subject in (hear, cr_audiomae):
        subject.model.register_forward_hook(lambda module, args, output, name=subject.name: calls.append(name))
    pair = paired_rtf_ratio(hear, cr_audiomae, 2.0, repeats=3, warmup=1, with_features=True)
    assert calls == ["hear", "cr_audiomae"] * 4  # warm-up pair, then a, b, a, b, ...: never a block of one model
    assert pair["setting"] == "torch/2s/1thr/fe+model" and pair["ratio"] > 0 and pair["rtf_a"] > 0 and pair["rtf_b"] > 0
    table = format_markdown([], BenchmarkArguments(durations=[2.0]), [pair])
    assert f"HEAR / CR-AudioMAE RTF ratio (torch/2s/1thr/fe+model, runs interleaved): {pair['ratio']:.3f}" in table
