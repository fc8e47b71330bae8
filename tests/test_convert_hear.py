"""Converting checkpoints of HEAR's reference code: the converted folders reproduce the outputs the reference
code recorded for its own small random-weight checkpoints on two real clips (tests/fixtures/reference,
HEAR_FIXTURES.md), and every key of the full-size reference modules maps to one of our parameters."""
import ast
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification

from hf_audio_cr.models.hear import HEARConfig, HEARFeatureExtractor, HEARTokenizerConfig
from hf_audio_cr.models.hear.convert_hear_checkpoint import (
    config_from_state_dict,
    convert_checkpoint,
    convert_state_dict,
    model_class,
    normalise_layout,
)
from hf_audio_cr.models.hear_variants import build_hear_classifier

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "fixtures" / "reference"
CLIPS = ("trumpet", "humpback")  # 5.3 s (one window) and 14 s (700 tokens: 3 windows + cross-fade)
PREPROCESSOR = {
    "preprocessor.spectrogram.window",
    "preprocessor.mel_spectrogram.spectrogram.window",
    "preprocessor.mel_spectrogram.mel_scale.fb",
}


@pytest.fixture(scope="module")
def clips():
    return load_file(REFERENCE / "audio_clips_16k.safetensors")


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.float() - b.float()).abs().max().item()


# float32 matmul/attention kernels differ across CPUs: through the layers, outputs of size ~1 move by ~1.6e-5
# between the machine that recorded the reference and this one; a wrong layer is off by > 1e-2.
MODEL_ATOL = 5e-5


def assert_front_end_close(ours: torch.Tensor, reference: torch.Tensor, name: str) -> None:
    """float32 FFT kernels differ across CPUs (AVX2 / AVX-512): a bin near the log floor (log(x + 1e-6) of a
    power ~1e-6) moves by up to ~1e-3 after normalisation, while 99 % of the bins agree to ~4e-5 (mean ~3e-6). All three are bounded."""
    diff = (ours.float() - reference.float()).abs().flatten()
    assert ours.shape == reference.shape, (ours.shape, reference.shape)
    assert diff.max().item() <= 2e-3, (name, diff.max().item())
    assert diff.kthvalue(int(0.99 * diff.numel())).values.item() <= 1e-4, name  # 99 % of the bins
    assert diff.mean().item() <= 1e-5, name


def convert_with_script(checkpoint: Path, output_dir: Path, *extra: str) -> str:
    result = subprocess.run(
        [sys.executable, "scripts/convert_hear_checkpoint.py", str(checkpoint), str(output_dir), *extra],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    return result.stdout


@pytest.mark.parametrize("checkpoint", ["hear_small_reference.pt", "hear_small_reference.safetensors"])
def test_reference_classifier_reproduces_features_and_logits(checkpoint, clips, tmp_path):
    folder = tmp_path / "converted"
    if checkpoint.endswith(".pt"):  # as a user runs it: the script, then the Auto classes
        stdout = convert_with_script(REFERENCE / checkpoint, folder)
        assert "layout: classifier" in stdout
        assert "missing keys (freshly initialised): none" in stdout
        unused = next(line for line in stdout.splitlines() if line.startswith("unexpected keys (not used): "))
        assert set(ast.literal_eval(unused.split(": ", 1)[1])) == PREPROCESSOR  # reported, compared below, not loaded
        assert stdout.count("equal to HEARFeatureExtractor") == 3  # the reference's STFT windows and Mel bank
    else:
        _, report = convert_checkpoint(REFERENCE / checkpoint, folder)
        assert report.layout == "classifier" and report.missing_keys == []
        assert set(report.unexpected_keys) == PREPROCESSOR
    model = AutoModelForAudioClassification.from_pretrained(folder).eval()
    feature_extractor = AutoFeatureExtractor.from_pretrained(folder)
    assert model.config.feed_forward_layer_norm and model.config.num_labels == 10
    captured = {}
    model.spectrum_fusion.register_forward_hook(lambda m, i, o: captured.update(fusion=o))
    model.classifier.dense.register_forward_hook(lambda m, i, o: captured.update(pooled=i[0]))

    recorded = load_file(REFERENCE / "hear_small_reference_io.safetensors")
    for name in CLIPS:
        features = feature_extractor(clips[name], sampling_rate=16000)
        frames = recorded[f"{name}.power_spectrum_frame_index"]
        # the front end: the normalised log-Mel and log power spectrum
        assert_front_end_close(features["input_values"][0].T, recorded[f"{name}.log_mel"][0], name)
        assert_front_end_close(features["power_spectrum"][0, frames].T, recorded[f"{name}.power_spectrum_frames"][0], name)
        # the model, fed the reference's own front-end output (the fusion reads only the recorded frames)
        features["input_values"] = recorded[f"{name}.log_mel"].transpose(1, 2).contiguous()
        features["power_spectrum"][0, frames] = recorded[f"{name}.power_spectrum_frames"][0].T
        with torch.no_grad():
            acoustic = model.hear(features["input_values"], features["attention_mask"]).last_hidden_state
            logits = model(**features).logits
        assert acoustic.shape[1] == int(recorded[f"{name}.acoustic_lengths"])
        assert max_diff(acoustic, recorded[f"{name}.acoustic_features"]) <= MODEL_ATOL, name
        assert max_diff(captured["fusion"], recorded[f"{name}.spectrogram_mixture_output"]) <= MODEL_ATOL, name
        assert max_diff(captured["pooled"], recorded[f"{name}.pooled"]) <= MODEL_ATOL, name
        assert max_diff(logits, recorded[f"{name}.logits"]) <= MODEL_ATOL, name


def test_acoustic_model_alone_reproduces_the_reference_features_and_starts_fine_tuning(clips, tmp_path):
    """Stage 2's `AcousticModel.state_dict()` (the layout of the released `acoustic_model_weight.pth`) -> HEARModel."""
    classifier = torch.load(REFERENCE / "hear_small_reference.pt", weights_only=True)
    acoustic = {k[len("acoustic_model."):]: v for k, v in classifier.items() if k.startswith("acoustic_model.")}
    torch.save(acoustic, tmp_path / "acoustic_model_weight.pth")
    _, report = convert_checkpoint(tmp_path / "acoustic_model_weight.pth", tmp_path / "acoustic")
    assert report.layout == "acoustic" and report.missing_keys == report.unexpected_keys == []
    model = AutoModel.from_pretrained(tmp_path / "acoustic").eval()
    feature_extractor = AutoFeatureExtractor.from_pretrained(tmp_path / "acoustic")
    recorded = load_file(REFERENCE / "hear_small_reference_io.safetensors")
    for name in CLIPS:
        inputs = feature_extractor(clips[name], sampling_rate=16000, return_power_spectrum=False)
        assert_front_end_close(inputs["input_values"][0].T, recorded[f"{name}.log_mel"][0], name)
        inputs["input_values"] = recorded[f"{name}.log_mel"].transpose(1, 2).contiguous()  # the model alone
        with torch.no_grad():
            features = model(**inputs)
        assert max_diff(features.last_hidden_state, recorded[f"{name}.acoustic_features"]) <= MODEL_ATOL, name
    # the folder is a starting point of the paper's fine-tuning settings (its weights become `hear.*`)
    full = build_hear_classifier("full", str(tmp_path / "acoustic"), {0: "a", 1: "b"})
    assert all(torch.equal(full.hear.state_dict()[k], v) for k, v in model.state_dict().items())


def test_reference_tokenizer_reproduces_token_ids_exactly(clips, tmp_path):
    _, report = convert_checkpoint(REFERENCE / "hear_small_tokenizer_reference.pt", tmp_path / "tokenizer")
    assert report.layout == "tokenizer" and set(report.unexpected_keys) == PREPROCESSOR
    # the reference keeps the Gumbel temperature as a Python float, not in the state dict
    assert report.missing_keys == ["quantizer.temperature"]
    tokenizer = AutoModel.from_pretrained(tmp_path / "tokenizer").eval()
    feature_extractor = AutoFeatureExtractor.from_pretrained(tmp_path / "tokenizer")
    recorded = load_file(REFERENCE / "hear_small_tokenizer_reference_io.safetensors")
    features = feature_extractor(clips["trumpet"], sampling_rate=16000)
    with torch.no_grad():
        out = tokenizer(features["input_values"], features["attention_mask"])
        codes, _ = tokenizer.tokenize(features["input_values"], features["attention_mask"])
        quantized = tokenizer.quantizer(out.code_logits)
    assert torch.equal(codes, recorded["token_ids"]) and torch.equal(out.codes, recorded["token_ids"])
    assert max_diff(out.last_hidden_state, recorded["encoder_hidden_states"]) <= MODEL_ATOL
    assert max_diff(quantized, recorded["quantized"]) <= MODEL_ATOL
    assert max_diff(out.reconstruction, recorded["predicted_spectrogram"]) <= MODEL_ATOL
    assert max_diff(out.teacher_prediction, recorded["knowledge_prediction"]) <= MODEL_ATOL


def test_standalone_tokenizer_and_decoder_files_convert_like_the_framework(clips, tmp_path):
    """The released `tokenizer_weight.pth` may be the bare `Tokenizer` (optionally with its `Decoder`)."""
    framework = torch.load(REFERENCE / "hear_small_tokenizer_reference.pt", weights_only=True)
    torch.save({k[len("tokenizer."):]: v for k, v in framework.items() if k.startswith("tokenizer.")}, tmp_path / "t.pt")
    torch.save({k[len("decoder."):]: v for k, v in framework.items() if k.startswith("decoder.")}, tmp_path / "d.pt")
    alone, report = convert_checkpoint(tmp_path / "t.pt")
    assert report.unexpected_keys == [] and all(k.startswith(("decoder.", "quantizer.")) for k in report.missing_keys)
    with_decoder, report = convert_checkpoint(tmp_path / "t.pt", decoder_checkpoint=tmp_path / "d.pt")
    assert sorted(report.missing_keys) == ["quantizer.code_projection.bias", "quantizer.code_projection.weight",
                                          "quantizer.codebook", "quantizer.temperature"]
    recorded = load_file(REFERENCE / "hear_small_tokenizer_reference_io.safetensors")
    features = HEARFeatureExtractor()(clips["trumpet"], sampling_rate=16000)
    with torch.no_grad():
        assert torch.equal(alone.tokenize(features["input_values"])[0], recorded["token_ids"])
        decoded = with_decoder.decoder(recorded["quantized"], torch.ones(1, 267, dtype=torch.bool))
    assert max_diff(decoded[0], recorded["predicted_spectrogram"]) <= MODEL_ATOL


FULL_MODULES = {
    "HEAR (classifier, src/hear.py)": ("classifier", []),
    "AcousticModel (src/models/acoustic_model.py)": ("acoustic", []),
    "TokenizerTrainFramework (tokenizer + vector_quantizer + decoder)": ("tokenizer", ["quantizer.temperature"]),
    "Tokenizer (src/models/tokenizer.py)": ("tokenizer", None),  # no decoder / quantizer in the file
}


@pytest.mark.parametrize("module", list(FULL_MODULES) + ["Tokenizer + Decoder"])
def test_every_full_size_reference_key_maps_to_a_parameter_of_the_right_shape(module):
    listing = json.loads((REFERENCE / "hear_full_keys.json").read_text())

    def meta_state(name):
        return {key: torch.empty(shape, dtype=getattr(torch, dtype.split(".")[-1]), device="meta")
                for key, shape, dtype in listing[name]["keys [name, shape, dtype]"]}

    if module == "Tokenizer + Decoder":
        layout, state = normalise_layout(meta_state("Tokenizer (src/models/tokenizer.py)"))
        state.update(normalise_layout(meta_state("Decoder (src/models/decoder.py)"))[1])
        expected_missing = ["quantizer.code_projection.bias", "quantizer.code_projection.weight", "quantizer.codebook",
                            "quantizer.temperature"]
    else:
        layout, state = normalise_layout(meta_state(module))
        expected_missing = FULL_MODULES[module][1]
    assert layout == FULL_MODULES.get(module, ("tokenizer",))[0]
    config = config_from_state_dict(layout, state)
    with torch.device("meta"):
        model = model_class(layout)(config)
    ours = model.state_dict()
    converted, unused = convert_state_dict(layout, state)
    assert set(unused) <= PREPROCESSOR, unused
    for key, value in converted.items():
        assert key in ours, f"{key} is not a parameter of {type(model).__name__}"
        assert ours[key].shape == value.shape, (key, ours[key].shape, value.shape)
    assert len(converted) + len(unused) == len(state)  # nothing dropped, nothing mapped twice
    missing = sorted(set(ours) - set(converted))
    if expected_missing is None:
        assert missing and all(k.startswith(("decoder.", "quantizer.")) for k in missing)
    else:
        assert missing == sorted(expected_missing)
    # the sizes read off the weights are the paper's configuration, our defaults
    if layout == "classifier":
        defaults = HEARConfig(num_labels=50)
        assert sum(p.numel() for p in model.parameters()) == listing[module]["n_parameters"] == 15_097_394
    elif layout == "acoustic":
        defaults = HEARConfig()
        assert sum(p.numel() for p in model.parameters()) == listing[module]["n_parameters"]
    else:
        defaults = HEARTokenizerConfig()
    fields = ("hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers", "feed_forward_layer_norm")
    assert all(getattr(config, f) == getattr(defaults, f) for f in fields)


def test_bad_checkpoints_are_refused_with_a_clear_error(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    with open(tmp_path / "evil.pt", "wb") as handle:
        pickle.dump({"x": Payload()}, handle, protocol=2)
    with pytest.raises(ValueError, match="weights_only=True"):
        convert_checkpoint(tmp_path / "evil.pt")
    torch.save({"blocks.0.attn.qkv.weight": torch.zeros(3, 3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a reference HEAR checkpoint"):
        convert_checkpoint(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="id2label has 3 classes but the checkpoint's head has 10 rows"):
        convert_checkpoint(REFERENCE / "hear_small_reference.pt", id2label={0: "a", 1: "b", 2: "c"})
