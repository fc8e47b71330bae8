"""Downstream sets as ``datasets.DatasetDict`` with ``audio`` (16 kHz) and a ``ClassLabel`` ``label``.

ESC-50 (5-fold cross-validation), Speech Commands v1 (12 classes, HEAR / SUPERB) and v2 (35 classes),
VoxCeleb1 speaker identification (1,251 speakers) and any ``audiofolder``. Each loader takes a Hub id (for the
sets the Hub serves as data files) or a local path, so everything runs offline on local copies.

The Hub's ``google/speech_commands`` and ``superb`` repos are loading scripts, which ``datasets`` 5 no longer
runs: Speech Commands loads from a parquet mirror in ``google/speech_commands``' schema (``file``, ``audio``,
``label`` ClassLabel, ``is_unknown``, ``speaker_id``, ``utterance_id``) or from the original archive layout.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import datasets
import numpy as np
import soundfile as sf
from datasets import Audio, ClassLabel, DatasetDict

from ..paths import check_local_or_hub, require_folder
from .quality import with_safe_audio
from .tasks import DOWNSTREAM_TASKS

PathLike = str | os.PathLike

# ESC-50 classes by `target` (0-49), as in the dataset's meta/esc50.csv.
ESC50_CLASSES = (
    "dog", "rooster", "pig", "cow", "frog", "cat", "hen", "insects", "sheep", "crow",
    "rain", "sea_waves", "crackling_fire", "crickets", "chirping_birds", "water_drops", "wind", "pouring_water",
    "toilet_flush", "thunderstorm",
    "crying_baby", "sneezing", "clapping", "breathing", "coughing", "footsteps", "laughing", "brushing_teeth",
    "snoring", "drinking_sipping",
    "door_wood_knock", "mouse_click", "keyboard_typing", "door_wood_creaks", "can_opening", "washing_machine",
    "vacuum_cleaner", "clock_alarm", "clock_tick", "glass_breaking",
    "helicopter", "chainsaw", "siren", "car_horn", "engine", "train", "church_bells", "airplane", "fireworks",
    "hand_saw",
)
ESC50_HUB_ID = "ashraq/esc50"

SPEECH_COMMANDS_KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SPEECH_COMMANDS_V1_WORDS = SPEECH_COMMANDS_KEYWORDS + (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
)
SPEECH_COMMANDS_V2_WORDS = SPEECH_COMMANDS_V1_WORDS + ("backward", "forward", "follow", "learn", "visual")
SILENCE, UNKNOWN, BACKGROUND_NOISE = "_silence_", "_unknown_", "_background_noise_"
# 12-class task (GSCv1 in HEAR, KS in SUPERB): 10 keywords, the 20 other words as _unknown_, and _silence_.
SPEECH_COMMANDS_12_CLASSES = SPEECH_COMMANDS_KEYWORDS + (UNKNOWN, SILENCE)
# 35-class task (GSCv2 in HEAR): every word of v2.
SPEECH_COMMANDS_35_CLASSES = tuple(sorted(SPEECH_COMMANDS_V2_WORDS))

_AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a")


def _finish(dataset_dict: DatasetDict, sampling_rate: int) -> DatasetDict:
    """Audio at ``sampling_rate``, decoded per row by the bad-audio-safe path (``with_safe_audio``): a 0-byte or
    non-audio file becomes a marker the quality policy skips and counts (training) or names (evaluation)."""
    return with_safe_audio(dataset_dict, sampling_rate)


def _load_files(path: PathLike, revision: str | None, data_files=None, split=None, cache_dir=None):
    """Hub id, local folder (Hub snapshot or folder of parquet files) or parquet files -> DatasetDict."""
    path = os.fspath(path)
    if data_files is not None or os.path.isfile(path):
        return datasets.load_dataset("parquet", data_files=data_files or path, split=split, cache_dir=cache_dir)
    path = check_local_or_hub(path, "dataset", "Pass a local copy of the set or a Hub dataset id.")
    return datasets.load_dataset(path, split=split, revision=revision, cache_dir=cache_dir)


# ----- ESC-50 -------------------------------------------------------------------------------------------------
def load_esc50(
    path: PathLike = ESC50_HUB_ID,
    revision: str | None = None,
    sampling_rate: int = 16000,
    data_files=None,
    cache_dir: str | None = None,
) -> DatasetDict:
    """ESC-50 (2,000 five-second clips, 50 classes, folds 1-5) as ``DatasetDict(train=...)``.

    Sources: the Hub's ``ashraq/esc50`` schema (``filename``, ``fold``, ``target``, ``category``, ``audio``; a Hub
    id, a local snapshot or parquet files), or the original archive layout (``meta/esc50.csv`` + ``audio/``).
    ``label`` is ``target`` as a ``ClassLabel`` with the category names; ``fold`` is kept for
    :func:`esc50_folds` (the official protocol is 5-fold cross-validation).
    """
    root = Path(os.fspath(path))
    if (root / "meta" / "esc50.csv").is_file():
        with open(root / "meta" / "esc50.csv", newline="", encoding="utf-8") as f:
            records = list(csv.DictReader(f))
        table = {
            "filename": [r["filename"] for r in records],
            "fold": [int(r["fold"]) for r in records],
            "target": [int(r["target"]) for r in records],
            "category": [r["category"] for r in records],
            "audio": [str(root / "audio" / r["filename"]) for r in records],
        }
        missing = [p for p in table["audio"] if not os.path.isfile(p)]
        if missing:
            raise FileNotFoundError(f"{root}/meta/esc50.csv lists {len(missing)} clips missing from {root}/audio (first: {missing[0]}).")
        dataset = datasets.Dataset.from_dict(table, features=datasets.Features(
            filename=datasets.Value("string"), fold=datasets.Value("int64"), target=datasets.Value("int64"),
            category=datasets.Value("string"), audio=Audio(),
        ))
    else:
        dataset = _load_files(path, revision, data_files, split="train", cache_dir=cache_dir)
    missing_columns = {"fold", "target", "category", "audio"} - set(dataset.column_names)
    if missing_columns:
        raise ValueError(f"load_esc50({os.fspath(path)!r}): columns {sorted(missing_columns)} missing (found {dataset.column_names}).")
    # The class names are fixed by `target`; check the data agrees instead of trusting either blindly.
    pairs = set(zip(dataset["target"], dataset["category"]))
    wrong = sorted((t, c) for t, c in pairs if not 0 <= t < 50 or ESC50_CLASSES[t] != c)
    if wrong:
        raise ValueError(f"load_esc50: target/category pairs {wrong[:3]} do not match ESC-50's class list.")
    dataset = dataset.rename_column("target", "label").cast_column("label", ClassLabel(names=list(ESC50_CLASSES)))
    return _finish(DatasetDict(train=dataset), sampling_rate)


def esc50_folds(dataset: DatasetDict | datasets.Dataset, test_fold: int) -> DatasetDict:
    """One split of ESC-50's 5-fold cross-validation: ``train`` = the other four folds, ``test`` = ``test_fold``."""
    if isinstance(dataset, DatasetDict):
        dataset = dataset["train"]
    if test_fold not in (1, 2, 3, 4, 5):
        raise ValueError(f"esc50_folds(test_fold={test_fold}): ESC-50 folds are 1-5.")
    folds = np.asarray(dataset["fold"])
    return DatasetDict(
        train=dataset.select(np.flatnonzero(folds != test_fold)), test=dataset.select(np.flatnonzero(folds == test_fold))
    )


def esc50_cross_validation(dataset: DatasetDict | datasets.Dataset, test_folds=(1, 2, 3, 4, 5)) -> list:
    """The ``(test_fold, DatasetDict(train, test))`` splits of ESC-50's 5-fold protocol (all five by default);
    report the mean accuracy over them."""
    return [(fold, esc50_folds(dataset, fold)) for fold in test_folds]


# ----- Speech Commands ----------------------------------------------------------------------------------------
def _speech_commands_classes(version: int, num_classes: int | None) -> tuple:
    if version not in (1, 2):
        raise ValueError(f"load_speech_commands(version={version}): version is 1 or 2.")
    num_classes = num_classes or (12 if version == 1 else 35)
    if num_classes == 12:
        return SPEECH_COMMANDS_12_CLASSES
    if num_classes == 35 and version == 2:
        return SPEECH_COMMANDS_35_CLASSES
    raise ValueError(f"load_speech_commands: num_classes={num_classes} is not a task for v{version} (12, or 35 for v2).")


def _class_of_word(word: str, classes: tuple) -> str | None:
    if word in classes:
        return word
    if UNKNOWN in classes and word not in (SILENCE, BACKGROUND_NOISE):
        return UNKNOWN
    return None  # a word outside the task (e.g. a v2-only word in a 12-class v1 task never happens; noise)


def _silence_clips(noise_dir: Path, seconds: float = 1.0) -> dict:
    """Cut every background-noise recording into 1 s clips and deal them to splits by position in the file
    (first 80 % train, next 10 % validation, last 10 % test), so the splits never share noise."""
    by_split = {"train": [], "validation": [], "test": []}
    for file in sorted(noise_dir.iterdir()):
        if file.suffix.lower() not in _AUDIO_SUFFIXES:
            continue
        wave, rate = sf.read(file, dtype="float32", always_2d=True)
        wave = wave.mean(axis=1)
        step = int(seconds * rate)
        chunks = [wave[i : i + step] for i in range(0, len(wave) - step + 1, step)]
        for index, chunk in enumerate(chunks):
            position = index / max(len(chunks), 1)
            split = "train" if position < 0.8 else "validation" if position < 0.9 else "test"
            by_split[split].append({"array": chunk, "sampling_rate": rate, "file": f"{BACKGROUND_NOISE}/{file.name}#{index}"})
    return by_split


def _speech_commands_from_archive(root: Path, classes: tuple) -> DatasetDict:
    def listed(name):
        listing = root / name
        if not listing.is_file():
            raise FileNotFoundError(f"{listing}: the Speech Commands archive layout needs {name}.")
        return {line.strip() for line in listing.read_text().splitlines() if line.strip()}

    validation, test = listed("validation_list.txt"), listed("testing_list.txt")
    rows = {"train": [], "validation": [], "test": []}
    for word_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name != BACKGROUND_NOISE):
        label = _class_of_word(word_dir.name, classes)
        if label is None:
            continue
        for file in sorted(word_dir.iterdir()):
            if file.suffix.lower() not in _AUDIO_SUFFIXES:
                continue
            relative = f"{word_dir.name}/{file.name}"
            split = "test" if relative in test else "validation" if relative in validation else "train"
            rows[split].append({"file": relative, "audio": str(file), "label": label, "speaker_id": file.name.split("_")[0]})
    if SILENCE in classes and (root / BACKGROUND_NOISE).is_dir():
        for split, clips in _silence_clips(root / BACKGROUND_NOISE).items():
            rows[split] += [{"file": c["file"], "audio": c, "label": SILENCE, "speaker_id": ""} for c in clips]
    features = datasets.Features(
        file=datasets.Value("string"), audio=Audio(), label=ClassLabel(names=list(classes)), speaker_id=datasets.Value("string")
    )
    return DatasetDict({
        split: datasets.Dataset.from_list(split_rows, features=features) for split, split_rows in rows.items() if split_rows
    })


def _speech_commands_from_parquet(dataset_dict: DatasetDict, classes: tuple) -> DatasetDict:
    result = {}
    for split, dataset in dataset_dict.items():
        names = dataset.features["label"].names
        # google/speech_commands: v0.01 has the 30 words + _silence_, `is_unknown` marks the 20 non-keywords.
        mapping = np.array([classes.index(c) if (c := _class_of_word(name, classes)) else -1 for name in names])
        dataset = dataset.map(
            lambda labels: {"label": mapping[np.asarray(labels)].tolist()}, input_columns="label", batched=True,
            features=datasets.Features({**dataset.features, "label": datasets.Value("int64")}),
        )
        dataset = dataset.filter(lambda labels: [label >= 0 for label in labels], input_columns="label", batched=True)
        result[split] = dataset.cast_column("label", ClassLabel(names=list(classes)))
    return DatasetDict(result)


def load_speech_commands(
    path: PathLike,
    version: int = 1,
    num_classes: int | None = None,
    revision: str | None = None,
    sampling_rate: int = 16000,
    cache_dir: str | None = None,
) -> DatasetDict:
    """Speech Commands v1 / v2 as ``DatasetDict(train, validation, test)``.

    ``path``: the unpacked archive (word folders, ``validation_list.txt``, ``testing_list.txt``,
    ``_background_noise_``) or a parquet mirror in ``google/speech_commands``' schema (Hub id or local folder).
    Tasks: v1 -> 12 classes (10 keywords, ``_unknown_`` for the 20 other words, ``_silence_`` from 1 s cuts of
    the background noise), as in HEAR's GSCv1 / SUPERB KS; v2 -> 35 classes (every word, no silence / unknown),
    HEAR's GSCv2. ``num_classes=12`` also works for v2.
    """
    classes = _speech_commands_classes(version, num_classes)
    root = Path(os.fspath(path))
    if (root / "validation_list.txt").is_file() or (root / "testing_list.txt").is_file():
        dataset_dict = _speech_commands_from_archive(root, classes)
    else:
        dataset_dict = _load_files(path, revision, cache_dir=cache_dir)
        if "label" not in dataset_dict[next(iter(dataset_dict))].features:
            raise ValueError(f"load_speech_commands({os.fspath(path)!r}): expected google/speech_commands' schema with a `label` ClassLabel.")
        dataset_dict = _speech_commands_from_parquet(dataset_dict, classes)
    return _finish(dataset_dict, sampling_rate)


# ----- VoxCeleb1 ----------------------------------------------------------------------------------------------
def load_voxceleb1(
    path: PathLike, split_file: PathLike | None = None, sampling_rate: int = 16000
) -> DatasetDict:
    """VoxCeleb1 speaker identification (the ``iden_split.txt`` protocol: 1 train / 2 validation / 3 test).

    ``path``: the folder holding ``wav/<speaker>/<video>/<utterance>.wav`` (or the ``wav`` folder itself);
    ``split_file`` defaults to ``<path>/iden_split.txt``. ``label`` is a ``ClassLabel`` over the speakers of the
    split file (1,251 for the full set), in sorted id order.
    """
    root = require_folder(path, "VoxCeleb1 needs the folder holding wav/ and iden_split.txt.")
    split_file = Path(split_file) if split_file else root / "iden_split.txt"
    if not split_file.is_file():
        raise FileNotFoundError(f"{split_file}: VoxCeleb1 identification needs iden_split.txt (lines '1 id10001/<video>/00001.wav').")
    wav_root = root / "wav" if (root / "wav").is_dir() else root
    names = {"1": "train", "2": "validation", "3": "test"}
    rows = {"train": [], "validation": [], "test": []}
    for number, line in enumerate(split_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        split, relative = line.split(maxsplit=1)
        if split not in names:
            raise ValueError(f"{split_file}:{number}: split must be 1, 2 or 3, got {split!r}.")
        relative = relative.strip()
        rows[names[split]].append({"file": relative, "audio": str(wav_root / relative), "speaker_id": relative.split("/")[0]})
    speakers = sorted({row["speaker_id"] for split_rows in rows.values() for row in split_rows})
    missing = [row["audio"] for split_rows in rows.values() for row in split_rows if not os.path.isfile(row["audio"])]
    if missing:
        raise FileNotFoundError(f"{split_file} lists {len(missing)} files missing under {wav_root} (first: {missing[0]}).")
    features = datasets.Features(
        file=datasets.Value("string"), audio=Audio(), speaker_id=datasets.Value("string"), label=ClassLabel(names=speakers)
    )
    dataset_dict = DatasetDict({
        split: datasets.Dataset.from_list([{**row, "label": row["speaker_id"]} for row in split_rows], features=features)
        for split, split_rows in rows.items() if split_rows
    })
    return _finish(dataset_dict, sampling_rate)


# ----- any folder of class subfolders -------------------------------------------------------------------------
def load_audiofolder(path: PathLike, sampling_rate: int = 16000, **kwargs) -> DatasetDict:
    """``datasets``' ``audiofolder`` builder (``<split>/<class>/<clip>`` or ``<class>/<clip>``, optional
    ``metadata.csv``) with ``audio`` at ``sampling_rate`` and the folder names as the ``label`` ClassLabel."""
    require_folder(path, "load_audiofolder needs a local folder of <class>/<clip> (or <split>/<class>/<clip>) files.")
    dataset_dict = datasets.load_dataset("audiofolder", data_dir=os.fspath(path), **kwargs)
    return _finish(dataset_dict, sampling_rate)


# ----- one entry point for HEAR's downstream tasks (scripts/finetune_hear.py) ---------------------------------------


def load_downstream(task: str, data_path: str | None) -> DatasetDict:
    """The set of ``task`` (one of ``DOWNSTREAM_TASKS``) through the loaders above (audio at 16 kHz, ``label``
    ClassLabel); only ESC-50 has a default source (the Hub's ``ashraq/esc50``)."""
    if task not in DOWNSTREAM_TASKS:
        raise ValueError(f"task must be one of {DOWNSTREAM_TASKS}, got {task!r}.")
    if task == "esc50":
        return load_esc50(data_path) if data_path else load_esc50()
    if data_path is None:
        raise ValueError(f"task={task!r} needs data_path (a local copy of the set).")
    if task.startswith("speech_commands"):
        return load_speech_commands(data_path, version=int(task[-1]))
    if task == "voxceleb1":
        return load_voxceleb1(data_path)
    return load_audiofolder(data_path)


# ----- Free Spoken Digit Dataset ------------------------------------------------------------------------------
# 3,000 real recordings (6 speakers x 10 digits x 50 repetitions, 8 kHz, CC BY-SA 4.0), shipped inside the
# package as FLAC in parquet (resources/fsdd.parquet, attribution in resources/LICENSES.md).
FSDD_PARQUET = Path(__file__).parent / "resources" / "fsdd.parquet"
FSDD_DIGITS = tuple(str(d) for d in range(10))
FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
FSDD_TASKS = {"digit": FSDD_DIGITS, "speaker": FSDD_SPEAKERS}
FSDD_TEST_INDICES = tuple(range(0, 5))  # the dataset's own split: repetitions 0-4 are the test set
FSDD_VALIDATION_INDICES = tuple(range(5, 10))  # ours, carved from the official training repetitions 5-49


def _fsdd_features() -> datasets.Features:
    return datasets.Features(
        file=datasets.Value("string"), audio=Audio(), digit=ClassLabel(names=list(FSDD_DIGITS)),
        speaker=ClassLabel(names=list(FSDD_SPEAKERS)), index=datasets.Value("int64"),
    )


def _fsdd_records(recordings: PathLike) -> list:
    """``recordings/{digit}_{speaker}_{index}.wav`` -> rows; a file named otherwise is an error naming it."""
    rows = []
    for file in sorted(Path(recordings).iterdir()):
        if file.suffix.lower() not in _AUDIO_SUFFIXES:
            continue
        parts = file.stem.split("_")
        if len(parts) != 3 or parts[0] not in FSDD_DIGITS or parts[1] not in FSDD_SPEAKERS or not parts[2].isdigit():
            raise ValueError(f"{file}: FSDD files are named {{digit}}_{{speaker}}_{{index}}.wav with a speaker in {FSDD_SPEAKERS}.")
        rows.append({"file": file.name, "audio": str(file), "digit": parts[0], "speaker": parts[1], "index": int(parts[2])})
    if not rows:
        raise FileNotFoundError(f"{recordings}: no FSDD recordings ({{digit}}_{{speaker}}_{{index}}.wav) found.")
    return rows


def write_fsdd_parquet(path: PathLike, output: PathLike = FSDD_PARQUET, row_group_size: int = 100) -> Path:
    """Pack an FSDD checkout (``path/recordings/*.wav`` or the ``recordings`` folder) into one parquet file:
    ``file``, ``audio`` (lossless FLAC at the original 8 kHz, 16 bit), ``digit`` and ``speaker`` ClassLabels,
    ``index`` (repetition 0-49). This is how ``resources/fsdd.parquet`` was made."""
    from .audioset import encode_flac, write_audio_parquet

    root = Path(os.fspath(path))
    rows = _fsdd_records(root / "recordings" if (root / "recordings").is_dir() else root)
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    columns["audio"] = [{"bytes": encode_flac(sf.read(file, dtype="float32")), "path": Path(file).with_suffix(".flac").name}
                        for file in columns["audio"]]
    return write_audio_parquet(columns, _fsdd_features(), output, row_group_size=row_group_size)


def load_fsdd(
    path: PathLike | None = None,
    task: str = "digit",
    validation_indices: tuple | None = FSDD_VALIDATION_INDICES,
    sampling_rate: int = 16000,
    cache_dir: str | None = None,
) -> DatasetDict:
    """The Free Spoken Digit Dataset as ``DatasetDict(train, validation, test)`` for ``task``:
    ``"digit"`` (10 classes, the Speech Commands analogue) or ``"speaker"`` (6 speakers, the VoxCeleb analogue).

    ``path``: ``None`` (the copy shipped in the package), a parquet file in its schema, or an FSDD checkout
    (``recordings/{digit}_{speaker}_{index}.wav``). Splits: the dataset's own -- repetitions 0-4 are ``test``
    (300 clips), 5-49 training; ``validation`` is repetitions ``validation_indices`` (default 5-9, 300 clips) taken
    out of training for choosing hyperparameters (``None``: no validation split, ``train`` is all of 5-49).
    Every split has every speaker and digit. ``label`` is the task's ``ClassLabel``; ``digit``, ``speaker``,
    ``index`` and ``file`` stay as columns (:func:`fsdd_speaker_folds` uses ``speaker``).
    """
    if task not in FSDD_TASKS:
        raise ValueError(f"load_fsdd(task={task!r}): the tasks are {sorted(FSDD_TASKS)}.")
    path = FSDD_PARQUET if path is None else Path(os.fspath(path))
    if path.is_dir():
        rows = _fsdd_records(path / "recordings" if (path / "recordings").is_dir() else path)
        dataset = datasets.Dataset.from_list(rows, features=_fsdd_features())
    elif path.is_file():
        dataset = datasets.load_dataset("parquet", data_files=str(path), split="train", cache_dir=cache_dir)
    else:
        raise FileNotFoundError(f"load_fsdd({os.fspath(path)!r}): no such FSDD folder or parquet file.")
    missing = {"audio", "digit", "speaker", "index"} - set(dataset.column_names)
    if missing:
        raise ValueError(f"load_fsdd({os.fspath(path)!r}): columns {sorted(missing)} missing (found {dataset.column_names}).")
    dataset = dataset.add_column("label", dataset[task]).cast_column("label", dataset.features[task])
    index = np.asarray(dataset["index"])
    test = np.isin(index, FSDD_TEST_INDICES)
    validation = np.isin(index, validation_indices or ()) & ~test
    splits = {"train": np.flatnonzero(~test & ~validation), "validation": np.flatnonzero(validation), "test": np.flatnonzero(test)}
    return _finish(DatasetDict({name: dataset.select(rows) for name, rows in splits.items() if len(rows)}), sampling_rate)


def fsdd_speaker_folds(dataset: DatasetDict | datasets.Dataset, test_speaker: str) -> DatasetDict:
    """One fold of leave-one-speaker-out: ``test`` = every clip of ``test_speaker`` (all repetitions),
    ``train`` = every clip of the other five -- digit recognition on a voice never heard in training."""
    if isinstance(dataset, DatasetDict):
        dataset = datasets.concatenate_datasets([dataset[name] for name in dataset])
    if test_speaker not in FSDD_SPEAKERS:
        raise ValueError(f"fsdd_speaker_folds(test_speaker={test_speaker!r}): FSDD speakers are {FSDD_SPEAKERS}.")
    speaker = np.asarray(dataset["speaker"])
    held_out = FSDD_SPEAKERS.index(test_speaker)
    return DatasetDict(train=dataset.select(np.flatnonzero(speaker != held_out)), test=dataset.select(np.flatnonzero(speaker == held_out)))


def fsdd_leave_one_speaker_out(dataset: DatasetDict | datasets.Dataset) -> list:
    """The six ``(speaker, DatasetDict(train, test))`` folds of the digit task; report the mean over them."""
    return [(speaker, fsdd_speaker_folds(dataset, speaker)) for speaker in FSDD_SPEAKERS]
