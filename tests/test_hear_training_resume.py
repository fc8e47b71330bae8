"""The Gumbel temperature survives a stop: a real Trainer checkpoint, a fresh process state, resume_from_checkpoint."""
import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from _helpers import TINY_TOKENIZER, pretraining_dataset
from hf_audio_cr.data import HEARPretrainingCollator
from hf_audio_cr.models.hear import HEARFeatureExtractor, HEARTokenizerConfig, HEARTokenizerModel
from hf_audio_cr.training.hear_trainers import HEARTokenizerTrainer, HEARTokenizerTrainingArguments

DECAY = 0.9  # a fast schedule, so every step moves the temperature visibly


class StopAt(TrainerCallback):
    """Stops training after `step` (as a crash would, right after that step's checkpoint)."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


class RecordTemperature(TrainerCallback):
    def __init__(self):
        self.at_train_begin = None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.at_train_begin = model.gumbel_temperature


def make_trainer(output_dir, dataset, callbacks):
    torch.manual_seed(0)
    model = HEARTokenizerModel(HEARTokenizerConfig(**TINY_TOKENIZER, gumbel_temperature_decay=DECAY))
    args = HEARTokenizerTrainingArguments(
        output_dir=str(output_dir), max_steps=6, save_steps=3, per_device_train_batch_size=4, learning_rate=1e-3,
        warmup_steps=0, distillation_weight=0.0, report_to=[], use_cpu=True, dataloader_num_workers=0,
        disable_tqdm=True, logging_steps=1,
    )
    collator = HEARPretrainingCollator(HEARFeatureExtractor(), max_seconds=1.0, seed=0)
    return HEARTokenizerTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator, callbacks=callbacks)


def test_gumbel_temperature_after_resume_equals_temperature_before_the_stop(tmp_path):
    dataset = pretraining_dataset()
    first = make_trainer(tmp_path, dataset, [StopAt(3)])
    first.train()
    before_stop = first.model.gumbel_temperature
    assert first.state.global_step == 3 and before_stop == pytest.approx(2.0 * DECAY**3, rel=1e-6)
    saved = load_file(tmp_path / "checkpoint-3" / "model.safetensors")["quantizer.temperature"]
    assert saved.item() == before_stop

    record = RecordTemperature()
    resumed = make_trainer(tmp_path, dataset, [record])
    assert resumed.model.gumbel_temperature == 2.0  # a fresh model starts the schedule again...
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-3"))
    assert record.at_train_begin == before_stop  # ...the checkpoint brings the annealed temperature back
    # and the schedule continues: three more optimizer steps, as in an uninterrupted run
    assert resumed.model.gumbel_temperature == pytest.approx(2.0 * DECAY**6, rel=1e-6)
    logged = [e["gumbel_temperature"] for e in resumed.state.log_history if "gumbel_temperature" in e]
    assert logged[-3:] == pytest.approx([2.0 * DECAY**k for k in (4, 5, 6)], rel=1e-5)
