"""What several test modules share, imported as ``from _helpers import ...`` (conftest.py keeps only fixtures):
the real recordings and how they are decoded, tiny model configs, a copy of the checkout for README commands,
the ESC-50 archive layout, and the child-process wrapper that pauses a training script for a deterministic kill."""
import csv
import shutil
import subprocess
from pathlib import Path

import datasets
import numpy as np

from hf_audio_cr.data.audio_files import load_audio_file

ROOT = Path(__file__).resolve().parents[1]
AUDIO_DIR = ROOT / "tests" / "fixtures" / "audio"
REAL_CLIPS = ("robin.ogg", "trumpet.ogg", "speech_female.ogg")
DRUMS = Path("/usr/share/hydrogen/data/drumkits/GMRockKit")
DIGITS = Path("/usr/share/asterisk/sounds/en/digits")


def load_real_audio(name, sampling_rate: int = 16000) -> np.ndarray:
    """A fixture recording (a name in ``AUDIO_DIR``, or any path) as mono float32 at ``sampling_rate``."""
    return load_audio_file(AUDIO_DIR / name, sampling_rate)


# ------------------------------------------------------------------------------------------ tiny configs
# Tiny HEAR tokenizer / MAM model / AST teacher of the HEAR training tests (test_hear_training_*.py).
TINY_TOKENIZER = dict(
    hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=1, max_relative_position=64,
    codebook_size=64, code_vector_size=8, decoder_hidden_size=32, decoder_intermediate_size=64,
    decoder_num_attention_heads=2, decoder_num_hidden_layers=1, hidden_dropout=0.0, attention_dropout=0.0,
)
TINY_HEAR = dict(
    hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=1, window_length=64,
    window_overlap=16, spectrum_hidden_size=16, task_hidden_size=32, task_intermediate_size=64,
    task_num_attention_heads=2, classifier_hidden_size=16, hidden_dropout=0.0, attention_dropout=0.0,
)
TINY_TEACHER = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_length=128)
# A tiny CR-AudioMAE (1.28 s input): the size most CR-AudioMAE tests build.
TINY_CR_AUDIOMAE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                        max_length=128)
# A tiny HEAR classifier with 20-token windows (short clips already span several windows).
TINY_HEAR_WINDOWED = dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2,
                          window_length=20, window_overlap=5, spectrum_hidden_size=16, task_hidden_size=32,
                          task_intermediate_size=64, task_num_attention_heads=2, classifier_hidden_size=16)




def save_tiny_classifier(folder: Path, family: str = "cr_audiomae", **config) -> Path:
    """A seeded tiny 3-label classifier (one layer) and its feature extractor saved in ``folder``: a model folder
    as pipeline("audio-classification") users load it."""
    import torch

    from hf_audio_cr import (
        AudioMAEFeatureExtractor,
        CRAudioMAEConfig,
        CRAudioMAEForAudioClassification,
        HEARConfig,
        HEARFeatureExtractor,
        HEARForAudioClassification,
    )

    torch.manual_seed(0)
    if family == "cr_audiomae":
        settings = dict(TINY_CR_AUDIOMAE, num_hidden_layers=1, num_labels=3, **config)
        CRAudioMAEForAudioClassification(CRAudioMAEConfig(**settings)).save_pretrained(folder)
        AudioMAEFeatureExtractor(max_length=128).save_pretrained(folder)  # long_audio='stream' (the default)
    else:
        settings = dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=1,
                        spectrum_hidden_size=16, task_hidden_size=32, task_intermediate_size=64,
                        task_num_attention_heads=2, classifier_hidden_size=16, num_labels=3, **config)
        HEARForAudioClassification(HEARConfig(**settings)).eval().save_pretrained(folder)
        HEARFeatureExtractor().save_pretrained(folder)
    return Path(folder)


# ------------------------------------------------------------------------------------- real data layouts
# Real recordings for pre-training: bird, trumpet, read speech, cymbal, bell, spoken digits.
PRETRAINING_FILES = [
    AUDIO_DIR / "robin.ogg", AUDIO_DIR / "trumpet.ogg", AUDIO_DIR / "speech_female.ogg",
    DRUMS / "Crash-Hard.wav", DRUMS / "Bell-Hard.wav", DIGITS / "1.wav", DIGITS / "7.wav", DIGITS / "9.wav",
]


def load_file(path: Path) -> np.ndarray:
    """Any real recording as 16 kHz mono float32."""
    return load_audio_file(path, 16000)


def pretraining_dataset() -> datasets.Dataset:
    """The pre-training recordings, decoded to 16 kHz, as rows `{"audio": {"array", "sampling_rate"}, "video_id"}`."""
    rows = [
        {"audio": {"array": load_file(p), "sampling_rate": 16000}, "video_id": p.name} for p in PRETRAINING_FILES
    ]
    return datasets.Dataset.from_list(rows)


# ESC-50 original layout (meta/esc50.csv + audio/): two real classes, one clip of each per fold.
ESC_KNOCK = ["Kick-Hard", "Kick-Soft", "Tom1-Hard", "Tom2-Hard", "TomFloor-Hard"]  # door_wood_knock (30)
ESC_BELLS = ["Bell-Hard", "Bell-Soft", "Cowbell-Hard", "Cowbell-Soft", "Bell-Med"]  # church_bells (46)


def write_esc50_layout(root: Path) -> Path:
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "audio").mkdir(exist_ok=True)
    rows = []
    for fold in range(1, 6):
        for target, category, names in ((30, "door_wood_knock", ESC_KNOCK), (46, "church_bells", ESC_BELLS)):
            source = names[fold - 1]
            name = f"{fold}-{source}-A-{target}.wav"
            shutil.copy(DRUMS / f"{source}.wav", root / "audio" / name)
            rows.append({"filename": name, "fold": fold, "target": target, "category": category})
    with open(root / "meta" / "esc50.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


# ------------------------------------------------------------------------------------ a fresh checkout
# What .gitignore leaves out of a clone, for a checkout without git.
_NOT_IN_A_CLONE = (".git", ".venv", "build", "outputs", "runs", "demo_output", "__pycache__", "*.egg-info",
                   ".pytest_cache", "*.pyc")


def copy_checkout(dest: Path) -> Path:
    """A copy of the checkout in ``dest``: what a fresh clone holds (tracked and untracked-but-not-ignored files,
    so uncommitted edits too), for running the README's commands with their default relative paths without
    touching this tree. Returns ``dest``."""
    dest = Path(dest)
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                capture_output=True, check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(*_NOT_IN_A_CLONE), symlinks=True)
        return dest
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file() and not source.is_symlink():  # deleted-but-staged files and the .venv link are skipped
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


# ------------------------------------------------------------------------- a deterministic crash point
# `python -c PAUSE_AFTER_SAVE MARKER STEP SCRIPT ARGS...` runs SCRIPT as `python SCRIPT ARGS...` would, with one
# TrainerCallback added to every Trainer it builds: once checkpoint-STEP is saved completely, the callback writes
# MARKER and blocks, so the parent can SIGKILL the run at a known point instead of racing it.
PAUSE_AFTER_SAVE = r"""
import runpy, sys, time
from pathlib import Path

import transformers

marker, step, script = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
sys.argv = sys.argv[3:]
sys.path[0] = str(Path(script).resolve().parent)  # as `python SCRIPT` sets it


class PauseAfterSave(transformers.TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == step:
            marker.write_text(str(step))
            while True:  # wait here for SIGKILL
                time.sleep(1)


_init = transformers.Trainer.__init__


def __init__(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    if not any(isinstance(c, PauseAfterSave) for c in self.callback_handler.callbacks):
        self.add_callback(PauseAfterSave())


transformers.Trainer.__init__ = __init__
runpy.run_path(script, run_name="__main__")
"""
