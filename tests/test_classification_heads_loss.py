"""Both classification heads compute transformers' own classification loss (``ForSequenceClassificationLoss``,
as ``ASTForAudioClassification`` does) and infer an unset ``problem_type`` the same way."""
import inspect

import pytest
import torch
import torch.nn.functional as F

from hf_audio_cr.models.cr_audiomae import AudioMAEFeatureExtractor, CRAudioMAEConfig, CRAudioMAEForAudioClassification
from hf_audio_cr.models.hear import HEARConfig, HEARFeatureExtractor, HEARForAudioClassification

CLIPS = ("robin.ogg", "trumpet.ogg", "speech_female.ogg")
TINY_CR = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_length=128)
TINY_HEAR = dict(
    hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2, window_length=20,
    window_overlap=5, spectrum_hidden_size=16, task_hidden_size=32, task_intermediate_size=64,
    task_num_attention_heads=2, classifier_hidden_size=16, hidden_dropout=0.0, attention_dropout=0.0,
)


def heads(problem_type, num_labels=3):
    """(model, its features of the three real clips) for both model families."""
    torch.manual_seed(0)
    cr = CRAudioMAEForAudioClassification(CRAudioMAEConfig(**TINY_CR, num_labels=num_labels, problem_type=problem_type))
    hear = HEARForAudioClassification(HEARConfig(**TINY_HEAR, num_labels=num_labels, problem_type=problem_type))
    return [(cr.eval(), AudioMAEFeatureExtractor(max_length=128)), (hear.eval(), HEARFeatureExtractor())]


@pytest.fixture(scope="module")
def waves(real_clips):
    return [real_clips[name][:16000] for name in CLIPS]


@pytest.mark.parametrize("problem_type", ["single_label_classification", None])
def test_single_label_loss_is_cross_entropy_in_both_heads(problem_type, waves):
    classes = torch.tensor([2, 0, 1])
    for model, extractor in heads(problem_type):
        out = model(**extractor(waves, sampling_rate=16000, return_tensors="pt"), labels=classes)
        torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, classes))
        assert model.config.problem_type == "single_label_classification", type(model).__name__


@pytest.mark.parametrize("problem_type", ["multi_label_classification", None])
def test_multi_label_loss_is_mean_bce_in_both_heads(problem_type, waves):
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    for model, extractor in heads(problem_type):
        out = model(**extractor(waves, sampling_rate=16000, return_tensors="pt"), labels=targets)
        torch.testing.assert_close(out.loss, F.binary_cross_entropy_with_logits(out.logits, targets))
        assert model.config.problem_type == "multi_label_classification", type(model).__name__
        if problem_type is not None:  # integer multi-hot targets give the same loss once the problem is set
            again = model(**extractor(waves, sampling_rate=16000, return_tensors="pt"), labels=targets.long())
            torch.testing.assert_close(again.loss, out.loss)
        with pytest.raises(ValueError, match="multi-label targets must have shape"):
            model(**extractor(waves, sampling_rate=16000, return_tensors="pt"), labels=torch.zeros(3, 7))


def test_one_label_is_regression_in_both_heads(waves):
    targets = torch.tensor([0.5, -1.0, 2.0])
    for model, extractor in heads(None, num_labels=1):
        out = model(**extractor(waves, sampling_rate=16000, return_tensors="pt"), labels=targets)
        torch.testing.assert_close(out.loss, F.mse_loss(out.logits.squeeze(-1), targets))
        assert model.config.problem_type == "regression"


def test_return_dict_false_gives_the_loss_first_in_both_heads(waves):
    classes = torch.tensor([2, 0, 1])
    for model, extractor in heads("single_label_classification"):
        features = extractor(waves, sampling_rate=16000, return_tensors="pt")
        as_tuple = model(**features, labels=classes, return_dict=False)
        as_output = model(**features, labels=classes)
        assert isinstance(as_tuple, tuple) and len(as_tuple) == 2
        torch.testing.assert_close(as_tuple[0], as_output.loss)
        torch.testing.assert_close(as_tuple[1], as_output.logits)


def test_the_loss_code_is_the_same_in_both_model_folders():
    # the model folders are self-contained remote code, so the HEAR head carries a marked copy
    assert inspect.getsource(HEARForAudioClassification.loss) == inspect.getsource(CRAudioMAEForAudioClassification.loss)
    marker = "# Copied from hf_audio_cr.models.cr_audiomae.modeling_cr_audiomae.CRAudioMAEForAudioClassification.loss"
    assert marker in inspect.getsource(inspect.getmodule(HEARForAudioClassification))
