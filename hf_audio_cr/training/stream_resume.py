"""Exact resume of streams: where each process's training stream (and the semi-supervised trainer's unlabeled
stream) stood when a checkpoint was written.

Why: for a dataset without a length ``Trainer`` counts the whole run as one epoch of ``max_steps`` steps and, on
resume, skips ``global_step`` batches of the stream's first pass (``skip_first_batches``). A stream shorter than
the run has wrapped around by then, so the skip runs off the end of pass 0 and training restarts pass 1 from its
first batch: a different data order from the uninterrupted run's. ``datasets.IterableDataset.state_dict()`` is no
exact alternative either: it restores the shard positions but not the shuffle buffer's content (datasets refills
the buffer, so the order after resume differs). So each checkpoint records the stream's pass (``set_epoch``) and
the batches taken in it, per process, in ``stream_state_{process_index}.json`` -- written with the RNG state,
before ``trainer_state.json`` marks the checkpoint complete -- and a resumed run sets that pass and skips that many
batches, as ``Trainer`` does for map-style data. Skipped batches are read and collated again (not trained on), so
a collator must not draw from the global RNG for the resumed run to be bitwise equal.
"""
import json
import os

from transformers.trainer_utils import has_length


def stream_state_file(checkpoint: str, process_index: int) -> str:
    return os.path.join(checkpoint, f"stream_state_{process_index}.json")


class StreamResumeMixin:
    """For ``Trainer`` subclasses: checkpoint the training stream's ``{"epoch", "batches"}`` position (and any other
    positions in ``self._stream_positions``) and resume it exactly. Map-style training sets keep ``Trainer``'s own
    resume (their sampler is seeded per epoch)."""

    _stream_positions: dict

    def _run_epoch(self, *args, epoch, **kwargs):
        skipped = kwargs.get("steps_trained_in_current_epoch", 0) if epoch == kwargs.get("epochs_trained") else 0
        self._positions()["train"] = {"epoch": epoch, "batches": skipped if kwargs.get("resume_from_checkpoint") else 0}
        return super()._run_epoch(*args, epoch=epoch, **kwargs)

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        batch_samples, num_items = super().get_batch_samples(epoch_iterator, num_batches, device)
        if "train" in self._positions():
            self._positions()["train"]["batches"] += len(batch_samples)
        return batch_samples, num_items

    def _positions(self) -> dict:
        if not hasattr(self, "_stream_positions"):
            self._stream_positions = {}
        return self._stream_positions

    def _save_rng_state(self, output_dir):
        super()._save_rng_state(output_dir)
        with open(stream_state_file(output_dir, self.args.process_index), "w") as f:
            json.dump(self._positions(), f)

    def saved_stream_position(self, checkpoint, name: str):
        """The ``{"epoch", "batches"}`` of stream ``name`` in ``checkpoint`` for this process, or None."""
        path = stream_state_file(checkpoint, self.args.process_index) if checkpoint else None
        if path is None or not os.path.isfile(path):
            return None
        with open(path) as f:
            return json.load(f).get(name)

    def _init_training_state(self, max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint,
                             trial):
        epochs, steps = super()._init_training_state(
            max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial
        )
        streamed = self.train_dataset is not None and not has_length(self.train_dataset)
        position = self.saved_stream_position(resume_from_checkpoint, "train") if streamed else None
        if position is not None and not self.args.ignore_data_skip:
            # the stream's own pass and the batches taken in it, instead of global_step batches of pass 0
            epochs, steps = position["epoch"], position["batches"]
        return epochs, steps
