"""The HEAR trainers' frozen helper models (stage 1's teacher, stage 2's acoustic tokenizer) are prepared by the
trainer's accelerator in evaluation mode, as trl prepares its reference model: on the accelerator's device, in eval
mode without gradients, registered with the accelerator, with the run's mixed precision applied to their forward
(bf16 on CPU here) and no DDP wrapper."""
import torch

from _helpers import TINY_HEAR, TINY_TEACHER, TINY_TOKENIZER, pretraining_dataset
from hf_audio_cr.models.cr_audiomae import CRAudioMAEConfig, CRAudioMAEModel
from hf_audio_cr.models.hear import HEARConfig, HEARForMaskedAcousticModeling, HEARTokenizerConfig, HEARTokenizerModel
from hf_audio_cr.training.hear_teachers import CRAudioMAETeacher
from hf_audio_cr.training.hear_trainers import (
    HEARMAMTrainer,
    HEARMAMTrainingArguments,
    HEARTokenizerTrainer,
    HEARTokenizerTrainingArguments,
)

COMMON = dict(max_steps=1, report_to=[], save_strategy="no", use_cpu=True, bf16=True, disable_tqdm=True)


def check_prepared(trainer, helper):
    assert any(model is helper for model in trainer.accelerator._models)  # the accelerator owns it, like the model
    assert not isinstance(helper, torch.nn.parallel.DistributedDataParallel)
    assert not helper.training and not any(p.requires_grad for p in helper.parameters())
    assert all(p.device == trainer.accelerator.device for p in helper.parameters())
    # mixed precision: accelerate wrapped its forward in the run's autocast, converting outputs to float32
    assert hasattr(helper, "_original_forward")


def test_teacher_and_acoustic_tokenizer_are_prepared_in_evaluation_mode(tmp_path):
    torch.manual_seed(0)
    tokenizer = HEARTokenizerModel(HEARTokenizerConfig(**{**TINY_TOKENIZER, "teacher_hidden_size": 32}))
    teacher = CRAudioMAETeacher(CRAudioMAEModel(CRAudioMAEConfig(**TINY_TEACHER)))
    stage1 = HEARTokenizerTrainer(model=tokenizer, teacher=teacher, train_dataset=pretraining_dataset(),
                                  args=HEARTokenizerTrainingArguments(output_dir=str(tmp_path / "1"), **COMMON))
    check_prepared(stage1, stage1.teacher)

    frozen = HEARTokenizerModel(HEARTokenizerConfig(**TINY_TOKENIZER)).train()
    model = HEARForMaskedAcousticModeling(HEARConfig(**TINY_HEAR, tokenizer_config=frozen.config.to_dict()))
    stage2 = HEARMAMTrainer(model=model, acoustic_tokenizer=frozen, train_dataset=pretraining_dataset(),
                            args=HEARMAMTrainingArguments(output_dir=str(tmp_path / "2"), **COMMON))
    check_prepared(stage2, stage2.acoustic_tokenizer)
