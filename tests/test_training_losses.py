"""consistency_loss against hand computations (Eq. 2-5) and its stop-gradient, checked by autograd."""
import math

import pytest
import torch

from hf_audio_cr.training import consistency_loss

LN3 = math.log(3.0)  # sigmoid(ln 3) = 0.75, sigmoid(-ln 3) = 0.25


def bce(target: float, prob: float) -> float:
    return -(target * math.log(prob) + (1 - target) * math.log(1 - prob))


def test_two_views_is_eq4_by_hand():
    # p1 = 0.5, p2 = 0.75: L_p1p2 = BCE(target 0.5, pred 0.75), L_p2p1 = BCE(target 0.75, pred 0.5) = ln 2
    logits = torch.tensor([[[0.0]], [[LN3]]])
    expected = 0.5 * (bce(0.5, 0.75) + bce(0.75, 0.5))
    assert expected == pytest.approx(0.765068, abs=1e-6)
    assert consistency_loss(logits).item() == pytest.approx(expected, rel=1e-6)


def test_k_views_average_ordered_pairs_by_hand():
    probs = [0.5, 0.75, 0.25]
    logits = torch.tensor([[[0.0]], [[LN3]], [[-LN3]]])
    pairs = [bce(probs[i], probs[j]) for i in range(3) for j in range(3) if i != j]
    assert consistency_loss(logits).item() == pytest.approx(sum(pairs) / 6, rel=1e-6)


def test_mean_reduction_over_clips_and_classes():
    one = torch.tensor([[[0.0]], [[LN3]]])
    grid = one.expand(2, 4, 5).contiguous()  # 4 clips x 5 classes, all the same pair of views
    assert consistency_loss(grid).item() == pytest.approx(consistency_loss(one).item(), rel=1e-6)
    # two classes with different pairs: the loss is their mean, not their sum
    two = torch.tensor([[[0.0, 0.0]], [[LN3, -LN3]]])
    assert consistency_loss(two).item() == pytest.approx(0.5 * (0.765068 + 0.765068), rel=1e-5)


def test_single_view_has_no_pair():
    logits = torch.randn(1, 3, 4, requires_grad=True)
    loss = consistency_loss(logits)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))


def test_no_gradient_reaches_the_target_side():
    # View 1 is a leaf; view 2 a constant. With sg, d/dz1 only has the prediction-side term of L_p2p1:
    # 1/2 * (sigmoid(z1) - p2). Differentiating the target side of L_p1p2 too would add another term.
    z1 = torch.tensor([[0.3]], requires_grad=True)
    z2 = torch.tensor([[LN3]])
    (grad,) = torch.autograd.grad(consistency_loss(torch.stack([z1, z2])), z1)
    assert grad.item() == pytest.approx(0.5 * (torch.sigmoid(torch.tensor(0.3)).item() - 0.75), rel=1e-5)

    def eq4_without_stop_gradient(a, b):
        pa, pb = torch.sigmoid(a), torch.sigmoid(b)
        pair = lambda t, q: -(t * q.log() + (1 - t) * (1 - q).log())  # noqa: E731
        return 0.5 * (pair(pa, pb) + pair(pb, pa)).mean()

    (grad_without_sg,) = torch.autograd.grad(eq4_without_stop_gradient(z1, z2), z1)
    assert abs(grad_without_sg.item() - grad.item()) > 0.1


def test_identical_views_get_zero_gradient():
    # Every view predicts its own target exactly: with stop-gradient the loss (an entropy) is
    # positive but flat, so no gradient flows; differentiating the targets would give one.
    torch.manual_seed(0)
    z = torch.randn(1, 3, 4).expand(3, 3, 4).clone().requires_grad_(True)
    loss = consistency_loss(z)
    loss.backward()
    assert loss.item() > 0.1
    assert torch.allclose(z.grad, torch.zeros_like(z), atol=1e-7)


def test_gradient_matches_analytic_form():
    torch.manual_seed(1)
    k, batch, classes = 4, 2, 3
    z = torch.randn(k, batch, classes, requires_grad=True)
    (grad,) = torch.autograd.grad(consistency_loss(z), z)
    p = torch.sigmoid(z.detach())
    expected = ((k - 1) * p - (p.sum(0, keepdim=True) - p)) / (k * (k - 1) * batch * classes)
    assert torch.allclose(grad, expected, atol=1e-7)


def test_wrong_shape_is_a_clear_error():
    with pytest.raises(ValueError, match="num_views, batch, num_classes"):
        consistency_loss(torch.zeros(4, 3))
