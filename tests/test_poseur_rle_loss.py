"""PoseurRLELoss against the formula of poseur_reference.md §3 and ``laplace_score``."""
import math

import torch
from torch import nn

from poseur_mm.models import PoseurRLELoss
from poseur_mm.models.utils import laplace_score


def identity_flow_loss(prior_mean=0.5):
    """A loss whose coupling nets output 0: every coupling is the identity, so the flow's
    density is the prior N(prior_mean, I)."""
    loss = PoseurRLELoss(prior_mean=prior_mean)
    for module in loss.flow.modules():
        if isinstance(module, nn.Linear):
            nn.init.zeros_(module.weight)
            nn.init.zeros_(module.bias)
    return loss


def formula(pred, sigma_logits, target, weight, prior_mean):
    """Per keypoint and axis d: log s_d - log N(z; m, I) + log(s_d sqrt(2 pi))
    + |g_d - mu_d| / (sqrt(2) s_d + 1e-9), summed, weighted, divided by B * Q."""
    batch, num_queries, _ = pred.shape
    total = 0.0
    for b in range(batch):
        for q in range(num_queries):
            mu, g = pred[b, q].tolist(), target[b, q].tolist()
            s = [1 / (1 + math.exp(-v)) for v in sigma_logits[b, q].tolist()]
            z = [(mu[d] - g[d]) / s[d] for d in range(2)]
            log_phi = -0.5 * sum((z[d] - prior_mean)**2 for d in range(2)) - math.log(2 * math.pi)
            for d in range(2):
                term = (math.log(s[d]) - log_phi + math.log(s[d] * math.sqrt(2 * math.pi)) +
                        abs(g[d] - mu[d]) / (math.sqrt(2) * s[d] + 1e-9))
                total += term * float(weight[b, q])
    return total / (batch * num_queries)


def random_case(seed=0, batch=2, num_queries=3):
    gen = torch.Generator().manual_seed(seed)
    pred = torch.rand(batch, num_queries, 2, generator=gen, dtype=torch.float64)
    target = torch.rand(batch, num_queries, 2, generator=gen, dtype=torch.float64)
    sigma_logits = torch.randn(batch, num_queries, 2, generator=gen, dtype=torch.float64) - 2
    weight = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.5]], dtype=torch.float64)
    return pred, sigma_logits, target, weight


def test_identity_flow_matches_the_formula():
    for prior_mean in (0.5, 0.0):
        loss = identity_flow_loss(prior_mean)
        pred, sigma_logits, target, weight = random_case()
        expected = formula(pred, sigma_logits, target, weight, prior_mean)
        out = loss(pred, sigma_logits, target, weight)
        assert out.dim() == 0
        assert math.isclose(float(out), expected, rel_tol=1e-5)


def test_loss_weight_and_default_weights():
    pred, sigma_logits, target, _ = random_case(seed=1)
    ones = torch.ones(2, 3, dtype=torch.float64)
    expected = formula(pred, sigma_logits, target, ones, 0.5)
    plain = identity_flow_loss()(pred, sigma_logits, target)
    assert math.isclose(float(plain), expected, rel_tol=1e-5)
    weighted = identity_flow_loss()
    weighted.loss_weight = 2.5
    assert math.isclose(float(weighted(pred, sigma_logits, target, ones)), 2.5 * expected,
                        rel_tol=1e-5)


def test_default_flow_differs_from_the_gaussian():
    """The initialised flow is not the identity: guards the formula test against a loss
    that ignores its flow."""
    pred, sigma_logits, target, weight = random_case()
    out = PoseurRLELoss()(pred, sigma_logits, target, weight)
    assert not math.isclose(float(out), formula(pred, sigma_logits, target, weight, 0.5),
                            rel_tol=1e-4)


def test_zero_weights_give_exactly_zero_and_finite_gradients():
    pred, sigma_logits, target, _ = random_case()
    sigma_logits[0, 0] = -500.0  # sigmoid underflows to 0: must still not turn into NaN
    sigma_logits[1, 2] = 500.0
    pred.requires_grad_(True)
    loss = PoseurRLELoss()(pred, sigma_logits, target, torch.zeros(2, 3, dtype=torch.float64))
    assert torch.isfinite(loss)
    assert float(loss) == 0.0
    loss.backward()
    assert torch.isfinite(pred.grad).all()


def test_loss_decreases_as_the_prediction_approaches_the_target():
    """From below on both axes. The prior's mean 0.5 makes an untrained flow prefer
    z = (pred - target) / sigma > 0, so from above the loss may bottom out a fraction of
    sigma short of the target; from below it keeps falling."""
    torch.manual_seed(0)
    loss = PoseurRLELoss()
    target = torch.tensor([[[0.4, 0.6]]])
    sigma_logits = torch.full((1, 1, 2), -3.0)  # sigma ~0.047
    values = [float(loss(target - dist, sigma_logits, target))
              for dist in (0.4, 0.2, 0.1, 0.05, 0.02, 0.01, 0.0)]
    assert all(a > b for a, b in zip(values, values[1:])), values
    assert values[0] - values[-1] > 10  # far predictions cost much more than exact ones


def test_laplace_score_hand_values():
    sigma = torch.tensor([[0.1, 0.2], [0.2, 0.2], [1e-4, 1e-4], [1.0, 0.05]])
    expected = torch.tensor([
        (1 - math.exp(-2)) * (1 - math.exp(-1)),
        (1 - math.exp(-1))**2,
        1.0,
        (1 - math.exp(-0.2)) * (1 - math.exp(-4)),
    ])
    torch.testing.assert_close(laplace_score(sigma, 0.2), expected)
    # radius scales with sigma: a = 0.5, sigma = 0.25 -> (1 - e^-2)^2
    torch.testing.assert_close(laplace_score(torch.tensor([0.25, 0.25]), 0.5),
                               torch.tensor((1 - math.exp(-2))**2))
    assert laplace_score(sigma.bfloat16(), 0.2).dtype == torch.float32
