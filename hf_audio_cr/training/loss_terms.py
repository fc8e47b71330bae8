"""The terms of a many-term objective, logged next to ``loss`` in training and in evaluation's metrics.

The trainers' ``compute_loss`` records each term of its objective (``bce_loss`` and ``cr_loss`` of Eq. 6, the three
terms of HEAR's Eq. 1, ...) in the bucket of the mode it runs in, as trl's trainers keep ``_metrics[mode]``: a
training log gets the mean of each term since the last log, an evaluation (``evaluate``, ``predict``) the mean over
its batches under its own prefix (``eval_bce_loss``, ``test_bce_loss``). Means are averaged over processes.
"""
from collections import defaultdict

import torch

MODES = ("train", "eval")


class LossTermsMixin:
    """Mix into a ``Trainer`` subclass (before ``Trainer``); call ``self._record(name=value, ...)`` from
    ``compute_loss``. Subclasses may add training-only values through ``_extra_logs``."""

    @property
    def _metrics(self) -> dict:
        if "_loss_term_buckets" not in self.__dict__:  # created on first use: no __init__ to chain
            self._loss_term_buckets = {mode: defaultdict(list) for mode in MODES}
        return self._loss_term_buckets

    def _record(self, **terms) -> None:
        mode = "train" if self.model.training else "eval"
        for name, value in terms.items():
            self._metrics[mode][name].append(torch.as_tensor(value, dtype=torch.float32).detach())

    def _mean_terms(self, mode: str) -> dict:
        """The mean of each term recorded in ``mode`` (averaged over processes), emptying the bucket."""
        terms = self._metrics[mode]
        if not terms:
            return {}
        names = sorted(terms)
        means = torch.stack([torch.stack(terms[name]).to(self.args.device).mean() for name in names])
        means = self.accelerator.reduce(means, reduction="mean")
        terms.clear()
        return {name: round(value, 6) for name, value in zip(names, means.tolist())}

    def _extra_logs(self) -> dict:
        return {}

    def log(self, logs, start_time=None):
        if "loss" in logs:  # a training log (evaluation adds its terms in evaluation_loop)
            logs.update(self._mean_terms("train"))
            logs.update(self._extra_logs())
        super().log(logs, start_time)

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None,
                        metric_key_prefix="eval"):
        self._metrics["eval"].clear()
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        # into the returned metrics, so evaluate()'s result, its log entry and on_evaluate callbacks all carry them
        output.metrics.update({f"{metric_key_prefix}_{name}": value for name, value in self._mean_terms("eval").items()})
        return output


__all__ = ["LossTermsMixin"]
