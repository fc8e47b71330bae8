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


def softmax_consistency_loss(logits_views: torch.Tensor) -> torch.Tensor:
    """Single-label consistency loss between ``k`` views: CR-CTC's form (Yao et al., the paper's ref. [1]).

    Args:
        logits_views: ``[num_views, batch, num_classes]`` logits of one softmax distribution per row.

    Returns:
        Scalar loss: ``KL(sg(p_i) || p_j)`` summed over classes, mean over clips, averaged over the
        ``k (k - 1)`` ordered pairs ``i != j``. Each view's stop-gradient distribution is the target of the
        others (CR-CTC Eq. 3 for ``k = 2``: ``(KL(sg(p_1)||p_2) + KL(sg(p_2)||p_1)) / 2``). KL differs from the
        cross-entropy by the targets' entropy, a constant under stop-gradient, so the gradient is the
        cross-entropy's; KL is 0 when the views agree, which makes the logged value readable. Single view: 0.
    """
    if logits_views.dim() != 3:
        raise ValueError(
            f"logits_views must be [num_views, batch, num_classes], got shape {tuple(logits_views.shape)}; "
            "stack the views' logits with torch.stack(..., dim=0)."
        )
    num_views = logits_views.shape[0]
    if num_views < 2:
        return logits_views.sum() * 0.0
    log_probs = F.log_softmax(logits_views.float(), dim=-1)
    targets = log_probs.exp().detach()  # sg(p_i)
    # sum_{i != j} sum_c t_i (log t_i - log p_j) = (k - 1) sum_i t_i log t_i - sum_j (T - t_j) log p_j, T = sum_i t_i.
    neg_entropy = (targets * log_probs.detach()).sum(dim=-1)
    other_targets = targets.sum(dim=0, keepdim=True) - targets
    cross = (other_targets * log_probs).sum(dim=-1)
    pair_sum = (num_views - 1) * neg_entropy - cross
    return pair_sum.mean(dim=1).sum() / (num_views * (num_views - 1))


SINGLE_LABEL = "single_label_classification"
MULTI_LABEL = "multi_label_classification"


def consistency_loss_for(problem_type: str):
    """The consistency term that matches the model's output: sigmoid BCE (Eq. 2-5) for multi-label,
    softmax KL (CR-CTC) for single-label classification."""
    if problem_type == MULTI_LABEL:
        return consistency_loss
    if problem_type == SINGLE_LABEL:
        return softmax_consistency_loss
    raise ValueError(
        f"consistency regularisation is defined for problem_type {MULTI_LABEL!r} or {SINGLE_LABEL!r}, got "
        f"{problem_type!r}; set model.config.problem_type."
    )
