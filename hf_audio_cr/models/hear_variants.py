"""HEAR's downstream classifier in the paper's four fine-tuning settings (Table IV), built from a stage-2 folder.

``full`` (pre-trained acoustic model, gated power spectrum, everything fine-tuned), ``without_spectrum``,
``transfer`` (acoustic model frozen) and ``scratch`` (random initialisation). Outside the ``hear`` model folder,
which is self-contained remote code: this module resolves local paths and Hub ids.
"""
from __future__ import annotations

from ..paths import check_local_or_hub
from ..training.hear_config import HEAR_VARIANTS, check_config_overrides  # light: the arguments' module
from .hear import HEARConfig, HEARForAudioClassification


def build_hear_classifier(
    variant: str,
    pretrained_model_name_or_path: str | None = None,
    id2label: dict | None = None,
    config_overrides: dict | None = None,
    **from_pretrained_kwargs,
) -> HEARForAudioClassification:
    """``HEARForAudioClassification`` for a Table IV setting, single-label with ``id2label``'s classes.

    ``full`` / ``without_spectrum`` / ``transfer`` load the pre-trained acoustic model (a stage-2
    ``HEARForMaskedAcousticModeling`` or ``HEARModel`` folder: its ``hear.*`` weights; the task model and head
    start random). ``scratch`` takes only the architecture (from the folder's config, or ``config_overrides``).
    """
    if variant not in HEAR_VARIANTS:
        raise ValueError(f"variant must be one of {HEAR_VARIANTS}, got {variant!r}.")
    config_overrides = check_config_overrides(HEARConfig, config_overrides)
    labels = {}
    if id2label is not None:
        id2label = {int(k): v for k, v in id2label.items()}
        labels = {"id2label": id2label, "label2id": {v: k for k, v in id2label.items()}, "num_labels": len(id2label)}
    settings = {
        "use_power_spectrum": variant != "without_spectrum",
        "freeze_acoustic_model": variant == "transfer",
        "problem_type": "single_label_classification",
        **labels,
    }
    pretrained_model_name_or_path = pretrained_model_name_or_path and check_local_or_hub(pretrained_model_name_or_path)
    if variant == "scratch":
        if pretrained_model_name_or_path:
            config = HEARConfig.from_pretrained(pretrained_model_name_or_path, **from_pretrained_kwargs)
            for name, value in {**(config_overrides or {}), **settings}.items():
                setattr(config, name, value)
        else:
            config = HEARConfig(**{**(config_overrides or {}), **settings})
        return HEARForAudioClassification(config)
    if not pretrained_model_name_or_path:
        raise ValueError(f"variant={variant!r} needs pretrained_model_name_or_path (a stage-2 folder).")
    model = HEARForAudioClassification.from_pretrained(
        pretrained_model_name_or_path, **{**(config_overrides or {}), **settings}, **from_pretrained_kwargs
    )
    if variant == "transfer":
        # from_pretrained materialises fresh parameters after __init__ froze them: freeze again
        model.freeze_acoustic_model()
    return model


__all__ = ["HEAR_VARIANTS", "build_hear_classifier", "check_config_overrides"]
