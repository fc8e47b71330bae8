"""Run a training script as a user does, but stop it at a known point so a test can SIGKILL it there:
``python tests/_hang_after_save.py STEP MARKER scripts/train_x.py [args ...]`` runs the script's ``main(args)``
with one more callback on its trainer, which, once checkpoint-STEP is saved, writes MARKER and waits to be killed
(a deterministic kill instead of a race between the signal and the run)."""
import importlib.util
import sys
import time
from pathlib import Path

from transformers import Trainer, TrainerCallback


class HangAfterSave(TrainerCallback):
    def __init__(self, step: int, marker: str):
        self.step, self.marker = step, Path(marker)

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            self.marker.write_text(str(self.step))
            while True:  # the checkpoint is complete on disk: wait for SIGKILL
                time.sleep(1)


def main():
    step, marker, script, *argv = sys.argv[1:]
    original_init = Trainer.__init__

    def init(self, *args, **kwargs):  # every Trainer the script builds gets the callback
        original_init(self, *args, **kwargs)
        self.add_callback(HangAfterSave(int(step), marker))

    Trainer.__init__ = init
    spec = importlib.util.spec_from_file_location("__train__", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(argv)


if __name__ == "__main__":
    main()
