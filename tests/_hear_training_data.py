"""Real audio and tiny configs shared by the HEAR training tests (test_hear_training_*.py)."""
import csv
import shutil
from pathlib import Path

import datasets
import numpy as np

from conftest import AUDIO_DIR, load_real_audio

DRUMS = Path("/usr/share/hydrogen/data/drumkits/GMRockKit")
DIGITS = Path("/usr/share/asterisk/sounds/en/digits")

# Real recordings for pre-training: bird, trumpet, read speech, cymbal, bell, spoken digits.
PRETRAINING_FILES = [
    AUDIO_DIR / "robin.ogg", AUDIO_DIR / "trumpet.ogg", AUDIO_DIR / "speech_female.ogg",
    DRUMS / "Crash-Hard.wav", DRUMS / "Bell-Hard.wav", DIGITS / "1.wav", DIGITS / "7.wav", DIGITS / "9.wav",
]

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


def load_file(path: Path) -> np.ndarray:
    """Any real recording as 16 kHz mono float32 (conftest reads AUDIO_DIR / name: an absolute path wins)."""
    return load_real_audio(str(Path(path).resolve()))


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
