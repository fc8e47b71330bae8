"""Card facts come from the model, its config and the run: sizes and parameter counts from the model, the
evaluation set from `--dataset` (a shortcut, any Hub id or a local description) or from labels that identify it,
and Speech Commands v1 and v2 are told apart. A card never names a set it cannot vouch for."""
import json

import pytest
from huggingface_hub import ModelCard

from _helpers import TINY_HEAR_WINDOWED
from hf_audio_cr import AudioMAEFeatureExtractor, CRAudioMAEConfig, CRAudioMAEForAudioClassification
from hf_audio_cr.data import SPEECH_COMMANDS_12_CLASSES, SPEECH_COMMANDS_35_CLASSES
from hf_audio_cr.hub import DATASETS, PushToHubArguments, build_hub_folder, resolve_dataset
from hf_audio_cr.models.hear import HEARConfig, HEARFeatureExtractor, HEARForAudioClassification

TINY_HEAR = TINY_HEAR_WINDOWED


def hear_run(path, labels=("robin", "trumpet", "speech")):
    model = HEARForAudioClassification(HEARConfig(**TINY_HEAR, num_labels=len(labels), id2label=dict(enumerate(labels))))
    model.save_pretrained(path)
    HEARFeatureExtractor().save_pretrained(path)
    (path / "eval_results.json").write_text(json.dumps({"eval_accuracy": 0.625, "epoch": 3.0}))
    return model


def publish(run_dir, out, **kwargs):
    folder = build_hub_folder(PushToHubArguments(model_dir=str(run_dir), repo_id="someone/tiny", output_dir=str(out),
                                                 dry_run=True, **kwargs))
    return ModelCard.load(folder / "README.md")


def test_hear_card_describes_the_model_it_ships_and_names_no_set_it_was_not_given(tmp_path):
    model = hear_run(tmp_path / "run")
    card = publish(tmp_path / "run", tmp_path / "hub")
    assert "32 wide" in card.text and "2 layers" in card.text and "384 wide" not in card.text
    assert f"{model.num_parameters() / 1e6:.1f}M parameters" in card.text and "About 15M" not in card.text
    assert "0.4 s windows with 0.1 s" in card.text  # 20 / 5 tokens of 20 ms, from the config
    assert "ESC-50" not in card.text.split("## Evaluation")[1].split("Paper (Table III")[0]
    assert card.data.datasets is None and card.data.eval_results is None  # nothing claimed
    assert "| unnamed | validation | Accuracy | 0.625 |" in card.text  # the number is still reported


def test_dataset_takes_any_hub_id_or_a_local_description(tmp_path):
    hear_run(tmp_path / "run")
    card = publish(tmp_path / "run", tmp_path / "hub", dataset="someone/garden-birds")
    assert card.data.datasets == ["someone/garden-birds"]
    (result,) = card.data.eval_results
    assert (result.dataset_type, result.metric_value) == ("someone/garden-birds", 0.625)

    card = publish(tmp_path / "run", tmp_path / "hub2", dataset="our garden recordings, 2024")
    assert card.data.datasets is None and card.data.eval_results is None
    assert "Measured by the training run on our garden recordings, 2024" in card.text

    local = tmp_path / "data" / "birds"
    local.mkdir(parents=True)
    assert resolve_dataset(str(local)).hub_id is None and str(local) in resolve_dataset(str(local)).name
    with pytest.raises(ValueError, match="imagenet.*owner"):
        resolve_dataset("imagenet")


def test_speech_commands_v1_and_v2_are_told_apart(tmp_path):
    hear_run(tmp_path / "run", labels=SPEECH_COMMANDS_12_CLASSES)
    card = publish(tmp_path / "run", tmp_path / "hub", dataset="speech_commands_v1")
    (result,) = card.data.eval_results
    assert (result.dataset_type, result.dataset_config) == ("google/speech_commands", "v0.01")
    assert "Speech Commands v1" in result.dataset_name
    assert DATASETS["speech_commands_v2"].config == "v0.02" and "v2" in DATASETS["speech_commands_v2"].name
    with pytest.raises(ValueError, match="speech_commands_v1.*speech_commands_v2"):
        resolve_dataset("speech_commands")
    # Labels decide only where they can: the 35-word task is v2's; the 12-class task exists in both releases.
    assert resolve_dataset(None, HEARConfig(**TINY_HEAR, id2label=dict(enumerate(SPEECH_COMMANDS_35_CLASSES)))) \
        == DATASETS["speech_commands_v2"]
    assert resolve_dataset(None, HEARConfig(**TINY_HEAR, id2label=dict(enumerate(SPEECH_COMMANDS_12_CLASSES)))) is None


def test_cr_audiomae_card_reads_sizes_from_the_config_and_audioset_from_its_labels(tmp_path):
    config = CRAudioMAEConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    model = CRAudioMAEForAudioClassification(config)
    model.save_pretrained(tmp_path / "run")
    AudioMAEFeatureExtractor(long_audio="truncate").save_pretrained(tmp_path / "run")
    (tmp_path / "run" / "eval_results.json").write_text(json.dumps({"eval_mAP": 0.25}))
    card = publish(tmp_path / "run", tmp_path / "hub")
    assert "32 wide, 1 layer, 2 heads" in card.text and "ViT-B encoder" not in card.text
    assert f"{model.num_parameters() / 1e3:.1f}k parameters" in card.text
    assert "first 10.24 s only" in card.text  # the saved feature extractor truncates
    assert card.data.datasets == ["agkphysics/AudioSet"]  # the 527 AudioSet classes say so
    other = CRAudioMAEConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                             num_labels=2, id2label={0: "bird", 1: "car"})
    assert resolve_dataset(None, other) is None
