"""Batched, on-device augmentations of CR-AudioMAE in the paper's order (Sec. 3.3).

Every function takes a whole batch of normalised fbanks ``[batch, time, freq]`` on the training device
and draws its randomness from torch's global RNG, so ``torch.manual_seed`` / ``Trainer``'s seed make the
views reproducible and checkpoints restore them.
"""
import math

import torch
import torchaudio.functional as AF


def mixup(
    input_values: torch.Tensor, labels: torch.Tensor | None = None, prob: float = 0.5, alpha: float = 10.0
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mixup (Zhang et al.) on fbanks: ``x = mu x1 + (1 - mu) x2``, ``y = mu y1 + (1 - mu) y2``.

    Each clip is mixed with probability ``prob`` with a partner drawn from the same batch (never
    itself), ``mu ~ Beta(alpha, alpha)`` (AudioMAE: 0.5 and Beta(10, 10)). Without labels (unlabeled
    clips) only the inputs are mixed.
    """
    batch = input_values.shape[0]
    if prob <= 0.0 or batch < 2:
        return input_values, labels
    device = input_values.device
    # A random cycle over the batch gives every clip a partner other than itself.
    order = torch.randperm(batch, device=device)
    partner = torch.empty_like(order)
    partner[order] = order.roll(-1)
    alpha_t = torch.tensor(float(alpha), device=device)
    mu = torch.distributions.Beta(alpha_t, alpha_t).sample((batch,))
    mixed = torch.rand(batch, device=device) < prob
    mu = torch.where(mixed, mu, torch.ones_like(mu)).to(input_values.dtype)
    x = mu.view(-1, 1, 1) * input_values + (1 - mu.view(-1, 1, 1)) * input_values[partner]
    if labels is None:
        return x, None
    mu = mu.view(-1, 1).to(labels.dtype)
    return x, mu * labels + (1 - mu) * labels[partner]


def raw_zero_fill_value(feature_extractor) -> float:
    """The value a raw log-Mel 0 takes after ``feature_extractor``'s normalisation ``(x - mean) / (2 std)``.

    AudioMAE masks the raw fbank with 0 and normalises afterwards, so its SpecAugment cells (and its padded
    frames) hold ``(0 + 4.2677393) / (2 * 4.5689974) = 0.467`` with the AudioSet statistics. Read from the
    extractor's own ``mean``/``std``, so other normalisation statistics give their own raw zero.
    """
    if not getattr(feature_extractor, "do_normalize", True):
        return 0.0
    mean, std = getattr(feature_extractor, "mean", None), getattr(feature_extractor, "std", None)
    if not isinstance(mean, (int, float)) or not isinstance(std, (int, float)) or std <= 0:
        raise ValueError(
            f"{type(feature_extractor).__name__} has no scalar fbank mean/std (got mean={mean!r}, std={std!r}), so "
            "the raw-zero SpecAugment fill cannot be computed; set spec_augment_fill to a number instead."
        )
    return (0.0 - mean) / (2.0 * std)


def spec_augment(
    input_values: torch.Tensor, freq_mask: int = 48, time_mask: int = 192, mask_value: float = 0.0
) -> torch.Tensor:
    """SpecAugment (Park et al.): one frequency mask of up to ``freq_mask`` bins and one time mask of
    up to ``time_mask`` frames, drawn independently for every row (AudioMAE's AudioSet settings).

    The masks are applied to the normalised features and write ``mask_value`` there: 0 is the dataset
    mean; AudioMAE's value is ``raw_zero_fill_value(feature_extractor)`` (0 in the raw fbank), which
    ``CRTrainer`` uses by default (``spec_augment_fill="raw_zero"``).
    """
    specgrams = input_values.unsqueeze(1)  # [batch, 1, time, freq]: torchaudio masks per example ("iid")
    if freq_mask > 0:
        specgrams = AF.mask_along_axis_iid(specgrams, min(freq_mask, specgrams.shape[3]), mask_value, axis=3)
    if time_mask > 0:
        specgrams = AF.mask_along_axis_iid(specgrams, min(time_mask, specgrams.shape[2]), mask_value, axis=2)
    return specgrams.squeeze(1)


def random_erasing(
    input_values: torch.Tensor,
    prob: float = 0.25,
    scale: tuple[float, float] = (0.02, 1 / 3),
    ratio: tuple[float, float] = (0.3, 1 / 0.3),
    attempts: int = 10,
) -> torch.Tensor:
    """Random Erasing (Zhong et al.): with probability ``prob`` replace one rectangle of each
    ``[time, freq]`` image by standard-normal noise (timm's "pixel" mode, used by AudioMAE).

    ``scale`` is the erased fraction of the area and ``ratio`` the rectangle's aspect ratio, the
    timm/torchvision defaults (0.02, 1/3) and (0.3, 3.3). The paper's Sec. 4.2 lists the two ranges
    swapped ("aspect ratio (0.3, 0.3) and scale (0.02, 3.3)"); a scale above 1 cannot be an area
    fraction, so we keep the library defaults. Like timm, a rectangle that does not fit is redrawn up
    to ``attempts`` times; all rows and attempts are drawn at once.
    """
    if prob <= 0.0:
        return input_values
    batch, height, width = input_values.shape
    device = input_values.device
    area = torch.empty(batch, attempts, device=device).uniform_(*scale) * (height * width)
    log_ratio = torch.empty(batch, attempts, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1]))
    aspect = log_ratio.exp()
    h = (area * aspect).sqrt().round().long()
    w = (area / aspect).sqrt().round().long()
    fits = (h < height) & (w < width) & (h > 0) & (w > 0)
    first_fit = torch.where(fits.any(dim=1), fits.float().argmax(dim=1), torch.zeros_like(fits[:, 0], dtype=torch.long))
    rows = torch.arange(batch, device=device)
    h, w = h[rows, first_fit], w[rows, first_fit]
    erase = (torch.rand(batch, device=device) < prob) & fits.any(dim=1)
    top = (torch.rand(batch, device=device) * (height - h + 1).clamp(min=1)).long()
    left = (torch.rand(batch, device=device) * (width - w + 1).clamp(min=1)).long()
    t = torch.arange(height, device=device).view(1, -1, 1)
    f = torch.arange(width, device=device).view(1, 1, -1)
    inside = (
        (t >= top.view(-1, 1, 1)) & (t < (top + h).view(-1, 1, 1))
        & (f >= left.view(-1, 1, 1)) & (f < (left + w).view(-1, 1, 1))
        & erase.view(-1, 1, 1)
    )
    return torch.where(inside, torch.randn_like(input_values), input_values)


def make_views(
    input_values: torch.Tensor,
    labels: torch.Tensor | None = None,
    num_views: int = 2,
    mixup_prob: float = 0.5,
    mixup_alpha: float = 10.0,
    freq_mask: int = 48,
    time_mask: int = 192,
    erase_prob: float = 0.25,
    mask_value: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Build ``num_views`` augmented views of a batch as one tensor for one batched forward.

    Order of Sec. 3.3: mixup once per clip (all views share the mixed clip and its mixed target), then
    per view SpecAugment (filling ``mask_value``, see ``spec_augment``) and random erasing; the model's own
    patch drop follows in its forward.

    Returns:
        ``views`` ``[num_views * batch, time, freq]`` (view ``i`` of clip ``b`` at row ``i * batch + b``)
        and the (mixed) ``labels`` ``[batch, num_classes]`` (``None`` when no labels were given).
    """
    if input_values.dim() != 3:
        raise ValueError(
            f"input_values must be [batch, time, freq] fbanks, got shape {tuple(input_values.shape)}; "
            "pass long_audio='truncate' to the feature extractor for training."
        )
    if num_views < 1:
        raise ValueError(f"num_views must be >= 1, got {num_views}.")
    input_values, labels = mixup(input_values, labels, mixup_prob, mixup_alpha)
    views = input_values.repeat(num_views, 1, 1)
    views = spec_augment(views, freq_mask, time_mask, mask_value)
    views = random_erasing(views, erase_prob)
    return views, labels


def _mixup_partners(batch: int, prob: float, alpha: float, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The partner index and weight ``mu`` of every clip (``mu = 1``: not mixed), drawn like ``mixup``."""
    order = torch.randperm(batch, device=device)
    partner = torch.empty_like(order)
    partner[order] = order.roll(-1)
    alpha_t = torch.tensor(float(alpha), device=device)
    mu = torch.distributions.Beta(alpha_t, alpha_t).sample((batch,))
    mixed = torch.rand(batch, device=device) < prob
    return partner, torch.where(mixed, mu, torch.ones_like(mu))


def make_views_with_frames(
    input_values: torch.Tensor,
    labels: torch.Tensor | None = None,
    frame_inputs: dict[str, torch.Tensor] | None = None,
    num_views: int = 2,
    mixup_prob: float = 0.5,
    mixup_alpha: float = 10.0,
    freq_mask: int = 48,
    time_mask: int = 192,
    erase_prob: float = 0.25,
    mask_value: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
    """``make_views`` for models with more than one frame-aligned input, e.g. HEAR's log-Mel ``input_values``
    with its ``power_spectrum`` and ``attention_mask`` (``[batch, frames, ...]``, same frames).

    Same order as ``make_views``: mixup once per clip (every float input mixed with the same partner and
    weight; masks become the union of the two clips' valid frames), then per view one frequency mask and
    random erasing on ``input_values`` only (the other inputs have other frequency axes), and one time mask
    shared by every float input: a frame masked in the log-Mel is masked in the power spectrum too, so the
    gated fusion never sees a frame the encoder did not. Masked float frames get ``mask_value`` in
    ``input_values`` and 0 elsewhere (HEAR normalises each feature per clip, so 0 is the clip's mean).

    Returns ``views [num_views * batch, frames, freq]``, the other inputs repeated/augmented the same way and
    the (mixed) labels.
    """
    if input_values.dim() != 3:
        raise ValueError(f"input_values must be [batch, frames, freq], got shape {tuple(input_values.shape)}.")
    frame_inputs = dict(frame_inputs or {})
    batch, frames = input_values.shape[:2]
    for name, value in frame_inputs.items():
        if tuple(value.shape[:2]) != (batch, frames):
            raise ValueError(f"{name} must share input_values' (batch, frames) = {(batch, frames)}, got {tuple(value.shape)}.")
    if mixup_prob > 0.0 and batch > 1:
        partner, mu = _mixup_partners(batch, mixup_prob, mixup_alpha, input_values.device)

        def mix(x):
            if not x.is_floating_point():  # a validity mask: valid where either clip is
                return torch.maximum(x, x[partner])
            w = mu.to(x.dtype).view(-1, *([1] * (x.dim() - 1)))
            return w * x + (1 - w) * x[partner]

        input_values = mix(input_values)
        frame_inputs = {name: mix(value) for name, value in frame_inputs.items()}
        if labels is not None:
            labels = mix(labels)
    views = spec_augment(input_values.repeat(num_views, 1, 1), freq_mask, 0, mask_value)
    repeated = {name: value.repeat(num_views, *([1] * (value.dim() - 1))) for name, value in frame_inputs.items()}
    if time_mask > 0:
        ones = views.new_ones(views.shape[0], 1, frames, 1)
        keep = AF.mask_along_axis_iid(ones, min(time_mask, frames), 0.0, axis=2).view(-1, frames) > 0
        views = torch.where(keep[..., None], views, torch.full_like(views, mask_value))
        for name, value in repeated.items():
            if value.is_floating_point():
                shape = (-1, frames) + (1,) * (value.dim() - 2)
                repeated[name] = torch.where(keep.view(shape), value, torch.zeros_like(value))
    views = random_erasing(views, erase_prob)
    return views, repeated, labels
