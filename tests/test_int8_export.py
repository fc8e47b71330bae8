"""int8 HEAR for the edge: scripts/export_onnx.py --quantize int8 writes a dynamically quantised graph (int8
weights, activations quantised on the fly) that keeps HEAR's frame-padding rule and follows PyTorch's logits.
Speed and accuracy figures: benchmark_efficiency.py --onnx --quantize int8, scripts/bench_int8_fsdd.py."""
import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from hf_audio_cr.benchmark import HEAR_TINY_CONFIG, benchmark_waveform
from hf_audio_cr.export import OnnxAudioClassifier, logits_agreement, quantize_onnx
from hf_audio_cr.models.hear import HEARConfig, HEARFeatureExtractor, HEARForAudioClassification

pytestmark = pytest.mark.slow  # ONNX export + int8 quantisation

ROOT = Path(__file__).resolve().parent.parent


def test_export_script_writes_an_int8_hear_graph_that_follows_pytorch(tmp_path, audio_dir):
    folder = tmp_path / "hear_tiny"
    HEARForAudioClassification(HEARConfig(num_labels=10, **HEAR_TINY_CONFIG)).eval().save_pretrained(folder)
    HEARFeatureExtractor().save_pretrained(folder)
    result = subprocess.run(
        [sys.executable, "scripts/export_onnx.py", "--model", str(folder), "--output", str(tmp_path / "hear.onnx"),
         "--audio", str(audio_dir / "speech_female.ogg"), "--quantize", "int8"],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout[result.stdout.index("{") : result.stdout.rindex("}") + 1])
    int8_path = Path(report["int8"]["onnx"])
    assert int8_path == tmp_path / "hear.int8.onnx" and report["int8"]["size_mb"] < report["int8"]["fp32_size_mb"]
    ops = {node.op_type for node in onnx.load(str(int8_path)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} & ops or "DynamicQuantizeMatMul" in ops  # int8 matmuls
    for case, agreement in report["int8"]["agreement"].items():
        assert agreement["correlation"] > 0.99 and agreement["argmax_agreement"] == 1.0, (case, agreement)
    # HEAR's frame-padding rule travelled into the int8 file: a 3 s clip is padded to the graph's range
    quantized = OnnxAudioClassifier(int8_path, num_threads=1)
    assert quantized.frame_padding is not None
    logits = quantized(**HEARFeatureExtractor()(benchmark_waveform(3.0), sampling_rate=16000))
    assert logits.shape == (1, 10)
    # the optimised variant (constant folding first) gives the same predictions
    optimised = OnnxAudioClassifier(quantize_onnx(tmp_path / "hear.onnx", tmp_path / "hear.opt.int8.onnx", preprocess=True))
    features = HEARFeatureExtractor()(benchmark_waveform(8.0, str(audio_dir / "speech_female.ogg")), sampling_rate=16000)
    agreement = logits_agreement(OnnxAudioClassifier(tmp_path / "hear.onnx")(**features), optimised(**features))
    assert agreement["correlation"] > 0.99 and optimised.frame_padding == quantized.frame_padding
