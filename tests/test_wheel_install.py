"""The library from an installed wheel, outside the git checkout: build the wheel, install it into a new venv,
and from a folder with no repo run model folder -> push_to_hub.py's dry run (card written from the packaged
templates) -> pipeline("audio-classification") on a real recording through the folder's remote code.

The new venv reuses the test venv's third-party packages through a .pth line (no torch reinstall) but not its
hf_audio_cr: a plain path in a .pth does not run the editable install's finder, and the wheel's copy, in the
venv's own site-packages, comes first on sys.path. The test asserts where hf_audio_cr was imported from."""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from _helpers import ROOT, copy_checkout

pytestmark = pytest.mark.slow  # builds and installs the wheel in a new venv

PUBLISH = r"""
import json, sys
import hf_audio_cr
from hf_audio_cr import AudioMAEFeatureExtractor, CRAudioMAEConfig, CRAudioMAEForAudioClassification
from hf_audio_cr.demo.run import HELD_OUT_SPEECH
from hf_audio_cr.hub import PushToHubArguments, build_hub_folder

# a training run's output as Trainer leaves it: weights, feature extractor, evaluation JSON
config = CRAudioMAEConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
CRAudioMAEForAudioClassification(config).save_pretrained("run")
AudioMAEFeatureExtractor().save_pretrained("run")
json.dump({"eval_mAP": 0.4321, "epoch": 1.0}, open("run/eval_results.json", "w"))
# what scripts/push_to_hub.py --model_dir run --repo_id me/tiny-cr --output_dir hub --dry_run does
folder = build_hub_folder(PushToHubArguments(model_dir="run", repo_id="me/tiny-cr", output_dir="hub", dry_run=True))
print(json.dumps({"package": hf_audio_cr.__file__, "folder": str(folder), "demo_speech": HELD_OUT_SPEECH.is_file()}))
"""

TAG = r"""
import json, sys
from transformers import pipeline
tagger = pipeline("audio-classification", model="hub", trust_remote_code=True)
tags = tagger("trumpet.ogg", top_k=3)
print(json.dumps({"tags": tags, "module": type(tagger.model).__module__,
                  "hf_audio_cr_imported": any(m.startswith("hf_audio_cr") for m in sys.modules)}))
"""


def test_wheel_in_a_new_venv_publishes_and_tags_outside_the_checkout(tmp_path):
    source = copy_checkout(tmp_path / "src")  # build artefacts stay out of the checkout
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("hf_audio_cr-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site_packages = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        check=True, capture_output=True, text=True).stdout.strip())
    (site_packages / "test-venv-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"),
               OMP_NUM_THREADS="1", TRANSFORMERS_VERBOSITY="error")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed",
                    str(wheel)], check=True, capture_output=True, env=env, timeout=300)

    user = tmp_path / "user"  # no repo here or above it
    user.mkdir()
    shutil.copy(ROOT / "tests" / "fixtures" / "audio" / "trumpet.ogg", user)

    def run(code):
        result = subprocess.run([str(python), "-c", code], cwd=user, env=env, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    published = run(PUBLISH)
    assert Path(published["package"]).is_relative_to(site_packages), published["package"]  # the wheel's copy
    assert published["demo_speech"]  # package data: the demo's held-out recording
    card = (user / "hub" / "README.md").read_text()
    assert "32 wide, 2 layers" in card and "| AudioSet | validation | mAP | 0.4321 |" in card  # packaged template
    assert {"model.safetensors", "modeling_cr_audiomae.py", "preprocessor_config.json"} <= {
        p.name for p in (user / "hub").iterdir()}

    tagged = run(TAG)
    assert tagged["module"].startswith("transformers_modules") and not tagged["hf_audio_cr_imported"]
    assert len(tagged["tags"]) == 3 and all(0.0 < t["score"] < 1.0 for t in tagged["tags"])  # sigmoid scores
