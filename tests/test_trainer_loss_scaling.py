"""Our models return per-batch mean losses: Trainer must divide them for gradient accumulation itself."""
import torch
from transformers import Trainer, TrainingArguments

from hf_audio_cr import CRAudioMAEConfig, CRAudioMAEForAudioClassification, HEARConfig, HEARForAudioClassification


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


def test_hear_classifier_loss_is_divided_for_gradient_accumulation(tmp_path):
    # the head's BatchNorm makes 4 clips and 2 x 2 clips differ, so check the flag Trainer reads
    assert HEARForAudioClassification.accepts_loss_kwargs is False
    trainer = Trainer(model=HEARForAudioClassification(HEARConfig(num_labels=3)),
                      args=TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True))
    assert trainer.model_accepts_loss_kwargs is False
