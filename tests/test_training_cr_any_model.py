"""Item 1 of the CR study: the softmax (single-label) consistency term by hand, and CRTrainer on three
architectures fed real recordings: CR-AudioMAE (single-label), HEAR (log-Mel + power spectrum) and
transformers' ASTForAudioClassification."""
import math

import datasets
import pytest
import torch
import torch.nn.functional as F
from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

from hf_audio_cr import (
    AudioClassificationCollator,
    CRAudioMAEConfig,
    CRAudioMAEForAudioClassification,
    HEARConfig,
    HEARFeatureExtractor,
    HEARForAudioClassification,
)
from hf_audio_cr.training import CRTrainer, CRTrainingArguments, make_views
from hf_audio_cr.training.augment import make_views_with_frames
from hf_audio_cr.training.losses import consistency_loss, consistency_loss_for, softmax_consistency_loss

LN3 = math.log(3.0)
CLIPS = ("robin.ogg", "trumpet.ogg", "speech_female.ogg")


def kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q))


def softmax2(z):
    e = [math.exp(v) for v in z]
    return [v / sum(e) for v in e]


# ---------------------------------------------------------------- the softmax consistency term, by hand

def test_softmax_two_views_is_symmetric_kl_by_hand():
    # view 1: logits (0, 0) -> (0.5, 0.5); view 2: (ln 3, 0) -> (0.75, 0.25)
    logits = torch.tensor([[[0.0, 0.0]], [[LN3, 0.0]]])
    p1, p2 = [0.5, 0.5], [0.75, 0.25]
    expected = 0.5 * (kl(p1, p2) + kl(p2, p1))
    # KL(p1||p2) = 0.5 ln(2/3) + 0.5 ln 2 = 0.143841; KL(p2||p1) = 0.75 ln 1.5 + 0.25 ln 0.5 = 0.130812
    assert expected == pytest.approx(0.5 * (0.143841 + 0.130812), abs=1e-6)
    assert softmax_consistency_loss(logits).item() == pytest.approx(expected, rel=1e-6)


def test_softmax_k_views_average_ordered_pairs_and_clips_by_hand():
    z = [[0.0, 0.0], [LN3, 0.0], [0.0, LN3]]
    probs = [softmax2(v) for v in z]
    pairs = [kl(probs[i], probs[j]) for i in range(3) for j in range(3) if i != j]
    one_clip = torch.tensor(z).unsqueeze(1)  # [3 views, 1 clip, 2 classes]
    assert softmax_consistency_loss(one_clip).item() == pytest.approx(sum(pairs) / 6, rel=1e-6)
    # mean over clips (not sum): 4 copies of the same clip give the same value
    assert softmax_consistency_loss(one_clip.expand(3, 4, 2)).item() == pytest.approx(sum(pairs) / 6, rel=1e-6)


def test_softmax_stop_gradient_on_the_target_side():
    # d/dz1 of 1/2 [KL(sg p1 || p2) + KL(sg p2 || p1)] with z2 constant is 1/2 (p1 - p2): the prediction side only.
    z1 = torch.tensor([[0.3, -0.2, 0.1]], requires_grad=True)
    z2 = torch.tensor([[LN3, 0.0, -LN3]])
    (grad,) = torch.autograd.grad(softmax_consistency_loss(torch.stack([z1, z2])), z1)
    expected = 0.5 * (z1.detach().softmax(-1) - z2.softmax(-1))
    assert torch.allclose(grad, expected, atol=1e-6)
    # without the stop-gradient the target side would contribute too
    p1, p2 = z1.softmax(-1), z2.softmax(-1)
    no_sg = 0.5 * ((p1 * (p1.log() - p2.log())).sum() + (p2 * (p2.log() - p1.log())).sum())
    (grad_no_sg,) = torch.autograd.grad(no_sg, z1)
    assert (grad_no_sg - grad).abs().max() > 0.05


def test_softmax_identical_views_zero_loss_and_gradient():
    torch.manual_seed(0)
    z = torch.randn(1, 3, 5).expand(4, 3, 5).clone().requires_grad_(True)
    loss = softmax_consistency_loss(z)
    loss.backward()
    assert abs(loss.item()) < 1e-6 and torch.allclose(z.grad, torch.zeros_like(z), atol=1e-7)


def test_form_is_chosen_from_problem_type():
    assert consistency_loss_for("multi_label_classification") is consistency_loss
    assert consistency_loss_for("single_label_classification") is softmax_consistency_loss
    with pytest.raises(ValueError, match="problem_type"):
        consistency_loss_for("regression")


# ---------------------------------------------------------------- CRTrainer with other models

def cr_args(tmp_path, **overrides):
    defaults = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=3, max_steps=2, logging_steps=1,
                    report_to="none", save_strategy="no", use_cpu=True, dataloader_num_workers=0, disable_tqdm=True,
                    time_mask=32, freq_mask=16, erase_prob=0.0, learning_rate=1e-3, warmup_steps=0)
    return CRTrainingArguments(**{**defaults, **overrides})


def audio_rows(real_clips, seconds=1.28, label_column="label"):
    """Three real recordings, one per class: 1.28 s crops at 16 kHz."""
    n = int(16000 * seconds)
    rows = []
    for index, name in enumerate(CLIPS):
        for start in (0, n):
            target = index if label_column == "label" else [float(i == index) for i in range(3)]
            rows.append({"audio": {"array": real_clips[name][start:start + n], "sampling_rate": 16000},
                         label_column: target})
    return datasets.Dataset.from_list(rows)


def test_single_label_cr_audiomae_uses_cross_entropy_and_softmax_cr(tiny_fbanks, tmp_path):
    torch.manual_seed(0)
    config = CRAudioMAEConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                              max_length=128, num_labels=3, drop_path_rate=0.0,
                              problem_type="single_label_classification")
    model = CRAudioMAEForAudioClassification(config).train()
    x = torch.stack([tiny_fbanks[name][0] for name in CLIPS])
    labels = torch.tensor([0, 1, 2])
    trainer = CRTrainer(model=model, args=cr_args(tmp_path, num_views=3, cr_weight=2.0, mixup_prob=0.5))
    torch.manual_seed(7)
    loss = trainer.compute_loss(model, {"input_values": x, "labels": labels})
    # the same draws by hand: views -> one forward -> CE on the mixed one-hot targets + 2 * softmax CR
    torch.manual_seed(7)
    views, targets = make_views(x, F.one_hot(labels, 3).float(), num_views=3, mixup_prob=0.5, freq_mask=16,
                                time_mask=32, erase_prob=0.0, mask_value=trainer.spec_augment_fill_value)
    logits = model(input_values=views).logits
    ce = F.cross_entropy(logits, targets.repeat(3, 1))
    expected = ce + 2.0 * softmax_consistency_loss(logits.view(3, 3, -1))
    assert torch.allclose(loss, expected, atol=1e-5)
    assert not torch.allclose(loss, ce + 2.0 * consistency_loss(logits.view(3, 3, -1)), atol=1e-3)
    with pytest.raises(ValueError, match="integer class ids"):
        trainer.compute_loss(model, {"input_values": x, "labels": F.one_hot(labels, 3).float()})


def test_hear_views_mask_the_same_frames_in_log_mel_and_power_spectrum():
    torch.manual_seed(3)
    mel, spec = torch.randn(2, 50, 8) + 5.0, torch.randn(2, 50, 20) + 5.0
    mask = torch.ones(2, 50, dtype=torch.long)
    mask[1, 40:] = 0
    views, others, _ = make_views_with_frames(mel, None, {"power_spectrum": spec, "attention_mask": mask},
                                              num_views=3, mixup_prob=0.0, freq_mask=0, time_mask=20, erase_prob=0.0)
    assert views.shape == (6, 50, 8) and others["power_spectrum"].shape == (6, 50, 20)
    masked_mel = (views == 0).all(dim=-1)
    masked_spec = (others["power_spectrum"] == 0).all(dim=-1)
    assert masked_mel.any() and torch.equal(masked_mel, masked_spec)
    assert torch.equal(others["attention_mask"], mask.repeat(3, 1))  # validity is never masked


def test_crtrainer_trains_hear_with_power_spectrum_on_real_audio(real_clips, tmp_path):
    torch.manual_seed(0)
    config = HEARConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                        task_hidden_size=32, task_intermediate_size=64, task_num_attention_heads=2,
                        spectrum_hidden_size=16, classifier_hidden_size=16, window_length=100, window_overlap=25,
                        num_labels=3, problem_type="single_label_classification")
    model = HEARForAudioClassification(config)
    seen = []
    model.spectrum_fusion.register_forward_pre_hook(lambda module, args: seen.append(args[1].clone()))
    trainer = CRTrainer(model=model, args=cr_args(tmp_path, num_views=2, cr_weight=1.0, layer_decay=1.0),
                        train_dataset=audio_rows(real_clips),
                        data_collator=AudioClassificationCollator(HEARFeatureExtractor(), label_column="label"))
    before = [p.detach().clone() for p in model.spectrum_fusion.parameters()]
    trainer.train()
    assert seen and seen[0].shape[0] == 2 * 3  # the power spectrum travels with its 2 views
    assert any((seen[0] == 0).all(dim=-1).any(dim=-1))  # time-masked frames reach the fusion branch
    assert any(not torch.equal(a, b) for a, b in zip(before, model.spectrum_fusion.parameters()))
    logs = [e for e in trainer.state.log_history if "cr_loss" in e]
    assert logs and all(math.isfinite(e["cr_loss"]) and e["cr_loss"] >= 0 for e in logs)
    assert all(0.0 <= e["view_agreement"] <= 1.0 and e["pred_std"] >= 0 for e in logs)


def test_crtrainer_trains_transformers_ast_on_real_audio(real_clips, tmp_path):
    torch.manual_seed(0)
    config = ASTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       max_length=128, num_mel_bins=128, num_labels=3, problem_type="multi_label_classification")
    model = ASTForAudioClassification(config)
    calls = []
    model.audio_spectrogram_transformer.register_forward_pre_hook(lambda module, args: calls.append(args[0].shape))
    extractor = ASTFeatureExtractor(max_length=128)
    trainer = CRTrainer(model=model, args=cr_args(tmp_path, num_views=3, cr_weight=2.0),
                        train_dataset=audio_rows(real_clips, label_column="labels"),
                        data_collator=AudioClassificationCollator(extractor, label_column="labels"))
    before = model.classifier.dense.weight.detach().clone()
    trainer.train()
    assert calls[0] == (3 * 3, 128, 128)  # k views of the batch in one forward
    assert not torch.equal(before, model.classifier.dense.weight)
    logs = [e for e in trainer.state.log_history if "cr_loss" in e]
    assert logs and all(e["cr_loss"] > 0 and e["bce_loss"] > 0 for e in logs)


def test_lambda_rampup_follows_the_pi_model_schedule(tmp_path):
    model = CRAudioMAEForAudioClassification(CRAudioMAEConfig(hidden_size=32, num_hidden_layers=1,
                                                              num_attention_heads=2, intermediate_size=64,
                                                              max_length=128, num_labels=3))
    trainer = CRTrainer(model=model, args=cr_args(tmp_path, max_steps=100, cr_rampup_ratio=0.4))
    trainer.state.max_steps = 100
    scales = []
    for step in (0, 20, 40, 90):
        trainer.state.global_step = step
        scales.append(trainer.current_cr_scale())
    assert scales == pytest.approx([math.exp(-5.0), math.exp(-5.0 * 0.25), 1.0, 1.0])
    trainer.args.cr_rampup_ratio = 0.0
    assert trainer.current_cr_scale() == 1.0  # the paper's constant lambda
