"""Our models return per-batch mean losses: Trainer must divide them for gradient accumulation itself."""
import torch
from transformers import Trainer, TrainingArguments

from _helpers import TINY_HEAR_WINDOWED
from hf_audio_cr import (
    CRAudioMAEConfig,
    CRAudioMAEForAudioClassification,
    HEARConfig,
    HEARFeatureExtractor,
    HEARForAudioClassification,
)


def two_accumulated_steps_equal_one_big_step(model, batch, tmp_path):
    """Gradients of one step over 4 clips vs 2 accumulated steps of 2 clips, through Trainer.training_step."""
    def grads(accumulation, parts):
        model.zero_grad()
        args = TrainingArguments(output_dir=str(tmp_path), gradient_accumulation_steps=accumulation, report_to=[], use_cpu=True)
        trainer = Trainer(model=model, args=args)
        trainer.current_gradient_accumulation_steps = accumulation  # set by the training loop in real runs
        for part in parts:
            trainer.training_step(model, part, num_items_in_batch=torch.tensor(4))
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    whole = grads(1, [batch])
    halves = grads(2, [{k: v[:2] for k, v in batch.items()}, {k: v[2:] for k, v in batch.items()}])
    return all(torch.allclose(a, b, atol=1e-6) for a, b in zip(whole, halves))


def test_cr_audiomae_loss_is_divided_for_gradient_accumulation(tmp_path):
    torch.manual_seed(0)
    config = CRAudioMAEConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                              max_length=128, num_labels=3, drop_path_rate=0.0, patch_drop_time=0.0, patch_drop_freq=0.0)
    model = CRAudioMAEForAudioClassification(config)
    batch = {"input_values": torch.randn(4, 128, 128), "labels": torch.randint(0, 2, (4, 3)).float()}
    assert two_accumulated_steps_equal_one_big_step(model, batch, tmp_path)


def test_hear_classifier_loss_is_divided_for_gradient_accumulation(tmp_path, real_clips):
    # The head's BatchNorm makes 4 clips and 2 x 2 clips differ, so compare one accumulated step with the
    # model's own loss on the same batch: Trainer must backpropagate loss / accumulation steps.
    config = HEARConfig(**TINY_HEAR_WINDOWED, num_labels=3, hidden_dropout=0.0, attention_dropout=0.0)
    torch.manual_seed(0)
    model = HEARForAudioClassification(config)
    clips = [wave[:16000] for wave in real_clips.values()] + [real_clips["trumpet.ogg"][16000:32000]]
    batch = dict(HEARFeatureExtractor()(clips, sampling_rate=16000, return_tensors="pt"), labels=torch.tensor([0, 1, 2, 1]))

    def grads(step):
        model.zero_grad()
        model.train()
        torch.manual_seed(1)
        step()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    args = TrainingArguments(output_dir=str(tmp_path), gradient_accumulation_steps=2, report_to=[], use_cpu=True)
    trainer = Trainer(model=model, args=args)
    trainer.current_gradient_accumulation_steps = 2  # set by the training loop in real runs
    accumulated = grads(lambda: trainer.training_step(model, batch, num_items_in_batch=torch.tensor(8)))
    halved = grads(lambda: (model(**batch).loss / 2).backward())
    assert len(accumulated) == len(halved) > 0
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(accumulated, halved))
