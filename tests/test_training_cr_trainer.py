"""CRTrainer and SemiSupervisedCRTrainer on a tiny CR-AudioMAE and real-audio fbank crops."""
import datasets
import pytest
import torch
from transformers import Trainer

from hf_audio_cr import CRAudioMAEConfig, CRAudioMAEForAudioClassification
from hf_audio_cr.training import (
    AudiosetWeightedSampler,
    CRTrainer,
    CRTrainingArguments,
    SemiSupervisedCRTrainer,
    audioset_compute_metrics,
)

CLASSES = ("robin.ogg", "trumpet.ogg", "speech_female.ogg")


def tiny_model(num_labels=3, seed=0):
    torch.manual_seed(seed)
    config = CRAudioMAEConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_length=128, num_mel_bins=128, num_labels=num_labels, drop_path_rate=0.0,
    )
    return CRAudioMAEForAudioClassification(config)


@pytest.fixture(scope="module")
def rows(tiny_fbanks):
    """One row per real 1.28 s crop: fbank + multi-hot target of its source recording (3 classes)."""
    out = []
    for index, name in enumerate(CLASSES):
        for fbank in tiny_fbanks[name][:4]:
            out.append({"input_values": fbank, "labels": torch.nn.functional.one_hot(torch.tensor(index), 3).float()})
    return out  # 2 robin, 4 trumpet, 4 speech


def cr_args(tmp_path, **overrides):
    defaults = dict(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, max_steps=2, logging_steps=1,
        report_to="none", save_strategy="no", use_cpu=True, dataloader_num_workers=0, disable_tqdm=True,
        time_mask=64,
    )
    return CRTrainingArguments(**{**defaults, **overrides})


def batch_of(rows, n=4):
    return {"input_values": torch.stack([r["input_values"] for r in rows[:n]]), "labels": torch.stack([r["labels"] for r in rows[:n]])}


def test_lambda0_one_view_equals_plain_bce_loss_and_gradients(rows, tmp_path):
    off = dict(cr_weight=0.0, num_views=1, mixup_prob=0.0, freq_mask=0, time_mask=0, erase_prob=0.0)
    batch = batch_of(rows[2:])
    model = tiny_model()
    cr = CRTrainer(model=model, args=cr_args(tmp_path, **off))
    plain = Trainer(model=model, args=cr_args(tmp_path, **off))
    model.train()
    results = []
    for trainer in (cr, plain):
        model.zero_grad()
        torch.manual_seed(5)  # same patch-drop masks
        loss = trainer.compute_loss(model, dict(batch))
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    (loss_cr, grads_cr), (loss_plain, grads_plain) = results
    assert torch.allclose(loss_cr, loss_plain, atol=1e-6)
    assert len(grads_cr) == len(grads_plain) > 10
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(grads_cr, grads_plain))


def test_views_run_as_one_batched_forward_with_eq6_loss(rows, tmp_path):
    model = tiny_model()
    trainer = CRTrainer(model=model, args=cr_args(tmp_path, num_views=3, cr_weight=2.0))
    calls = []
    handle = model.audiomae.register_forward_pre_hook(lambda module, args: calls.append(args[0].shape[0]))
    model.train()
    loss = trainer.compute_loss(model, batch_of(rows))
    handle.remove()
    assert calls == [3 * 4]
    bce, cr = trainer._metrics["train"]["bce_loss"][-1], trainer._metrics["train"]["cr_loss"][-1]
    assert cr > 0 and torch.allclose(loss, bce + 2.0 * cr)


def test_training_logs_bce_and_cr_terms_and_loss_falls(rows, tmp_path):
    args = cr_args(
        tmp_path, max_steps=40, learning_rate=5e-3, warmup_steps=0, num_views=2, cr_weight=1.0, seed=0,
        per_device_eval_batch_size=10,
    )
    trainer = CRTrainer(model=tiny_model(), args=args, train_dataset=rows, eval_dataset=rows)
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()["eval_loss"]
    assert after < 0.9 * before, (before, after)  # clean BCE on the real crops
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 40
    for entry in logs:
        assert {"bce_loss", "cr_loss"} <= entry.keys()
        assert entry["loss"] == pytest.approx(entry["bce_loss"] + 1.0 * entry["cr_loss"], rel=1e-3, abs=1e-4)


def test_evaluation_logs_the_eq6_terms_and_keeps_the_clean_score_and_the_training_draws(rows, tmp_path):
    def run(eval_loss_terms):
        args = cr_args(tmp_path, max_steps=4, num_views=3, cr_weight=1.0, seed=0, eval_strategy="steps", eval_steps=2,
                       per_device_eval_batch_size=5, eval_loss_terms=eval_loss_terms)
        trainer = CRTrainer(model=tiny_model(), args=args, train_dataset=rows, eval_dataset=rows)
        trainer.train()
        return trainer, trainer.state.log_history

    trainer, history = run(eval_loss_terms=True)
    evaluations = [entry for entry in history if "eval_loss" in entry]
    assert len(evaluations) == 2
    for entry in evaluations:
        assert entry["eval_bce_loss"] > 0 and entry["eval_cr_loss"] > 0
        assert {"eval_pred_std", "eval_view_gap", "eval_view_agreement"} <= entry.keys()
        assert "bce_loss" not in entry  # training terms stay in the training logs
    test = trainer.evaluate(rows, metric_key_prefix="test")  # the evaluation's own prefix
    assert test["test_bce_loss"] > 0 and test["test_cr_loss"] > 0 and "eval_cr_loss" not in test
    # the views are extra: the clean score and the training run (its augmentation draws) are those without them
    _, plain = run(eval_loss_terms=False)
    assert [e["eval_loss"] for e in plain if "eval_loss" in e] == [e["eval_loss"] for e in evaluations]
    assert [e["loss"] for e in plain if "loss" in e] == [e["loss"] for e in history if "loss" in e]
    assert not any("eval_cr_loss" in e for e in plain)


def test_evaluation_runs_clean_input_once_and_scores_527_columns(rows, tmp_path):
    model = tiny_model(num_labels=556)
    eval_rows = []
    for row in rows:
        labels = torch.zeros(556)
        labels[: 3] = row["labels"]
        labels[540] = 1.0  # an ontology ancestor switched on in every target: never scored
        eval_rows.append({"input_values": row["input_values"], "labels": labels})
    trainer = CRTrainer(
        model=model, args=cr_args(tmp_path, per_device_eval_batch_size=5, num_views=4),
        eval_dataset=eval_rows, compute_metrics=audioset_compute_metrics(),
    )
    calls = []
    handle = model.audiomae.register_forward_pre_hook(lambda module, args: calls.append(args[0].shape[0]))
    metrics = trainer.evaluate()
    handle.remove()
    assert calls == [5, 5]  # no views at evaluation
    assert metrics["eval_num_scored_classes"] == 3  # columns 0-2; column 540 is outside the 527
    assert 0.0 < metrics["eval_mAP"] <= 1.0 and "eval_mAUC" in metrics and "eval_d_prime" in metrics


def test_weighted_sampler_drives_the_train_dataloader(rows, tmp_path):
    table = datasets.Dataset.from_list([{"input_values": r["input_values"].tolist(), "labels": r["labels"].tolist()} for r in rows])
    args = cr_args(tmp_path, weighted_sampling=True, epoch_length=24, per_device_train_batch_size=4)
    trainer = CRTrainer(model=tiny_model(), args=args, train_dataset=table.with_format("torch"))
    loader = trainer.get_train_dataloader()
    assert isinstance(trainer._get_train_sampler(), AudiosetWeightedSampler)
    assert len(loader) == 6  # 24 draws / batch 4
    drawn = torch.cat([batch["labels"] for batch in loader])
    assert drawn.shape == (24, 3)
    distinct = CRTrainer(model=tiny_model(), args=cr_args(tmp_path, weighted_sampling=True, epoch_length=8,
                                                          weighted_sampling_replacement=False), train_dataset=table)
    sampler = distinct._get_train_sampler()
    assert not sampler.replacement and len(set(sampler)) == 8  # AudioMAE's AS-2M recipe: no clip twice per epoch
    with pytest.raises(ValueError, match="map-style"):
        CRTrainer(model=tiny_model(), args=args, train_dataset=table.to_iterable_dataset())


def test_layer_wise_lr_decay_groups(tmp_path):
    model = tiny_model()
    trainer = CRTrainer(model=model, args=cr_args(tmp_path, learning_rate=1e-3, layer_decay=0.75, weight_decay=5e-4))
    optimizer = trainer.create_optimizer()
    lr_of = {id(p): (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert lr_of[id(named["head.weight"])] == (pytest.approx(1e-3), 5e-4)
    assert lr_of[id(named["audiomae.layers.1.mlp.fc1.weight"])][0] == pytest.approx(1e-3 * 0.75)
    assert lr_of[id(named["audiomae.layers.0.attn.qkv.weight"])][0] == pytest.approx(1e-3 * 0.75**2)
    assert lr_of[id(named["audiomae.embeddings.patch_embed.weight"])][0] == pytest.approx(1e-3 * 0.75**3)
    assert lr_of[id(named["audiomae.embeddings.cls_token"])][1] == 0.0  # no decay on cls token, biases, norms
    assert lr_of[id(named["audiomae.layers.0.norm1.weight"])][1] == 0.0
    assert lr_of[id(named["head.bias"])][1] == 0.0
    assert sum(len(g["params"]) for g in optimizer.param_groups) == sum(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("layer_decay", [0.75, 1.0])
def test_position_table_of_a_loaded_model_stays_out_of_the_optimizer(tmp_path, layer_decay):
    tiny_model().save_pretrained(tmp_path / "saved")
    model = CRAudioMAEForAudioClassification.from_pretrained(tmp_path / "saved")
    trainer = CRTrainer(model=model, args=cr_args(tmp_path, layer_decay=layer_decay))
    optimizer = trainer.create_optimizer()
    table = model.audiomae.embeddings.position_embeddings
    optimized = [p for group in optimizer.param_groups for p in group["params"]]
    assert all(p is not table for p in optimized)
    assert len(optimized) == len(list(model.parameters())) - 1  # everything else is trained
    if layer_decay < 1.0:  # without the freeze it would sit in the embeddings group at lr * 0.75^(L + 1)
        assert min(group["lr"] for group in optimizer.param_groups) == pytest.approx(1e-3 * 0.75**3)


def _masked_cells(trainer, rows):
    """Cells SpecAugment changed in the trainer's views of a batch, with mixup and erasing off."""
    batch = batch_of(rows)
    torch.manual_seed(0)
    views, _ = trainer._views(batch["input_values"], batch["labels"])
    changed = views != batch["input_values"].repeat(trainer.args.num_views, 1, 1)
    assert changed.any()
    return views[changed]


@pytest.mark.parametrize("where", ["data_collator", "processing_class"])
def test_spec_augment_fills_the_raw_zero_of_the_feature_extractors_own_statistics(rows, tmp_path, where):
    from hf_audio_cr import AudioMAEFeatureExtractor
    from hf_audio_cr.data import AudioClassificationCollator

    extractor = AudioMAEFeatureExtractor(max_length=128, mean=-6.0, std=3.0)  # raw 0 -> (0 + 6) / (2 * 3) = 1
    source = {"data_collator": AudioClassificationCollator(extractor)} if where == "data_collator" else {"processing_class": extractor}
    args = cr_args(tmp_path, mixup_prob=0.0, erase_prob=0.0)
    assert args.spec_augment_fill == "raw_zero"  # AudioMAE's behaviour is the default
    cells = _masked_cells(CRTrainer(model=tiny_model(), args=args, **source), rows)
    assert torch.all(cells == 1.0)


def test_spec_augment_fill_without_extractor_and_by_choice(rows, tmp_path):
    off = dict(mixup_prob=0.0, erase_prob=0.0)
    audioset_raw_zero = (0 + 4.2677393) / (2 * 4.5689974)  # AudioMAE's AudioSet statistics: 0.467
    cells = _masked_cells(CRTrainer(model=tiny_model(), args=cr_args(tmp_path, **off)), rows)
    assert torch.allclose(cells, torch.tensor(audioset_raw_zero))
    cells = _masked_cells(CRTrainer(model=tiny_model(), args=cr_args(tmp_path, spec_augment_fill="mean", **off)), rows)
    assert torch.all(cells == 0.0)  # 0 in normalised units: the dataset mean
    cells = _masked_cells(CRTrainer(model=tiny_model(), args=cr_args(tmp_path, spec_augment_fill="-0.5", **off)), rows)
    assert torch.all(cells == -0.5)
    with pytest.raises(ValueError, match="spec_augment_fill"):
        cr_args(tmp_path, spec_augment_fill="noise")


def test_arguments_reject_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="num_views >= 2"):
        cr_args(tmp_path, num_views=1, cr_weight=2.0)
    with pytest.raises(ValueError, match="mixup_prob"):
        cr_args(tmp_path, mixup_prob=1.5)
    with pytest.raises(ValueError, match="unlabeled_augment"):
        cr_args(tmp_path, unlabeled_augment=["cutmix"])
    trainer = CRTrainer(model=tiny_model(), args=cr_args(tmp_path))
    trainer.model.train()
    with pytest.raises(ValueError, match="multi-hot"):
        trainer.compute_loss(trainer.model, {"input_values": torch.zeros(2, 128, 128), "labels": torch.tensor([0, 1])})


@pytest.mark.parametrize("streaming", [False, True])
def test_semi_supervised_eq7_one_forward_and_unlabeled_views_unmixed(rows, tmp_path, streaming):
    labeled, unlabeled = rows[::2][:4], [{"input_values": r["input_values"]} for r in rows]
    if streaming:
        unlabeled = datasets.Dataset.from_list([{"input_values": r["input_values"].tolist()} for r in unlabeled])
        unlabeled = unlabeled.to_iterable_dataset().with_format("torch")
    args = cr_args(
        tmp_path, per_device_train_batch_size=2, unlabeled_ratio=2, num_views=2, cr_weight=1.5,
        unlabeled_cr_weight=1.0, mixup_prob=1.0, erase_prob=1.0, freq_mask=0, time_mask=0, max_steps=3,
    )
    model = tiny_model()
    trainer = SemiSupervisedCRTrainer(model=model, args=args, train_dataset=labeled, unlabeled_dataset=unlabeled)
    seen = []
    handle = model.audiomae.register_forward_pre_hook(lambda module, a: seen.append(a[0].detach().clone()))
    trainer.train()
    handle.remove()
    assert [views.shape[0] for views in seen] == [2 * (2 + 4)] * 3  # k * (B + ratio * B), one forward per step
    raw = torch.stack([r["input_values"] for r in rows])
    for views in seen:
        unlabeled_views = views[4:]  # no mixup or erasing by default: every view is a raw clip
        assert all((raw == v).flatten(1).all(1).any() for v in unlabeled_views)
        assert not all((raw == v).flatten(1).all(1).any() for v in views[:4])  # labeled views are mixed/erased
    logs = [e for e in trainer.state.log_history if "loss" in e]
    for entry in logs:
        assert {"bce_loss", "cr_loss", "unlabeled_cr_loss"} <= entry.keys()
        total = entry["bce_loss"] + 1.5 * entry["cr_loss"] + 1.0 * entry["unlabeled_cr_loss"]
        assert entry["loss"] == pytest.approx(total, rel=1e-3, abs=1e-4)
