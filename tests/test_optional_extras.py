"""matplotlib (`[demo]`) and onnx/onnxruntime/onnxscript (`[export]`) are optional: the core package works
without them, and a path that needs one says which extra to install. `make install` installs `[test]`, which
carries both extras' requirements."""
import configparser
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A fresh interpreter where the optional packages are missing (a None entry in sys.modules fails the import).
WITHOUT_EXTRAS = r"""
import json, sys
for name in ("matplotlib", "onnx", "onnxruntime", "onnxscript"):
    sys.modules[name] = None
import torch
import hf_audio_cr
from hf_audio_cr import CRAudioMAEConfig, CRAudioMAEForAudioClassification
from hf_audio_cr.export import OnnxAudioClassifier, export_onnx

model = CRAudioMAEForAudioClassification(CRAudioMAEConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                          intermediate_size=64, max_length=128, num_labels=3)).eval()
logits = model(input_values=torch.zeros(1, 128, 128)).logits  # the core path runs
errors = {}
for name, call in {"plots": lambda: __import__("hf_audio_cr.demo.plots"),
                   "export": lambda: export_onnx(model, {"input_values": torch.zeros(1, 128, 128)}, "m.onnx"),
                   "runtime": lambda: OnnxAudioClassifier("m.onnx")}.items():
    try:
        call()
    except ImportError as error:
        errors[name] = str(error)
print(json.dumps({"logits": list(logits.shape), "errors": errors}))
"""


@pytest.mark.slow  # fresh interpreter
def test_core_runs_without_the_extras_and_missing_extras_are_named(tmp_path):
    result = subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["logits"] == [1, 3]
    assert set(report["errors"]) == {"plots", "export", "runtime"}
    assert "matplotlib" in report["errors"]["plots"] and "pip install 'hf_audio_cr[demo]'" in report["errors"]["plots"]
    for name in ("export", "runtime"):
        assert "pip install 'hf_audio_cr[export]'" in report["errors"][name], report["errors"][name]
    assert not (tmp_path / "m.onnx").exists()


def test_the_test_extra_installs_both_optional_extras():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    extras = {name: {line.strip() for line in value.splitlines() if line.strip() and not line.strip().startswith("#")}
              for name, value in config["options.extras_require"].items()}
    core = config["options"]["install_requires"]
    assert extras["demo"] and extras["export"] and extras["demo"] | extras["export"] <= extras["test"]
    assert "matplotlib" not in core and "onnx" not in core and "jinja2" in core  # model cards render with jinja2
