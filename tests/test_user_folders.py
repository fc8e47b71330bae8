"""A user's own folders through the real loaders, DataLoader and Trainer: broken files (a 0-byte .wav, a text file
named .flac) are skipped and counted in training and named in evaluation, a 10-minute recording costs what a
6 s crop costs, a one-clip training batch trains, and every error names the file (issue 11, items 2-5)."""
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from _helpers import DIGITS, DRUMS, TINY_HEAR
from hf_audio_cr.data import (
    ESC50_CLASSES,
    AudioClassificationCollator,
    AudioQualityPolicy,
    BadAudioError,
    HEARPretrainingCollator,
    load_audiofolder,
    load_esc50,
    load_pretraining_audio,
    load_speech_commands,
    load_voxceleb1,
)
from hf_audio_cr.experiments.hear_downstream import finetune_and_evaluate
from hf_audio_cr.models.hear import HEARFeatureExtractor
from hf_audio_cr.models.hear_variants import build_hear_classifier
from hf_audio_cr.training.hear_trainers import HEARFineTuningArguments, HEARFineTuningTrainer
from hf_audio_cr.training.metrics import compute_accuracy

ALSA = Path("/usr/share/sounds/alsa")
TEXT = "This is a README, not audio.\n"
COMMON = dict(
    warmup_steps=0, lr_scheduler_type="constant", report_to=[], save_strategy="no", use_cpu=True,
    dataloader_num_workers=0, disable_tqdm=True, seed=0, learning_rate=1e-3, logging_steps=1,
)


def break_files(folder: Path) -> tuple:
    """A 0-byte .wav and a text file named .flac: what a user's folder holds after a failed copy."""
    empty, text = folder / "empty.wav", folder / "notes.flac"
    empty.write_bytes(b"")
    text.write_text(TEXT)
    return empty, text


def drum_folder(root: Path, splits=("train", "test"), broken_in=("train",)) -> dict:
    """<split>/<class>/<clip> of real drum hits (44.1 kHz), broken files in the `broken_in` splits."""
    broken = {}
    for split in splits:
        for label, names in {"kick": ["Kick-Hard", "Kick-Soft"], "snare": ["Snare-Hard", "Snare-Soft"]}.items():
            (root / split / label).mkdir(parents=True)
            for name in names:
                shutil.copy(DRUMS / f"{name}.wav", root / split / label / f"{name}.wav")
        if split in broken_in:
            broken[split] = break_files(root / split / "kick")
    return broken


def tiny_classifier(names):
    torch.manual_seed(0)
    return build_hear_classifier("scratch", None, dict(enumerate(names)), TINY_HEAR)


# ----- item 3: the same safe decode + quality policy in every loader -------------------------------------------

def esc50_layout(root: Path) -> Path:
    (root / "meta").mkdir(parents=True)
    (root / "audio").mkdir()
    lines = ["filename,fold,target,category,esc10,src_file,take"]
    for i, (name, target) in enumerate((("Kick-Hard", 30), ("Snare-Hard", 30), ("Bell-Hard", 46))):
        filename = f"1-{100 + i}-A-{target}.wav"
        shutil.copy(DRUMS / f"{name}.wav", root / "audio" / filename)
        lines.append(f"{filename},1,{target},{ESC50_CLASSES[target]},False,{i},A")
    (root / "audio" / "1-200-A-30.wav").write_bytes(b"")  # listed in the CSV, 0 bytes on disk
    (root / "audio" / "1-201-A-46.wav").write_text(TEXT)
    lines += ["1-200-A-30.wav,1,30,door_wood_knock,False,9,A", "1-201-A-46.wav,1,46,church_bells,False,9,B"]
    (root / "meta" / "esc50.csv").write_text("\n".join(lines) + "\n")
    return root


def speech_commands_layout(root: Path) -> Path:
    for word, digit in (("yes", "1"), ("no", "2")):
        (root / word).mkdir(parents=True)
        for speaker in ("0a7c2a8d", "0b09edd3"):
            shutil.copy(DIGITS / f"{digit}.wav", root / word / f"{speaker}_nohash_0.wav")
    (root / "yes" / "ffffffff_nohash_0.wav").write_bytes(b"")
    (root / "no" / "eeeeeeee_nohash_0.flac").write_text(TEXT)
    (root / "validation_list.txt").write_text("")
    (root / "testing_list.txt").write_text("")
    return root


def voxceleb1_layout(root: Path) -> Path:
    lines = []
    for speaker, files in {"id10001": [DIGITS / "1.wav", DIGITS / "2.wav"], "id10002": [ALSA / "Front_Left.wav"]}.items():
        for i, file in enumerate(files):
            relative = f"{speaker}/vid{i}/00001.wav"
            (root / "wav" / relative).parent.mkdir(parents=True)
            shutil.copy(file, root / "wav" / relative)
            lines.append(f"1 {relative}")
    for speaker, suffix, broken in (("id10001", "wav", b""), ("id10002", "flac", TEXT.encode())):
        relative = f"{speaker}/broken/00009.{suffix}"
        (root / "wav" / relative).parent.mkdir(parents=True)
        (root / "wav" / relative).write_bytes(broken)
        lines.append(f"1 {relative}")
    (root / "iden_split.txt").write_text("\n".join(lines) + "\n")
    return root


def audiofolder_layout(root: Path) -> Path:
    drum_folder(root, splits=("train",))
    return root


LOADERS = {
    "esc50": (esc50_layout, load_esc50, ("1-200-A-30.wav", "1-201-A-46.wav")),
    "speech_commands": (speech_commands_layout, lambda p: load_speech_commands(p, version=1),
                        ("ffffffff_nohash_0.wav", "eeeeeeee_nohash_0.flac")),
    "voxceleb1": (voxceleb1_layout, load_voxceleb1, ("00009.wav", "00009.flac")),
    "audiofolder": (audiofolder_layout, load_audiofolder, ("empty.wav", "notes.flac")),
}


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_every_loader_skips_and_counts_broken_files_in_training_and_names_them_in_evaluation(name, tmp_path, caplog):
    layout, loader, broken = LOADERS[name]
    train = loader(layout(tmp_path / name))["train"]
    fe = HEARFeatureExtractor()
    policy = AudioQualityPolicy()
    collator = AudioClassificationCollator(fe, label_column="label", quality=policy, return_clip_ids=True)
    # the real DataLoader over the loader's dataset, as Trainer builds it (no crash inside torchcodec)
    loader_ = torch.utils.data.DataLoader(train, batch_size=len(train), collate_fn=collator)
    with caplog.at_level(logging.WARNING, logger="hf_audio_cr.data.quality"):
        batch = next(iter(loader_))
    assert batch["input_values"].shape[0] == len(train) - 2 == len(batch["clip_ids"])
    counts = policy.counts()
    assert counts["clips_skipped"] == 2 and counts["empty"] + counts["unreadable"] == 2
    # item 5: the first warning of each kind names the file, the good clips are named by their files too
    warned = " ".join(record.getMessage() for record in caplog.records)
    assert broken[0] in warned and broken[1] in warned
    assert all("<batch row" not in str(clip) for clip in batch["clip_ids"])
    # evaluation: an error that names the file
    evaluation = AudioClassificationCollator(fe, label_column="label", quality=AudioQualityPolicy(mode="eval"))
    rows = [row for row in train if Path(row["path"]).name in broken]
    assert sorted(Path(row["path"]).name for row in rows) == sorted(broken)
    for row in rows:
        with pytest.raises(BadAudioError, match=re.escape(row["path"])):
            evaluation([row])


def test_hear_folder_loader_for_stages_1_and_2_skips_broken_files(tmp_path):
    for name in ("Crash-Hard", "Bell-Hard", "Kick-Hard"):
        shutil.copy(DRUMS / f"{name}.wav", tmp_path / f"{name}.wav")
    break_files(tmp_path)
    dataset = load_pretraining_audio(str(tmp_path))
    policy = AudioQualityPolicy(min_seconds=0.2)
    collator = HEARPretrainingCollator(HEARFeatureExtractor(), max_seconds=1.28, quality=policy)
    batches = list(torch.utils.data.DataLoader(dataset, batch_size=5, collate_fn=collator))
    assert [b["input_values"].shape[0] for b in batches] == [3]
    assert policy.counts()["empty"] == 1 and policy.counts()["unreadable"] == 1


def test_finetuning_trains_through_broken_files_and_evaluation_names_them(tmp_path):
    broken = drum_folder(tmp_path / "mine", broken_in=("train", "test"))
    data = load_audiofolder(tmp_path / "mine")
    args = HEARFineTuningArguments(
        output_dir=str(tmp_path / "run"), variant="scratch", per_device_train_batch_size=3, num_train_epochs=1, **COMMON
    )
    names = data["train"].features["label"].names
    # training: 6 rows (4 good, 2 broken) in batches of 3; the trainer logs the counts
    metrics = finetune_and_evaluate(args, data["train"], config_overrides=TINY_HEAR, save_model=False)
    assert metrics["bad_audio/clips_skipped"] == 2 and metrics["bad_audio/clips_seen"] == 6
    assert metrics["bad_audio/sample_rate"] == 4  # 44.1 kHz drums, resampled while decoding: counted (item 10)
    # evaluation of a split that holds a broken file: BadAudioError with its path, not a torchcodec crash
    trainer = HEARFineTuningTrainer(
        model=tiny_classifier(names), args=args, compute_metrics=compute_accuracy,
        data_collator=AudioClassificationCollator(
            HEARFeatureExtractor(), label_column="label", quality=AudioQualityPolicy(mode="eval")
        ),
    )
    with pytest.raises(BadAudioError, match="|".join(re.escape(str(path)) for path in broken["test"])):
        trainer.evaluate(data["test"])


# ----- item 2: a training batch of one clip ------------------------------------------------------------------

def test_a_one_clip_training_batch_trains(tmp_path):
    drum_folder(tmp_path / "mine", splits=("train",), broken_in=())
    train = load_audiofolder(tmp_path / "mine")["train"].select([0, 1, 2])
    model = tiny_classifier(train.features["label"].names)
    head = model.classifier.norm
    args = HEARFineTuningArguments(
        output_dir=str(tmp_path / "run"), variant="scratch", per_device_train_batch_size=2, num_train_epochs=1, **COMMON
    )
    trainer = HEARFineTuningTrainer(
        model=model, args=args, train_dataset=train,
        data_collator=AudioClassificationCollator(HEARFeatureExtractor(), label_column="label"),
    )
    result = trainer.train()  # batches of 2 and 1: BatchNorm1d alone raises "Expected more than 1 value"
    assert result.global_step == 2 and np.isfinite(result.metrics["train_loss"])
    assert head.num_batches_tracked == 1  # the 1-clip batch used, and left, the running statistics


# ----- item 4: long files -------------------------------------------------------------------------------------

def long_file_folder(root: Path, seconds: int) -> Path:
    """train/noise/long.wav (real sound: the ALSA noise and speech recordings tiled, 16-bit 48 kHz) next to a kick."""
    parts = [sf.read(ALSA / name, dtype="float32")[0] for name in ("Noise.wav", "Front_Center.wav", "Rear_Right.wav")]
    loop = np.concatenate(parts)
    wave = np.tile(loop, int(np.ceil(seconds * 48000 / len(loop))))[: seconds * 48000]
    path = root / "train" / "noise" / "long.wav"
    path.parent.mkdir(parents=True)
    sf.write(path, wave, 48000, subtype="PCM_16")
    (path.parents[1] / "kick").mkdir()
    shutil.copy(DRUMS / "Kick-Hard.wav", path.parents[1] / "kick" / "kick.wav")
    return path


@pytest.fixture(scope="module")
def ten_minute_file(tmp_path_factory):
    return long_file_folder(tmp_path_factory.mktemp("ten_minutes"), 600)


def test_training_crops_a_ten_minute_file_to_max_seconds(ten_minute_file):
    rows = list(load_audiofolder(ten_minute_file.parents[2])["train"])
    collator = AudioClassificationCollator(HEARFeatureExtractor(), label_column="label", max_seconds=6.0, seed=0)
    first, second = collator(rows), collator(rows)
    frames = HEARFeatureExtractor().num_frames(6 * 16000)
    assert first["input_values"].shape == (2, frames, 128)  # bounded by the crop, not by the file (60,001 frames)
    long_row = next(i for i, r in enumerate(rows) if r["path"].endswith("long.wav"))
    assert not torch.equal(first["input_values"][long_row], second["input_values"][long_row])  # a random crop


def test_evaluation_scores_a_long_file_by_windows(tmp_path):
    data = load_audiofolder(long_file_folder(tmp_path / "mine", 60).parents[2])["train"]
    names = data.features["label"].names
    fe = HEARFeatureExtractor()
    collator = AudioClassificationCollator(
        fe, label_column="label", quality=AudioQualityPolicy(mode="eval"), max_seconds=6.0
    )
    batch = collator(list(data))
    long_row = next(i for i, r in enumerate(data) if r["path"].endswith("long.wav"))
    # 6 s windows every 3 s, the last one ending at the end: 19 windows of at most 601 frames, one for the kick
    assert batch["input_values"].shape[1] == fe.num_frames(6 * 16000)
    assert torch.bincount(batch["window_to_clip"]).tolist() == [19, 1][:: 1 if long_row == 0 else -1]
    assert len(batch["labels"]) == 2
    # the windows' features are computed 16 at a time: the same as one call of the extractor
    wave = collator.quality.check(data[long_row]["audio"], clip_id="long")
    windows = [wave[start * 16000 : (start + 6) * 16000] for start in range(0, 55, 3)]
    direct = fe(windows + [collator.quality.check(data[1 - long_row]["audio"], clip_id="kick")], sampling_rate=16000)
    order = torch.cat([torch.nonzero(batch["window_to_clip"] == long_row)[:, 0], torch.nonzero(batch["window_to_clip"] != long_row)[:, 0]])
    for name in ("input_values", "power_spectrum", "attention_mask"):
        assert torch.allclose(batch[name][order], direct[name], atol=1e-5), name
    model = tiny_classifier(names).eval()
    # 8 windows per forward: memory is bounded by the eval batch size, whatever the file's length
    args = HEARFineTuningArguments(output_dir=str(tmp_path), variant="scratch", per_device_eval_batch_size=8, **COMMON)
    trainer = HEARFineTuningTrainer(model=model, args=args, data_collator=collator, compute_metrics=compute_accuracy)
    prediction = trainer.predict(data)
    assert prediction.predictions.shape == (2, len(names)) and "test_accuracy" in prediction.metrics
    # each clip's logits are the mean of its windows' logits
    with torch.no_grad():
        windows = model(**{k: v[batch["window_to_clip"] == long_row] for k, v in batch.items()
                           if k not in ("labels", "window_to_clip")}).logits
    assert np.allclose(prediction.predictions[long_row], windows.mean(0).numpy(), atol=1e-5)


def test_sets_that_lose_or_merge_the_transform_stay_safe(tmp_path):
    import datasets

    from hf_audio_cr.data import fsdd_speaker_folds, load_fsdd

    drum_folder(tmp_path / "mine", broken_in=("train", "test"))
    data = load_audiofolder(tmp_path / "mine")
    merged = datasets.concatenate_datasets([data["train"], data["test"]])  # as fsdd_speaker_folds does
    assert merged[0]["audio"]["array"].size and merged[0]["path"]
    raw = data["train"].with_format(None)  # the transform removed: rows hold undecoded {"bytes", "path"}
    for dataset, size in ((merged, 12), (raw, 6)):
        policy = AudioQualityPolicy()
        batch = AudioClassificationCollator(HEARFeatureExtractor(), label_column="label", quality=policy)(list(dataset))
        assert batch["input_values"].shape[0] == size - size // 3 and policy.counts()["clips_skipped"] == size // 3
    fold = fsdd_speaker_folds(load_fsdd(), "theo")
    assert fold["test"][0]["audio"]["array"].size and fold["test"][0]["path"].endswith(".flac")
