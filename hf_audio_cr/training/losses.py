"""Consistency-regularisation loss of CR-AudioMAE (Sadhu & Wang, Sec. 3.2)."""
import torch
import torch.nn.functional as F


def consistency_loss(logits_views: torch.Tensor) -> torch.Tensor:
    """Multi-label consistency loss between ``k`` augmented views of the same clips (Eq. 2-5).

    Args:
        logits_views: ``[num_views, batch, num_classes]`` logits, view ``i`` of clip ``b`` at ``[i, b]``.

    Returns:
        Scalar loss. Each view's sigmoid probabilities are, with stop-gradient, the soft target of
        every other view (Eq. 2-3); the per-pair binary cross-entropy has mean reduction over clips and
        classes (as AudioMAE's BCE), and the pairs are averaged over the ``k (k - 1)`` ordered pairs
        ``i != j``. For ``k = 2`` this is exactly Eq. 4, ``(L_p1p2 + L_p2p1) / 2``. A literal reading of
        Eq. 5 (``1/(k(k-1)) * sum_{i != j} (L_pipj + L_pjpi)``) counts every ordered pair twice and would
        give twice Eq. 4 at ``k = 2``; we keep Eq. 4's scale so ``lambda`` means the same for every ``k``.
        With a single view there is no pair and the loss is 0.
    """
    if logits_views.dim() != 3:
        raise ValueError(
            f"logits_views must be [num_views, batch, num_classes], got shape {tuple(logits_views.shape)}; "
            "stack the views' logits with torch.stack(..., dim=0)."
        )
    num_views = logits_views.shape[0]
    if num_views < 2:
        return logits_views.sum() * 0.0
    logits_views = logits_views.float()
    targets = torch.sigmoid(logits_views).detach()  # sg(p_i): the target side gets no gradient
    # BCE(p, sigmoid(z)) = softplus(z) - p * z, so summing over the other views' targets i != j
    # only needs their sum: O(k) instead of O(k^2) pairwise terms.
    other_targets = targets.sum(dim=0, keepdim=True) - targets
    pair_sum = (num_views - 1) * F.softplus(logits_views) - other_targets * logits_views
    return pair_sum.mean(dim=(1, 2)).sum() / (num_views * (num_views - 1))
