"""Bad input, end to end: every public entry point gets the same bad recordings and must answer with a
clear error naming the input and the fix (or the documented skip-and-count), never a traceback from
deep inside torch and never a silently wrong answer.

All bad files are derived from a real recording (LibriSpeech speech, tests/fixtures/audio)."""
import io

import numpy as np
import pytest
import soundfile as sf
import torch

from hf_audio_cr import AudioMAEFeatureExtractor, HEARFeatureExtractor

SPEECH = "speech_female.ogg"


@pytest.fixture(scope="module")
def speech(real_clips):
    return real_clips[SPEECH][:48000]  # 3 s at 16 kHz


@pytest.fixture(scope="module")
def feature_extractor():
    return AudioMAEFeatureExtractor()


EXTRACTORS = {"AudioMAE": AudioMAEFeatureExtractor, "HEAR": HEARFeatureExtractor}


# ----- waveform arrays into the feature extractor ------------------------------------------------------

@pytest.mark.parametrize(
    "case, make, match",
    [
        ("zero-length", lambda x: x[:0], r"clip 0 has 0 samples; .*at least \d+"),
        ("NaN", lambda x: np.where(np.arange(x.size) == 100, np.nan, x).astype(np.float32), "NaN or inf"),
        ("inf", lambda x: np.where(np.arange(x.size) == 7, np.inf, x).astype(np.float32), "NaN or inf"),
        ("8-bit PCM ints", lambda x: (x * 127).astype(np.int8), r"integer samples \(int8\).*float"),
        ("24-bit PCM ints", lambda x: (x * 2**23).astype(np.int32), r"integer samples \(int32\).*float"),
        ("6-channel list item", lambda x: [np.stack([x] * 6)], r"shape \(6, 48000\); expected mono.*mean\(0\)"),
        ("empty batch", lambda x: [], "empty batch"),
    ],
)
@pytest.mark.parametrize("extractor", sorted(EXTRACTORS))
def test_feature_extractors_reject_bad_arrays(extractor, speech, case, make, match):
    with pytest.raises(ValueError, match=rf"{extractor}FeatureExtractor: .*{match}"):
        EXTRACTORS[extractor]()(make(speech), sampling_rate=16000)


@pytest.mark.parametrize("extractor", sorted(EXTRACTORS))
@pytest.mark.parametrize("rate", [8000, 48000])
def test_feature_extractors_name_the_resampling_fix(extractor, speech, rate):
    with pytest.raises(ValueError, match=rf"{rate} Hz but (the model|HEAR) expects 16000 Hz; resample first"):
        EXTRACTORS[extractor]()(speech, sampling_rate=rate)
    with pytest.raises(ValueError, match="pass `sampling_rate=`"):
        EXTRACTORS[extractor]()(speech)


@pytest.mark.parametrize("extractor", sorted(EXTRACTORS))
def test_feature_extractors_on_digital_silence_are_finite_and_constant(extractor):
    # Silence is a legal input (the quality policy decides whether to use it); its features must be the
    # floor value everywhere, not NaN/-inf from log(0).
    features = EXTRACTORS[extractor]()(np.zeros(16000, np.float32), sampling_rate=16000)["input_values"]
    assert torch.isfinite(features).all()
    assert features[0, :98].unique().numel() == 1


# ----- files through the AudioSet loader and the collator (the training / evaluation data path) -------

def _encode(wave, rate, fmt="WAV", subtype=None):
    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bad_parquet(real_clips, tmp_path_factory):
    """One AudioSet-schema parquet whose rows are the bad recordings (plus one good one), ids = case names."""
    from datasets import Audio, Dataset, Features, List, Value

    from _helpers import load_real_audio

    speech48 = load_real_audio(SPEECH, 48000)[: 3 * 48000]
    with_nan = speech48.copy()
    with_nan[1000:1010] = np.nan
    flac = _encode(speech48, 48000, "FLAC")
    cases = {
        "empty-file": b"",
        "truncated-flac": flac[: len(flac) // 3],
        "corrupt-wav": _encode(speech48, 48000)[:44] + bytes(range(256)) * 8,
        "nan-samples": _encode(with_nan, 48000, subtype="FLOAT"),
        "all-zero": _encode(np.zeros(48000, np.float32), 48000),
        "pcm-8bit": _encode(speech48, 48000, subtype="PCM_U8"),
        "pcm-24bit": _encode(speech48, 48000, subtype="PCM_24"),
        "rate-8k": _encode(load_real_audio(SPEECH, 8000)[:24000], 8000),
        "rate-48k": flac,
        "stereo": _encode(np.stack([speech48, 0.5 * speech48], 1), 48000),
        "six-channel": _encode(np.stack([speech48] * 6, 1), 48000, "FLAC"),
        "unknown-label": flac,
    }
    labels = {k: ["/m/09x0r"] for k in cases} | {"unknown-label": ["/m/09x0r", "/m/not_a_mid"]}
    rows = {"video_id": list(cases), "audio": [{"bytes": b, "path": f"{k}.wav"} for k, b in cases.items()],
            "labels": [labels[k] for k in cases], "human_labels": [["Speech"]] * len(cases)}
    features = Features({"video_id": Value("string"), "audio": Audio(), "labels": List(Value("string")),
                         "human_labels": List(Value("string"))})
    path = tmp_path_factory.mktemp("bad") / "bad.parquet"
    Dataset.from_dict(rows, features=features).to_parquet(str(path))
    return str(path)


UNUSABLE = {"empty-file": "empty", "truncated-flac": "unreadable", "corrupt-wav": "too_short",
            "nan-samples": "non_finite", "all-zero": "silent"}
REPAIRED = {"stereo": "multi_channel", "six-channel": "multi_channel", "unknown-label": "unknown_label"}


def test_training_skips_and_counts_every_unusable_clip(bad_parquet, feature_extractor):
    from hf_audio_cr.data import AudioClassificationCollator, load_audioset

    rows = list(load_audioset(data_files={"train": bad_parquet}, split="train", streaming=True))
    collator = AudioClassificationCollator(feature_extractor, long_audio="truncate", return_clip_ids=True)
    batch = collator(rows)
    assert sorted(batch["clip_ids"]) == sorted(set(r["video_id"] for r in rows) - set(UNUSABLE))
    assert torch.isfinite(batch["input_values"]).all() and batch["labels"].shape == (7, 556)
    counts = collator.quality.counts()
    assert counts["clips_seen"] == 12 and counts["clips_skipped"] == len(UNUSABLE)
    for kind in ("empty", "unreadable", "too_short", "non_finite", "silent", "unknown_label"):
        assert counts[kind] == 1, kind
    assert counts["multi_channel"] == 2


@pytest.mark.parametrize("case", sorted(UNUSABLE))
def test_evaluation_refuses_an_unusable_clip_by_name(bad_parquet, feature_extractor, case):
    from hf_audio_cr.data import AudioClassificationCollator, AudioQualityPolicy, BadAudioError, load_audioset

    row = next(r for r in load_audioset(data_files={"test": bad_parquet}, split="test") if r["video_id"] == case)
    collator = AudioClassificationCollator(feature_extractor, quality=AudioQualityPolicy(mode="eval"))
    with pytest.raises(BadAudioError, match=rf"clip '{case}': {UNUSABLE[case]} .*fix or remove the clip"):
        collator([row])


def test_pcm_depths_and_rates_decode_to_the_same_speech(bad_parquet, feature_extractor):
    # 8/16/24-bit PCM and 8/48 kHz are not errors: decoded to 16 kHz float and scored like the FLAC.
    from hf_audio_cr.data import AudioClassificationCollator, AudioQualityPolicy, load_audioset

    rows = {r["video_id"]: r for r in load_audioset(data_files={"test": bad_parquet}, split="test")}
    collator = AudioClassificationCollator(feature_extractor, quality=AudioQualityPolicy(mode="eval"))
    features = {k: collator([rows[k]])["input_values"][0, :290] for k in ("rate-48k", "pcm-24bit", "pcm-8bit", "rate-8k")}
    reference = features["rate-48k"]
    assert (features["pcm-24bit"] - reference).abs().mean() < 0.01  # vs the 16-bit FLAC: quantisation only
    assert (features["pcm-8bit"] - reference).abs().mean() < 0.15  # 8-bit quantisation noise, same speech
    assert torch.corrcoef(torch.stack([features["rate-8k"][:, :60].flatten(), reference[:, :60].flatten()]))[0, 1] > 0.9


def test_strict_mode_refuses_even_repairable_clips(bad_parquet, feature_extractor):
    from hf_audio_cr.data import AudioClassificationCollator, AudioQualityPolicy, BadAudioError, load_audioset

    rows = {r["video_id"]: r for r in load_audioset(data_files={"train": bad_parquet}, split="train")}
    for case, kind in REPAIRED.items():
        collator = AudioClassificationCollator(feature_extractor, quality=AudioQualityPolicy(strict=True))
        with pytest.raises(BadAudioError, match=rf"clip '{case}': {kind}"):
            collator([rows[case]])


# ----- training scripts' config parsing -----------------------------------------------------------------

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
SCRIPT_CONFIGS = {
    "train_cr_audiomae.py": "configs/cr_audiomae/tiny_smoke.yaml",
    "train_hear_tokenizer.py": "configs/hear/tiny_tokenizer.yaml",
    "pretrain_hear.py": "configs/hear/tiny_pretrain.yaml",
    "finetune_hear.py": "configs/hear/tiny_finetune.yaml",
    "demo.py": "configs/demo/default.yaml",
}


def _script_main(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name[:-3], ROOT / "scripts" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.mark.parametrize("script", sorted(SCRIPT_CONFIGS))
def test_a_config_with_an_unknown_key_is_refused_by_name(script, tmp_path):
    import yaml

    values = yaml.safe_load((ROOT / SCRIPT_CONFIGS[script]).read_text())
    values["consistency_wieght"] = 2.0  # a typo must not be ignored silently
    config = tmp_path / "typo.yaml"
    config.write_text(yaml.safe_dump(values))
    with pytest.raises(ValueError, match=r"typo\.yaml: unknown keys \['consistency_wieght'\]"):
        _script_main(script)([str(config)])


def test_a_negative_consistency_weight_is_refused(tmp_path):
    main = _script_main("train_cr_audiomae.py")
    with pytest.raises(ValueError, match=r"cr_weight .*must be >= 0"):
        main([str(ROOT / SCRIPT_CONFIGS["train_cr_audiomae.py"]), "--cr_weight", "-1", "--output_dir", str(tmp_path)])
    demo = _script_main("demo.py")
    with pytest.raises(ValueError, match=r"--cr_weight must be > 0"):
        demo(["--cr_weight", "-2", "--output_dir", str(tmp_path)])
    with pytest.raises(ValueError, match=r"--train_scenes must be >= 1"):
        demo(["--train_scenes", "0", "--output_dir", str(tmp_path)])


# ----- pipeline("audio-classification") on a saved folder (what a Hub user calls) ----------------------

@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    from transformers import pipeline

    from _helpers import save_tiny_classifier

    folder = save_tiny_classifier(tmp_path_factory.mktemp("tagger"), "cr_audiomae")
    return pipeline("audio-classification", model=str(folder), trust_remote_code=True)


def test_pipeline_bad_arrays_and_files(tagger, speech, tmp_path):
    with pytest.raises(ValueError, match="clip 0 contains NaN or inf samples"):
        tagger({"raw": np.where(np.arange(speech.size) == 9, np.nan, speech).astype(np.float32), "sampling_rate": 16000})
    with pytest.raises(ValueError, match="single channel"):
        tagger({"raw": np.stack([speech, speech]), "sampling_rate": 16000})
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.wav' is empty \(0 bytes\)"):
        tagger(str(empty))
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        tagger(str(tmp_path / "missing.wav"))
    # Other rates, bit depths and channel counts are resampled / downmixed by the pipeline and agree.
    from _helpers import load_real_audio

    wave48 = load_real_audio(SPEECH, 48000)[: 2 * 48000]
    reference = tagger({"raw": wave48, "sampling_rate": 48000}, top_k=3)
    for subtype, channels in (("PCM_24", 1), ("PCM_16", 2), ("PCM_16", 6)):
        path = tmp_path / f"{subtype}_{channels}.wav"
        sf.write(path, np.stack([wave48] * channels, 1) if channels > 1 else wave48, 48000, subtype=subtype)
        scores = {t["label"]: t["score"] for t in tagger(str(path), top_k=3)}
        assert all(abs(scores[t["label"]] - t["score"]) < 0.02 for t in reference), (subtype, channels)


@pytest.mark.parametrize("fmt", ["WAV", "FLAC"])
def test_pipeline_refuses_a_truncated_file(tagger, speech, tmp_path, fmt):
    # the folder's own pipeline (config.json custom_pipelines) decodes as training does and checks the length
    path = tmp_path / f"cut.{fmt.lower()}"
    sf.write(path, speech, 16000, format=fmt)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(ValueError, match=rf"audio file '{path}' (is truncated|could not be decoded)"):
        tagger(str(path))


# ----- a new user's path (issue 11): flags, typos and sets the scripts must name -----------------------

def test_cr_script_refuses_train_files_next_to_the_yaml_csv(tmp_path):
    main = _script_main("train_cr_audiomae.py")
    with pytest.raises(ValueError, match=r"--train_files is set but --eval_files is not.*segments\.csv"):
        main([str(ROOT / SCRIPT_CONFIGS["train_cr_audiomae.py"]), "--train_files", str(tmp_path / "mine.parquet"),
              "--output_dir", str(tmp_path)])
    from hf_audio_cr.data import load_audioset

    with pytest.raises(ValueError, match="either a segments CSV or parquet data_files"):
        load_audioset(str(ROOT / "configs/cr_audiomae/smoke_segments.csv"), data_files=str(tmp_path / "mine.parquet"))


@pytest.mark.parametrize("script", ["finetune_hear.py", "train_hear_tokenizer.py", "pretrain_hear.py"])
def test_hear_config_override_typos_are_refused(script, tmp_path):
    import yaml

    values = yaml.safe_load((ROOT / SCRIPT_CONFIGS[script]).read_text())
    values["config_overrides"]["hiden_size"] = 32
    config = tmp_path / "typo.yaml"
    config.write_text(yaml.safe_dump(values))
    with pytest.raises(ValueError, match=r"unknown HEAR(Tokenizer)?Config fields 'hiden_size' \(did you mean 'hidden_size'\?\)"):
        extra = {"train_hear_tokenizer.py": ["--distillation_weight", "0"], "finetune_hear.py": ["--variant", "scratch"]}
        _script_main(script)([str(config), "--output_dir", str(tmp_path / "run"), *extra.get(script, [])])


def test_tokenizer_script_without_a_teacher_names_the_flag(tmp_path):
    main = _script_main("train_hear_tokenizer.py")
    with pytest.raises(ValueError, match=r"pass --teacher_name_or_path .* or --distillation_weight 0"):
        main([str(ROOT / SCRIPT_CONFIGS["train_hear_tokenizer.py"]), "--dataset", str(ROOT / "tests/fixtures/audio"),
              "--output_dir", str(tmp_path)])


def test_export_onnx_names_the_model_flag(tmp_path):
    main = _script_main("export_onnx.py")
    with pytest.raises(FileNotFoundError, match=r"^--model missing: is no such folder; .*built-in name \(hear, cr_audiomae, ast\)"):
        main(["--model", "missing", "--output", str(tmp_path / "m.onnx")])
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(FileNotFoundError, match=r"--model .*empty_folder: has no config\.json"):
        main(["--model", str(tmp_path / "empty_folder"), "--output", str(tmp_path / "m.onnx")])


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_feature_extractors_refuse_another_sampling_rate(name, tmp_path):
    cls = EXTRACTORS[name]
    with pytest.raises(ValueError, match=rf"{cls.__name__}\(sampling_rate=8000\): .*changes the frame rate.*resample"):
        cls(sampling_rate=8000)
    # a saved folder edited by hand is refused when loaded, too
    cls().save_pretrained(tmp_path)
    path = tmp_path / "preprocessor_config.json"
    path.write_text(path.read_text().replace('"sampling_rate": 16000', '"sampling_rate": 8000'))
    with pytest.raises(ValueError, match="sampling_rate=8000"):
        cls.from_pretrained(tmp_path)
    assert cls().sampling_rate == 16000


def test_an_audiofolder_without_a_test_split_says_there_is_nothing_to_evaluate(tmp_path, capsys):
    import shutil

    for label, name in (("kick", "Kick-Hard"), ("snare", "Snare-Hard")):
        (tmp_path / "mine" / "train" / label).mkdir(parents=True)
        for copy in range(2):
            shutil.copy(f"/usr/share/hydrogen/data/drumkits/GMRockKit/{name}.wav", tmp_path / "mine" / "train" / label / f"{copy}.wav")
    _script_main("finetune_hear.py")([
        str(ROOT / SCRIPT_CONFIGS["finetune_hear.py"]), "--task", "audiofolder", "--variant", "scratch",
        "--data_path", str(tmp_path / "mine"), "--output_dir", str(tmp_path / "run"), "--num_train_epochs", "1",
        "--disable_tqdm", "true",
    ])
    printed = capsys.readouterr().out
    assert "Nothing to evaluate" in printed and "has no validation or test split (splits: ['train'])" in printed
