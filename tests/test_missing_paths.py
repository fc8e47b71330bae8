"""A missing local path is reported as "no such folder: ..." by every loader and from_pretrained call site, not as
a Hub failure ("couldn't connect to huggingface.co", "Repo id must be in the form ...")."""
import importlib.util
from pathlib import Path

import pytest
from huggingface_hub import constants

from hf_audio_cr.data import load_audiofolder, load_audioset, load_esc50, load_speech_commands, load_voxceleb1
from hf_audio_cr.models.hear_variants import build_hear_classifier
from hf_audio_cr.paths import check_local_or_hub, looks_local
from hf_audio_cr.training import load_teacher

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """A user's project folder with a data/ and a runs/ folder, offline, with an empty Hub cache."""
    (tmp_path / "data").mkdir()
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return tmp_path


@pytest.mark.parametrize("load, path", [
    (lambda p: load_speech_commands(p, version=1), "data/speech_commands_v0.01"),  # one '/', data/ exists
    (lambda p: load_speech_commands(p, version=2), "speech_commands_v0.02/"),
    (load_esc50, "./ESC-50-master"),
    (lambda p: load_audioset(p, split="train"), "data/audioset/balanced"),
    (load_voxceleb1, "voxceleb1"),
    (load_audiofolder, "my_clips"),
])
def test_data_loaders_name_the_missing_folder(user_dir, load, path):
    with pytest.raises(FileNotFoundError, match=f"^no such folder: {path}"):
        load(path)


def test_hub_shaped_name_that_is_neither_local_nor_reachable(user_dir):
    # No data/ folder to tell it apart: offline and not in the cache, it is still "no such folder" first.
    with pytest.raises(FileNotFoundError, match=r"^no such folder: mydata/speech_commands .*not in the local cache"):
        load_speech_commands("mydata/speech_commands", version=1)
    with pytest.raises(FileNotFoundError, match=r"^no such folder: speech commands.*not a valid Hub id"):
        load_speech_commands("speech commands", version=1)


def test_hub_ids_and_existing_folders_pass(user_dir, monkeypatch):
    assert check_local_or_hub("data") == "data"
    (user_dir / "hub-cache" / "models--someone--tiny-hear").mkdir(parents=True)
    assert check_local_or_hub("someone/tiny-hear") == "someone/tiny-hear"  # cached: offline loading can work
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    assert check_local_or_hub("agkphysics/AudioSet", "dataset") == "agkphysics/AudioSet"  # left to the Hub
    assert looks_local("runs/hear/mam") and looks_local("~/models/x") and not looks_local("someone/model")


def test_from_pretrained_call_sites_name_the_missing_folder(user_dir):
    with pytest.raises(FileNotFoundError, match="^no such folder: runs/hear_mam"):
        build_hear_classifier("full", "runs/hear_mam", id2label={0: "a", 1: "b"})
    with pytest.raises(FileNotFoundError, match="^no such folder: teachers/ssast-base"):
        load_teacher("teachers/ssast-base")
    spec = importlib.util.spec_from_file_location("train_cr_audiomae", ROOT / "scripts" / "train_cr_audiomae.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    model_args = type("ModelArgs", (), {"model_name_or_path": "runs/cr/converted", "config_overrides": None})()
    with pytest.raises(FileNotFoundError, match="^no such folder: runs/cr/converted .*--model_name_or_path"):
        script.build_model(model_args, "527")
