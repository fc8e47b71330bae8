"""Ending a multi-process (accelerate / torchrun) run without torch's gloo teardown races."""
import os
import sys

from transformers import TrainerCallback


def exit_distributed_run(trainer, exit_code: int = 0) -> None:
    """Wait for every rank, then leave the process without tearing the process group down.

    Why: right after the last collective a gloo worker thread may still be releasing that collective's
    tensors, which needs the GIL. If the rank then reaches interpreter exit, the thread is killed while
    unwinding C++ and the process aborts ("terminate called without an active exception", SIGABRT); if it
    calls ``destroy_process_group`` or frees the DDP model instead, ``~ProcessGroupGloo`` joins that thread
    while holding the GIL and the rank hangs (pytorch/pytorch#56297, #179291). Seen here in about 1 of 12
    two-process CPU runs under load. Everything ``Trainer`` writes is on disk when it returns, so the
    ranks flush their streams and exit directly. Call it as the last statement of a launched script, with
    ``trainer`` still referenced; single-process runs return normally.
    """
    from accelerate import PartialState

    state = trainer.accelerator if trainer is not None else PartialState()  # None: a script that built several
    if state.num_processes <= 1:
        return
    state.wait_for_everyone()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)


def prepare_frozen_model(accelerator, model):
    """A frozen helper model (a teacher, a tokenizer giving targets) prepared as trl prepares its reference model:
    ``accelerator.prepare_model(..., evaluation_mode=True)`` places it on the device and applies the run's mixed
    precision (and ``torch.compile`` when configured) without a DDP wrapper, optimizer or gradients."""
    model = accelerator.prepare_model(model.eval().requires_grad_(False), evaluation_mode=True)
    return model.eval()


def seed_per_rank(seed: int, rank: int) -> int:
    """Seed python, numpy and torch (CUDA included) with ``seed + rank`` and return it.

    Why: ``Trainer`` seeds every process with the same ``args.seed``, so in a multi-process run every rank would
    draw the same mixup / SpecAugment / erasing masks for its different clips. ``seed + rank`` gives each rank
    its own draws and keeps the run reproducible for a given world size.
    """
    from transformers import set_seed

    set_seed(int(seed) + int(rank))
    return int(seed) + int(rank)


class PerRankSeedCallback(TrainerCallback):
    """Re-seeds each rank with ``args.seed + args.process_index`` when training starts, after the model was built
    from the shared seed (DDP also broadcasts rank 0's weights). A resumed run restores each rank's saved RNG state
    after this, so it continues the uninterrupted run's draws. Single-process runs are left as they are."""

    def on_train_begin(self, args, state, control, **kwargs):
        if args.world_size > 1:
            seed_per_rank(args.seed, args.process_index)
