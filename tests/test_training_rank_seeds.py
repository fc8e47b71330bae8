"""Each rank of a multi-process CR run draws its own augmentation (seed + rank), reproducibly; the model is built
from the shared seed first, and single-process runs keep their draws."""
import torch

from hf_audio_cr import CRAudioMAEConfig, CRAudioMAEForAudioClassification
from hf_audio_cr.training import CRTrainer, CRTrainingArguments, make_views
from hf_audio_cr.training.distributed import PerRankSeedCallback


class TwoProcessArgs(CRTrainingArguments):
    """The arguments as rank ``rank`` of a two-process accelerate run sees them."""

    rank = 0

    @property
    def world_size(self):
        return 2

    @property
    def process_index(self):
        return self.rank


def _draws(trainer, args, waves):
    # the real callback path: Trainer calls on_train_begin after building its dataloader, before the first step
    trainer.callback_handler.on_train_begin(args, trainer.state, trainer.control)
    views, targets = make_views(waves, torch.eye(2), num_views=2, time_mask=32, freq_mask=16)
    return torch.cat([views.flatten(), targets.flatten()])


def test_ranks_draw_their_own_views_reproducibly(tmp_path, tiny_fbanks):
    torch.manual_seed(0)
    model = CRAudioMAEForAudioClassification(CRAudioMAEConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_length=128, num_labels=2))
    common = dict(report_to="none", use_cpu=True, save_strategy="no", seed=7)
    trainer = CRTrainer(model=model, args=CRTrainingArguments(output_dir=str(tmp_path / "a"), **common))
    assert any(isinstance(c, PerRankSeedCallback) for c in trainer.callback_handler.callbacks)
    waves = torch.stack([tiny_fbanks["robin.ogg"][0], tiny_fbanks["trumpet.ogg"][0]])

    ranks = TwoProcessArgs(output_dir=str(tmp_path / "b"), **common)
    draws = {}
    for rank in (0, 1, 0, 1):
        ranks.rank = rank
        torch.manual_seed(7)  # Trainer seeds every rank alike
        draws.setdefault(rank, []).append(_draws(trainer, ranks, waves))
    assert torch.equal(*draws[0]) and torch.equal(*draws[1])  # reproducible per rank
    assert not torch.equal(draws[0][0], draws[1][0])  # but no longer the same masks on both ranks
    torch.manual_seed(8)
    expected = torch.cat([t.flatten() for t in make_views(waves, torch.eye(2), num_views=2, time_mask=32, freq_mask=16)])
    assert torch.equal(draws[1][0], expected)  # rank 1: seed 7 + 1

    torch.manual_seed(7)  # one process: the draws Trainer's own seed gives, unchanged
    single = _draws(trainer, trainer.args, waves)
    torch.manual_seed(7)
    assert torch.equal(single, torch.cat([t.flatten() for t in make_views(waves, torch.eye(2), num_views=2, time_mask=32, freq_mask=16)]))


def test_hear_mam_ranks_draw_their_own_masks_and_crops(tmp_path):
    """HEAR stage 2: the token masks (torch RNG) and the collator's crops (python `random`) differ per rank."""
    import random

    from _helpers import TINY_HEAR, TINY_TOKENIZER
    from hf_audio_cr.models.hear import (
        HEARConfig,
        HEARForMaskedAcousticModeling,
        HEARTokenizerConfig,
        HEARTokenizerModel,
        compute_mask_time_indices,
    )
    from hf_audio_cr.training import HEARMAMTrainer, HEARMAMTrainingArguments

    class TwoProcessMAMArgs(HEARMAMTrainingArguments):
        rank = 0
        world_size = TwoProcessArgs.world_size
        process_index = property(lambda self: self.rank)

    torch.manual_seed(0)
    tokenizer = HEARTokenizerModel(HEARTokenizerConfig(**TINY_TOKENIZER))
    model = HEARForMaskedAcousticModeling(HEARConfig(**TINY_HEAR, tokenizer_config=tokenizer.config.to_dict()))
    common = dict(report_to="none", use_cpu=True, save_strategy="no", seed=7)
    trainer = HEARMAMTrainer(model=model, acoustic_tokenizer=tokenizer,
                             args=HEARMAMTrainingArguments(output_dir=str(tmp_path / "a"), **common))
    ranks = TwoProcessMAMArgs(output_dir=str(tmp_path / "b"), **common)
    draws = {}
    for rank in (0, 1, 0, 1):
        ranks.rank = rank
        torch.manual_seed(7)
        random.seed(7)
        trainer.callback_handler.on_train_begin(ranks, trainer.state, trainer.control)
        mask = compute_mask_time_indices(torch.ones(4, 64, dtype=torch.bool), 0.4)
        draws.setdefault(rank, []).append((mask, random.randint(0, 10**9)))
    assert all(torch.equal(a[0], b[0]) and a[1] == b[1] for a, b in (draws[0], draws[1]))  # reproducible per rank
    assert not torch.equal(draws[0][0][0], draws[1][0][0]) and draws[0][0][1] != draws[1][0][1]
