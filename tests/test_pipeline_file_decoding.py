"""The pipeline class every saved folder carries (config.json ``custom_pipelines``): a file path is decoded as in
training (torchcodec at the file's rate + torchaudio resampling), so a file and its samples give the same model
input; truncated / corrupt files are refused naming the file. Real recordings: FSDD at 8 kHz (tests/fixtures/fsdd)
and LibriSpeech speech resampled to 22.05 / 44.1 kHz by ffmpeg (another program's resampler and encoder)."""
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import AudioClassificationPipeline, pipeline

from _helpers import save_tiny_classifier
from hf_audio_cr import (
    AudioFileClassificationPipeline,
)

FIXTURES = Path(__file__).parent / "fixtures"
FSDD_8K = sorted((FIXTURES / "fsdd").glob("*.wav"))


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """Real files at 8, 22.05 and 44.1 kHz (WAV and FLAC), the last two written by ffmpeg from an Ogg recording."""
    folder = tmp_path_factory.mktemp("rates")
    files = list(FSDD_8K[:2])
    for rate, ext in ((22050, "wav"), (44100, "flac")):
        out = folder / f"speech_{rate}.{ext}"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(FIXTURES / "audio" / "speech_female.ogg"), "-t", "3",
                        "-ar", str(rate), "-ac", "1", str(out)], check=True)
        files.append(out)
    assert [sf.info(f).samplerate for f in files] == [8000, 8000, 22050, 44100]
    return files


@pytest.fixture(scope="module")
def cr_folder(tmp_path_factory):
    return save_tiny_classifier(tmp_path_factory.mktemp("cr"), "cr_audiomae")


@pytest.fixture(scope="module")
def hear_folder(tmp_path_factory):
    return save_tiny_classifier(tmp_path_factory.mktemp("hear"), "hear")


def _model_input(tagger, audio):
    values = tagger.preprocess(audio)["input_values"]
    return values.materialize()["input_values"] if hasattr(values, "materialize") else values


def _logits(tagger, audio):
    rows = tagger(audio, top_k=None, function_to_apply="none")
    return torch.tensor([s for _, s in sorted((r["label"], r["score"]) for r in rows)])


@pytest.mark.parametrize("family", ["cr", "hear"])
def test_folders_carry_the_pipeline_as_remote_code(family, cr_folder, hear_folder):
    folder = {"cr": cr_folder, "hear": hear_folder}[family]
    config = json.loads((folder / "config.json").read_text())
    assert config["custom_pipelines"]["audio-classification"]["impl"] == (
        "pipeline_audio_classification.AudioFileClassificationPipeline")
    assert (folder / "pipeline_audio_classification.py").is_file()
    tagger = pipeline("audio-classification", model=str(folder), trust_remote_code=True)
    assert type(tagger).__name__ == "AudioFileClassificationPipeline"
    assert type(tagger).__module__.startswith("transformers_modules")  # the folder's copy, not the package's


@pytest.mark.parametrize("family", ["cr", "hear"])
def test_a_file_gives_the_model_input_of_its_samples(family, cr_folder, hear_folder, recordings):
    tagger = pipeline("audio-classification", model=str({"cr": cr_folder, "hear": hear_folder}[family]),
                      trust_remote_code=True)
    for path in recordings:
        samples, rate = sf.read(path, dtype="float32")
        from_file, from_array = _model_input(tagger, str(path)), _model_input(tagger, {"raw": samples, "sampling_rate": rate})
        assert from_file.shape == from_array.shape
        assert (from_file - from_array).abs().max() <= 1e-6, path.name
        assert (_logits(tagger, str(path)) - _logits(tagger, {"raw": samples, "sampling_rate": rate})).abs().max() <= 1e-6


def test_transformers_own_file_path_differs_at_8_khz(cr_folder):
    # what the folder's pipeline replaces: ffmpeg decodes *and* resamples, training resamples with torchaudio
    stock = pipeline("audio-classification", model=str(cr_folder), pipeline_class=AudioClassificationPipeline)
    samples, rate = sf.read(FSDD_8K[0], dtype="float32")
    gap = (_model_input(stock, str(FSDD_8K[0])) - _model_input(stock, {"raw": samples, "sampling_rate": rate})).abs().max()
    assert gap > 0.05


def test_package_class_without_remote_code_decodes_the_same(cr_folder, recordings):
    local = pipeline("audio-classification", model=str(cr_folder), pipeline_class=AudioFileClassificationPipeline)
    remote = pipeline("audio-classification", model=str(cr_folder), trust_remote_code=True)
    assert type(local).__module__.startswith("hf_audio_cr")
    assert torch.equal(_model_input(local, str(recordings[2])), _model_input(remote, str(recordings[2])))


def test_truncated_and_corrupt_files_are_named(cr_folder, tmp_path):
    tagger = pipeline("audio-classification", model=str(cr_folder), trust_remote_code=True)
    wave, rate = sf.read(FSDD_8K[0], dtype="float32")
    cut = tmp_path / "cut.wav"
    sf.write(cut, wave, rate)
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"'.*cut\.wav' is truncated: its data chunk declares \d+ bytes but only \d+"):
        tagger(str(cut))
    cut.write_bytes(cut.read_bytes()[: 44 + 2 * (len(wave) // 3)])  # whole 16-bit frames: decodable, yet short
    with pytest.raises(ValueError, match=r"'.*cut\.wav' is truncated: .*truncated='warn' to score what exists"):
        tagger(str(cut))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = tagger(str(cut), truncated="warn")
    assert len(scores) == 3 and any("cut.wav' is truncated" in str(w.message) for w in caught)
    warn_tagger = pipeline("audio-classification", model=str(cr_folder), trust_remote_code=True, truncated="warn")
    with pytest.warns(UserWarning, match="truncated='warn'"):
        warn_tagger(str(cut))
    junk = tmp_path / "junk.flac"
    junk.write_bytes(b"fLaC" + os.urandom(2000))
    with pytest.raises(ValueError, match=r"'.*junk\.flac' could not be decoded .*Re-encode it"):
        tagger(str(junk))
    one_sample = tmp_path / "one.wav"
    sf.write(one_sample, wave[:1], rate)
    with pytest.raises(ValueError, match=r"audio file '.*one\.wav': AudioMAEFeatureExtractor: .*at least"):
        tagger(str(one_sample))
    with pytest.raises(ValueError, match=r"truncated='ignore'"):
        tagger(str(cut), truncated="ignore")


WITHOUT_PACKAGE = r"""
import importlib.abc, json, sys, warnings
import soundfile as sf, torch

class NotInstalled(importlib.abc.MetaPathFinder):  # as if hf_audio_cr were not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "hf_audio_cr":
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, NotInstalled())
from transformers import pipeline

folder, audio, cut = sys.argv[1:4]
tagger = pipeline("audio-classification", model=folder, trust_remote_code=True)
samples, rate = sf.read(audio, dtype="float32")
logits = lambda x: [r["score"] for r in sorted(tagger(x, top_k=None, function_to_apply="none"), key=lambda r: r["label"])]
try:
    tagger(cut)
    refused = None
except ValueError as err:
    refused = str(err)
print(json.dumps({"pipeline": type(tagger).__module__, "file": logits(audio),
                  "array": logits({"raw": samples, "sampling_rate": rate}), "refused": refused,
                  "imported": any(m.split(".")[0] == "hf_audio_cr" for m in sys.modules)}))
"""


@pytest.mark.slow  # fresh interpreter without hf_audio_cr
@pytest.mark.parametrize("family", ["cr", "hear"])
def test_without_the_package_installed(family, cr_folder, hear_folder, tmp_path):
    cut = tmp_path / "cut.flac"
    wave, rate = sf.read(FSDD_8K[1], dtype="float32")
    sf.write(cut, wave, rate)
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 3])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    env.pop("PYTHONPATH", None)
    folder = {"cr": cr_folder, "hear": hear_folder}[family]
    result = subprocess.run([sys.executable, "-c", WITHOUT_PACKAGE, str(folder), str(FSDD_8K[1]), str(cut)],
                            capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["pipeline"].startswith("transformers_modules") and not out["imported"]
    assert np.abs(np.array(out["file"]) - np.array(out["array"])).max() <= 1e-6
    assert out["refused"] and "cut.flac" in out["refused"]
