"""The AudioSet metric module (mAP, mAUC, d-prime) loaded offline with `evaluate`, and 527-column scoring."""
import math

import evaluate
import numpy as np
import pytest
from transformers import EvalPrediction

from hf_audio_cr.training import AUDIOSET_MAP_PATH, audioset_compute_metrics

# 3 clips x 3 classes; class 1 has no positive and is left out of mAP (and of mAUC).
SCORES = [[0.9, 0.5, 0.2], [0.8, 0.5, 0.6], [0.1, 0.5, 0.4]]
TARGETS = [[1, 0, 0], [0, 0, 1], [1, 0, 0]]


def test_map_mauc_dprime_by_hand():
    result = evaluate.load(AUDIOSET_MAP_PATH).compute(predictions=SCORES, references=TARGETS)
    # class 0: ranks .9(+) .8(-) .1(+): AP = (1/1 + 2/3) / 2; AUC = 1/2. class 2: top score positive: AP = AUC = 1.
    assert result["mAP"] == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)
    assert result["mAUC"] == pytest.approx(0.75)
    assert result["d_prime"] == pytest.approx(math.sqrt(2) * 0.6744897501960817)
    assert result["num_scored_classes"] == 2


def test_trainer_metrics_score_only_the_527_audioset_columns():
    rng = np.random.default_rng(0)
    clips = 8
    logits = rng.normal(size=(clips, 556)).astype(np.float32)
    labels = np.zeros((clips, 556), dtype=np.float32)
    labels[[0, 3, 5], 0] = labels[[1, 2], 100] = 1.0  # two standard classes with positives
    labels[:4, 540] = 1.0  # an ontology ancestor (training-only column), perfectly predicted
    logits[:4, 540], logits[4:, 540] = 10.0, -10.0
    result = audioset_compute_metrics()(EvalPrediction(predictions=logits, label_ids=labels))
    expected = evaluate.load(AUDIOSET_MAP_PATH).compute(predictions=logits[:, :527], references=labels[:, :527])
    assert result == pytest.approx(expected)
    assert result["num_scored_classes"] == 2  # column 540 would make it 3
    every_column = audioset_compute_metrics(num_eval_classes=None)(EvalPrediction(predictions=logits, label_ids=labels))
    assert every_column["num_scored_classes"] == 3 and every_column["mAP"] > result["mAP"]


def test_metric_errors_are_clear():
    with pytest.raises(ValueError, match="num_eval_classes=None"):
        audioset_compute_metrics()(EvalPrediction(predictions=np.zeros((2, 10)), label_ids=np.zeros((2, 10))))
    with pytest.raises(ValueError, match="No class has a positive"):
        evaluate.load(AUDIOSET_MAP_PATH).compute(predictions=[[0.1, 0.2]], references=[[0, 0]])


def test_audiomae_protocol_averages_every_class_by_hand():
    # AudioMAE's calculate_stats: mean over all columns; class 1 (no positive) counts as AP 0, its AUC is undefined
    result = evaluate.load(AUDIOSET_MAP_PATH).compute(predictions=SCORES, references=TARGETS, protocol="audiomae")
    assert result["mAP"] == pytest.approx(((1 + 2 / 3) / 2 + 0 + 1) / 3)
    assert math.isnan(result["mAUC"]) and math.isnan(result["d_prime"]) and result["num_scored_classes"] == 3
    with pytest.raises(ValueError, match="protocol"):
        evaluate.load(AUDIOSET_MAP_PATH).compute(predictions=SCORES, references=TARGETS, protocol="mean")


def test_audiomae_protocol_on_the_original_models_logits():
    # the logits AudioMAE's own model gave for the trumpet and humpback clips, AudioSet targets Trumpet / Whale vocalization
    from safetensors.torch import load_file

    logits = load_file("tests/fixtures/reference/audiomae_small_finetune_io.safetensors")["logits"].numpy()
    labels = np.zeros_like(logits)
    labels[0, 187] = labels[1, 136] = 1.0
    # two clips: a class's AP is 1 when its positive clip scores higher, else 1/2; AUC is 1 or 0
    ap = {c: 1.0 if logits[clip, c] > logits[1 - clip, c] else 0.5 for clip, c in ((0, 187), (1, 136))}
    auc = {c: float(ap[c] == 1.0) for c in ap}
    present = audioset_compute_metrics()(EvalPrediction(predictions=logits, label_ids=labels))
    original = audioset_compute_metrics(protocol="audiomae")(EvalPrediction(predictions=logits, label_ids=labels))
    assert present["mAP"] == pytest.approx(sum(ap.values()) / 2) and present["mAUC"] == pytest.approx(sum(auc.values()) / 2)
    assert original["mAP"] == pytest.approx(sum(ap.values()) / 527) and original["num_scored_classes"] == 527
    assert math.isnan(original["mAUC"])  # 525 classes without a positive: roc_auc_score is undefined
