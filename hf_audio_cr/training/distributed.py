"""Ending a multi-process (accelerate / torchrun) run without torch's gloo teardown races."""
import os
import sys


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
    if trainer.accelerator.num_processes <= 1:
        return
    trainer.accelerator.wait_for_everyone()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
