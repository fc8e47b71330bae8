"""Long recordings stream through features and model: the stock pipeline (package and remote code) gives the
same scores as the all-windows-at-once path on a real 73 s recording (for HEAR: as fine-tuning's evaluation
scores it), without copying the waveform or holding more than one batch of windows. (Peak-RSS figures:
scripts/bench_long_audio_memory.py.)"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import pipeline

import hf_audio_cr
from hf_audio_cr import AudioMAEFeatureExtractor, CRAudioMAEConfig, CRAudioMAEForAudioClassification
from hf_audio_cr.models.cr_audiomae.feature_extraction_cr_audiomae import StreamedWindows

# 73 s of speech at 8 kHz (Debian package asterisk-core-sounds-en-wav, installed by the Makefile)
LONG_RECORDING = Path("/usr/share/asterisk/sounds/en_US_f_Allison/demo-instruct.wav")


@pytest.fixture(scope="module")
def long_audio():
    # decoded exactly as the folder's pipeline decodes a path (torchcodec at 8 kHz, torchaudio to 16 kHz)
    import torchaudio

    from hf_audio_cr.models.cr_audiomae.pipeline_audio_classification import decode_audio_file

    wave, rate = decode_audio_file(LONG_RECORDING)
    wave = torchaudio.functional.resample(torch.from_numpy(wave), rate, 16000).numpy()
    wave.setflags(write=False)  # as a decoder's buffer: read-only arrays are held without a copy
    return wave


@pytest.fixture(scope="module")
def cr_folder(tmp_path_factory):
    torch.manual_seed(0)
    config = CRAudioMAEConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                              num_labels=20, window_batch_size=3)  # 14 windows -> 5 batches, the last one short
    folder = tmp_path_factory.mktemp("cr_stream")
    model = CRAudioMAEForAudioClassification(config).eval()
    model.register_for_auto_class("AutoModelForAudioClassification")
    model.save_pretrained(folder)
    extractor = AudioMAEFeatureExtractor()
    extractor.register_for_auto_class("AutoFeatureExtractor")
    extractor.save_pretrained(folder)
    return folder, model


def all_windows_scores(model, audio):
    """Today's path: every window's fbank at once, scored as one padded batch."""
    features = AudioMAEFeatureExtractor()(audio, sampling_rate=16000, long_audio="window")
    assert features["input_values"].shape[1] == 14
    with torch.no_grad():
        return model(**features).logits[0].sigmoid()


def pipeline_scores(tagger, model):
    out = {r["label"]: r["score"] for r in tagger(str(LONG_RECORDING), top_k=model.config.num_labels)}
    return torch.tensor([out[model.config.id2label[i]] for i in range(model.config.num_labels)])


def test_streamed_windows_hold_the_waveform_without_a_copy_and_one_batch_at_a_time(long_audio):
    assert not long_audio.flags.writeable  # np.frombuffer: the pipeline's decoded audio is read-only
    streamed = AudioMAEFeatureExtractor()(long_audio, sampling_rate=16000)["input_values"]
    assert isinstance(streamed, StreamedWindows) and streamed.shape == (1, 14, 1024, 128)
    assert streamed.clips[0].data_ptr() == long_audio.ctypes.data  # the samples are shared, not copied
    batches = list(streamed.window_batches(4))
    assert [w.shape[0] for _, w in batches] == [4, 4, 4, 2]
    reference = streamed.materialize()["input_values"][0]
    assert torch.equal(torch.cat([w for _, w in batches]), reference)


def test_pipeline_streams_long_audio_with_the_same_scores_as_all_windows(cr_folder, long_audio):
    folder, model = cr_folder
    tagger = pipeline("audio-classification", model=str(folder), trust_remote_code=True)
    assert tagger.feature_extractor.long_audio == "stream"
    assert (pipeline_scores(tagger, model) - all_windows_scores(model, long_audio)).abs().max() <= 1e-6


REMOTE_PIPELINE = r"""
import json, sys
from transformers import pipeline
folder, audio = sys.argv[1], sys.argv[2]
tagger = pipeline("audio-classification", model=folder, trust_remote_code=True)
streamed = tagger.feature_extractor(__import__("numpy").zeros(16000 * 30, "float32"), sampling_rate=16000)
streamed = streamed["input_values"]
scores = {r["label"]: r["score"] for r in tagger(audio, top_k=tagger.model.config.num_labels)}
print(json.dumps({"scores": scores, "model": type(tagger.model).__module__, "stream": type(streamed).__module__,
                  "hf_audio_cr_imported": any(m.startswith("hf_audio_cr") for m in sys.modules)}))
"""

def remote_pipeline_scores(folder, model, tmp_path) -> torch.Tensor:
    """The long recording tagged by `pipeline(trust_remote_code=True)` in a fresh interpreter that never imports
    hf_audio_cr (model and streamed windows from the folder's own code): scores in label order."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, "-c", REMOTE_PIPELINE, str(folder), str(LONG_RECORDING)],
                            capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    assert not remote["hf_audio_cr_imported"]
    assert remote["model"].startswith("transformers_modules") and remote["stream"].startswith("transformers_modules")
    return torch.tensor([remote["scores"][model.config.id2label[i]] for i in range(model.config.num_labels)])


@pytest.mark.slow  # fresh interpreter, remote code
def test_remote_code_pipeline_streams_with_the_same_scores(cr_folder, long_audio, tmp_path):
    folder, model = cr_folder
    assert (remote_pipeline_scores(folder, model, tmp_path) - all_windows_scores(model, long_audio)).abs().max() <= 1e-6


def test_streamed_batch_of_short_and_long_clips_matches_windows(long_audio, real_clips):
    torch.manual_seed(0)
    model = CRAudioMAEForAudioClassification(CRAudioMAEConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, window_batch_size=5)).eval()
    clips = [real_clips["robin.ogg"], np.array(long_audio[: 16000 * 30])]
    fe = AudioMAEFeatureExtractor()
    with torch.no_grad():
        streamed = model(**fe(clips, sampling_rate=16000)).logits
        windows = model(**fe(clips, sampling_rate=16000, long_audio="window")).logits
    assert (streamed - windows).abs().max() <= 1e-6


def test_encoder_refuses_streamed_windows_with_a_clear_error(long_audio):
    encoder = hf_audio_cr.CRAudioMAEModel(CRAudioMAEConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                           intermediate_size=64)).eval()
    with pytest.raises(ValueError, match="long_audio='window'"):
        encoder(**AudioMAEFeatureExtractor()(long_audio, sampling_rate=16000))


# HEAR: the task model attends over the whole clip (Sec. II-A), so a long clip is scored as windows of the
# extractor's `max_seconds` whose logits are averaged -- what fine-tuning's evaluation does (collator windows +
# HEARFineTuningTrainer.prediction_step). The pipeline streams them a few at a time.
HEAR_SMALL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, window_length=50,
                  window_overlap=10, task_hidden_size=32, task_intermediate_size=64, task_num_attention_heads=2,
                  spectrum_hidden_size=16, classifier_hidden_size=16, num_labels=10, task_max_position_embeddings=4000)
HEAR_WINDOW = 10.0  # 73 s -> windows at 0, 5, ..., 60 and one ending at the end (63 s): 14 windows


def whole_clip_hear_features(audio: np.ndarray) -> dict:
    """Today's formulas on the whole clip at once: centred STFT, Mel, log, instance norm over all frames."""
    import torchaudio

    wave = torch.from_numpy(np.array(audio))
    wave = torch.nn.functional.pad((wave - wave.mean())[None], (512, 512), mode="reflect")
    power = torchaudio.transforms.Spectrogram(n_fft=1024, win_length=400, hop_length=160, center=False)(wave)
    mel = torchaudio.transforms.MelScale(n_mels=128, sample_rate=16000, n_stft=513)(power)

    def norm(x):
        x = torch.log(x + 1e-6).transpose(1, 2)
        return (x - x.mean()) / (x.var(unbiased=False).sqrt() + 1e-6)

    return {"input_values": norm(mel), "power_spectrum": norm(power),
            "attention_mask": torch.ones(1, power.shape[-1], dtype=torch.long)}


@pytest.fixture(scope="module")
def hear_folder(tmp_path_factory):
    from hf_audio_cr import HEARConfig, HEARFeatureExtractor, HEARForAudioClassification

    torch.manual_seed(0)
    model = HEARForAudioClassification(HEARConfig(**HEAR_SMALL)).eval()
    folder = tmp_path_factory.mktemp("hear_stream")
    model.save_pretrained(folder)
    HEARFeatureExtractor(max_seconds=HEAR_WINDOW).save_pretrained(folder)
    return folder, model


def hear_evaluation_scores(model, audio, max_seconds=HEAR_WINDOW, num_windows=14):
    """Fine-tuning's evaluation of one long clip: the collator's windows, the trainer's per-clip mean."""
    from hf_audio_cr import HEARFeatureExtractor, HEARFineTuningArguments, HEARFineTuningTrainer
    from hf_audio_cr.data import AudioClassificationCollator, AudioQualityPolicy

    collator = AudioClassificationCollator(HEARFeatureExtractor(max_seconds=max_seconds), label_column="label",
                                           quality=AudioQualityPolicy(mode="eval"), max_seconds=max_seconds)
    batch = collator([{"audio": {"array": np.array(audio), "sampling_rate": 16000}, "label": 0}])
    assert len(batch["window_to_clip"]) == num_windows
    args = HEARFineTuningArguments(output_dir=tempfile.mkdtemp(), variant="scratch", per_device_eval_batch_size=4,
                                   report_to=[], use_cpu=True, disable_tqdm=True)
    trainer = HEARFineTuningTrainer(model=model, args=args, data_collator=collator)
    _, logits, _ = trainer.prediction_step(model, batch, prediction_loss_only=False)
    return logits[0].softmax(-1)


def test_hear_pipeline_streams_long_audio_as_fine_tuning_evaluates(hear_folder, long_audio):
    from hf_audio_cr import HEARFeatureExtractor

    folder, model = hear_folder
    tagger = pipeline("audio-classification", model=str(folder), trust_remote_code=True)
    assert tagger.feature_extractor.max_seconds == HEAR_WINDOW  # read back from preprocessor_config.json
    assert tagger.feature_extractor.window_hop_seconds == HEAR_WINDOW / 2
    got = pipeline_scores(tagger, model)  # from the file path: read span by span, never decoded whole
    fe = HEARFeatureExtractor(max_seconds=HEAR_WINDOW)
    with torch.no_grad():
        windows = model(**fe(long_audio, sampling_rate=16000, long_audio="window")).logits[0].softmax(-1)
        whole = model(**whole_clip_hear_features(long_audio)).logits[0].softmax(-1)
    assert (got - windows).abs().max() <= 1e-6
    assert (got - hear_evaluation_scores(model, long_audio)).abs().max() <= 1e-6
    assert (got - whole).abs().max() > 1e-4  # the windows are not the whole clip: the test tells them apart


def test_hear_streamed_windows_are_featurised_and_scored_a_few_at_a_time(hear_folder, long_audio, monkeypatch):
    from hf_audio_cr.models.hear import HEARFeatureExtractor, HEARStreamedWindows

    folder, model = hear_folder
    tagger = pipeline("audio-classification", model=str(folder), trust_remote_code=True)
    tagger.model.long_audio_batch_size = 3  # 14 windows -> 5 batches, the last one short
    fe_type = type(tagger.feature_extractor)
    featurised, scored = [], []
    whole_clips = fe_type._whole_clips

    def recorded(self, clips, *args):
        featurised.append(max(clip.numel() for clip in clips) if len(clips) <= 3 else float("inf"))
        return whole_clips(self, clips, *args)

    monkeypatch.setattr(fe_type, "_whole_clips", recorded)
    tagger.model.hear.register_forward_pre_hook(lambda module, args: scored.append(args[0].shape[0]))
    got = pipeline_scores(tagger, model)
    assert featurised == [HEAR_WINDOW * 16000] * 5  # no call saw more than 3 windows, none the whole clip
    assert scored == [3, 3, 3, 3, 2]
    streamed = HEARFeatureExtractor(max_seconds=HEAR_WINDOW)(long_audio, sampling_rate=16000)["input_values"]
    assert isinstance(streamed, HEARStreamedWindows) and streamed.num_windows == [14]
    assert streamed.clips[0].data_ptr() == long_audio.ctypes.data  # the samples are shared, not copied
    with torch.no_grad():
        windows = model(**streamed.materialize()).logits[0].softmax(-1)
    assert (got - windows).abs().max() <= 1e-6


def test_hear_clips_that_fit_the_window_are_scored_whole_as_before(hear_folder, long_audio, real_clips):
    from hf_audio_cr import HEARFeatureExtractor

    folder, model = hear_folder
    fe, whole = HEARFeatureExtractor(max_seconds=HEAR_WINDOW), HEARFeatureExtractor(max_seconds=None)
    short, fits = real_clips["robin.ogg"], np.array(long_audio[: int(HEAR_WINDOW * 16000)])
    for clip in (short, fits):  # up to the window's length: the tensors of whole-clip scoring, bit for bit
        features, reference = fe(clip, sampling_rate=16000), whole(clip, sampling_rate=16000)
        assert set(features) == set(reference) and all(torch.equal(features[k], reference[k]) for k in reference)
    with torch.no_grad():
        expected = model(**whole_clip_hear_features(fits)).logits[0]
        # one sample more is two windows; in a batch the short clip stays whole and the long one is windowed
        mixed = model(**fe([fits, np.array(long_audio[: int(HEAR_WINDOW * 16000) + 1])], sampling_rate=16000)).logits
        longer = fe([np.array(long_audio[: int(HEAR_WINDOW * 16000) + 1])], sampling_rate=16000, long_audio="window")
        windows = model(**longer).logits[0]
    assert longer["window_to_clip"].tolist() == [0, 0] and longer["input_values"].shape[1] == fe.num_frames(160000)
    assert (mixed[0] - expected).abs().max() <= 1e-5 and (mixed[1] - windows).abs().max() <= 1e-6
    tagger = pipeline("audio-classification", model=str(folder), trust_remote_code=True)
    scores = {r["label"]: r["score"] for r in tagger(fits, top_k=10)}
    got = torch.tensor([scores[model.config.id2label[i]] for i in range(10)])
    assert (got - expected.softmax(-1)).abs().max() <= 1e-6


@pytest.mark.slow  # fresh interpreter, remote code
def test_hear_remote_code_pipeline_streams_with_the_evaluation_scores(hear_folder, long_audio, tmp_path):
    folder, model = hear_folder
    got = remote_pipeline_scores(folder, model, tmp_path)
    assert (got - hear_evaluation_scores(model, long_audio)).abs().max() <= 1e-6


@pytest.mark.slow  # a (one-step) fine-tuning run
def test_a_fine_tuned_folder_scores_a_long_file_as_its_evaluation_did(long_audio, tmp_path):
    from _helpers import TINY_HEAR, write_esc50_layout
    from hf_audio_cr.data import load_esc50
    from hf_audio_cr.experiments.hear_downstream import finetune_and_evaluate
    from hf_audio_cr.training.hear_trainers import HEARFineTuningArguments

    esc50 = load_esc50(write_esc50_layout(tmp_path / "esc50"))["train"]
    args = HEARFineTuningArguments(output_dir=str(tmp_path / "run"), variant="scratch", max_steps=1, seed=0,
                                   per_device_train_batch_size=4, report_to=[], save_strategy="no", use_cpu=True,
                                   dataloader_num_workers=0, disable_tqdm=True)
    finetune_and_evaluate(args, esc50, config_overrides=TINY_HEAR, max_seconds=4.0)
    saved = json.loads((tmp_path / "run" / "preprocessor_config.json").read_text())
    assert (saved["max_seconds"], saved["window_hop_seconds"]) == (4.0, 2.0)
    tagger = pipeline("audio-classification", model=str(tmp_path / "run"), trust_remote_code=True)
    model = tagger.model.eval()
    scores = {r["label"]: r["score"] for r in tagger(str(LONG_RECORDING), top_k=model.config.num_labels)}
    got = torch.tensor([scores[model.config.id2label[i]] for i in range(model.config.num_labels)])
    # 73.3 s in 4 s windows every 2 s: 35 starts up to 68 s and one window ending at the end
    assert (got - hear_evaluation_scores(model, long_audio, max_seconds=4.0, num_windows=36)).abs().max() <= 1e-6


def test_hear_window_settings_travel_in_the_saved_config(tmp_path):
    from hf_audio_cr import HEARFeatureExtractor

    HEARFeatureExtractor(max_seconds=6.0).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert (saved["max_seconds"], saved["window_hop_seconds"], saved["long_audio"]) == (6.0, 3.0, "stream")
    for key in ("max_seconds", "window_hop_seconds", "long_audio"):  # a folder saved before these settings
        del saved[key]
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(saved))
    old = HEARFeatureExtractor.from_pretrained(tmp_path)
    assert (old.max_seconds, old.window_hop_seconds, old.long_audio) == (30.0, 15.0, "stream")


def test_hear_acoustic_model_refuses_streamed_windows_with_a_clear_error(long_audio):
    from hf_audio_cr import HEARConfig, HEARFeatureExtractor, HEARModel

    encoder = HEARModel(HEARConfig(**HEAR_SMALL)).eval()
    with pytest.raises(ValueError, match="long_audio='window'"):
        encoder(**HEARFeatureExtractor(max_seconds=HEAR_WINDOW)(long_audio, sampling_rate=16000))


# A file is read in chunks and resampled span by span (ResampledAudio): neither the decoded file nor a resampled
# copy exists at full length, and every span equals resampling the whole decoded file.
@pytest.fixture(scope="module")
def long_files(tmp_path_factory):
    """The 73 s recording as 8 kHz WAV (as shipped), 44.1 kHz FLAC and 48 kHz stereo WAV (written by ffmpeg)."""
    folder = tmp_path_factory.mktemp("long_files")
    files = [LONG_RECORDING]
    for rate, channels, ext in ((44100, 1, "flac"), (48000, 2, "wav")):
        out = folder / f"long_{rate}.{ext}"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(LONG_RECORDING), "-ar", str(rate), "-ac",
                        str(channels), str(out)], check=True)
        files.append(out)
    return files


@pytest.mark.slow  # ffmpeg-made long files
def test_chunked_file_reading_equals_decoding_and_resampling_the_whole_file(long_files):
    import torchaudio

    from hf_audio_cr.models.cr_audiomae.pipeline_audio_classification import decode_audio_file, read_audio_file

    rng = np.random.default_rng(0)
    for path in long_files:
        wave, rate = decode_audio_file(path)
        whole = torchaudio.functional.resample(torch.from_numpy(wave), rate, 16000)
        audio = read_audio_file(path, 16000)
        assert audio.native_rate == rate and len(audio) == whole.numel() > 60 * 16000
        assert (audio.materialize() - whole).abs().max() <= 1e-6, path.name
        for _ in range(10):  # spans anywhere, across the 30 s decoding chunks and the resampling strides
            start = int(rng.integers(0, len(audio) - 1))
            stop = int(rng.integers(start + 1, len(audio) + 1))
            assert (audio[start:stop] - whole[start:stop]).abs().max() <= 1e-6, (path.name, start, stop)
        assert abs(float(audio.mean()) - float(whole.mean())) <= 1e-9


@pytest.mark.slow  # ffmpeg-made long files
def test_pipeline_never_decodes_a_long_file_whole(cr_folder, long_audio, monkeypatch):
    from torchcodec.decoders import AudioDecoder

    folder, model = cr_folder
    decoded = []
    read_range = AudioDecoder.get_samples_played_in_range

    def recorded(self, start_seconds=0.0, stop_seconds=None):
        assert stop_seconds is not None, "a file was decoded to its end in one call"
        samples = read_range(self, start_seconds, stop_seconds)
        decoded.append(samples.data.shape[-1])
        return samples

    monkeypatch.setattr(AudioDecoder, "get_samples_played_in_range", recorded)
    tagger = pipeline("audio-classification", model=str(folder), trust_remote_code=True)
    assert (pipeline_scores(tagger, model) - all_windows_scores(model, long_audio)).abs().max() <= 1e-6
    assert max(decoded) <= 30 * 8000 + 1 and sum(decoded) >= 2 * 73 * 8000  # chunks: a counting pass, then windows


@pytest.mark.slow  # ffmpeg-made long files
def test_array_at_another_rate_is_resampled_span_by_span_with_the_same_scores(cr_folder):
    import soundfile as sf
    import torchaudio

    folder, model = cr_folder
    wave, rate = sf.read(LONG_RECORDING)  # float64 at 8 kHz: neither cast nor resampled at full length
    tagger = pipeline("audio-classification", model=str(folder), trust_remote_code=True)
    streamed = tagger.preprocess({"raw": wave, "sampling_rate": rate})["input_values"]
    assert type(streamed.clips[0]).__name__ == "ResampledAudio"
    resampled = torchaudio.functional.resample(torch.from_numpy(wave.astype(np.float32)), rate, 16000).numpy()
    scores = {r["label"]: r["score"] for r in tagger({"raw": wave, "sampling_rate": rate}, top_k=20)}
    got = torch.tensor([scores[model.config.id2label[i]] for i in range(20)])
    assert (got - all_windows_scores(model, resampled)).abs().max() <= 1e-6
