"""MPVAE: loss terms against direct computations, edge cases, and real-data behaviour."""

from __future__ import annotations

import importlib
import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats

from benchmark import discovery

discovery.install_aliases()
mpvae = importlib.import_module("mlcbench_models.mpvae")

DTYPE = torch.float64


def _rand(*shape, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=shape)).to(DTYPE)


# --------------------------------------------------------------------------- loss terms


def test_ranking_loss_equals_explicit_pairwise_sum():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=(3, 5, 6))
    y = (rng.uniform(size=(5, 6)) < 0.4).astype(float)
    y[0] = 0  # no positive: contributes 0
    y[1] = 1  # no negative: contributes 0
    y[2] = [1, 0, 0, 0, 0, 0]
    expected = np.zeros((3, 5))
    for s, b in itertools.product(range(3), range(5)):
        pos, neg = np.flatnonzero(y[b] == 1), np.flatnonzero(y[b] == 0)
        if len(pos) and len(neg):
            total = sum(math.exp(-5.0 * (p[s, b, i] - p[s, b, k])) for i in pos for k in neg)
            expected[s, b] = total / (5.0 * len(pos) * len(neg))
    got = mpvae.ranking_loss(torch.from_numpy(p), torch.from_numpy(y))
    assert got.item() == pytest.approx(expected.mean(), rel=1e-12)
    assert expected[:, :2].sum() == 0 and expected[:, 2:].min() > 0


def test_probit_probability_matches_hand_computation():
    """S=2, L=2: p_sj = eps/2 + (1-eps) Phi(m_j + (R eps_s)_j), by hand with scipy."""
    m = np.array([[0.3, -1.2]])
    r = np.array([[0.5, -0.2], [0.1, 0.7]])
    eps_s = np.array([[1.0, -0.5], [-0.3, 2.0]])
    expected = np.empty((2, 1, 2))
    for s in range(2):
        for j in range(2):
            u = m[0, j] + r[j, 0] * eps_s[s, 0] + r[j, 1] * eps_s[s, 1]
            expected[s, 0, j] = 5e-7 + (1 - 1e-6) * stats.norm.cdf(u)
    noise_r = torch.from_numpy(eps_s).unsqueeze(1) @ torch.from_numpy(r).T
    u = mpvae.probit_noise_scores(torch.from_numpy(m), noise_r)
    got = mpvae.squashed_probability(u).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # The NLL of y = (1, 0) for this case, by the direct product formula.
    y = np.array([[1.0, 0.0]])
    lik = np.mean([expected[s, 0, 0] * (1 - expected[s, 0, 1]) for s in range(2)])
    nll = mpvae.probit_nll(u, torch.from_numpy(y))
    assert nll.item() == pytest.approx(-math.log(lik), rel=1e-10)


def test_nll_logsumexp_form_equals_direct_product_formula():
    rng = np.random.default_rng(2)
    u = rng.normal(scale=2.0, size=(7, 4, 5))
    y = (rng.uniform(size=(4, 5)) < 0.5).astype(float)
    p = 5e-7 + (1 - 1e-6) * stats.norm.cdf(u)
    lik = np.prod(np.where(y == 1, p, 1 - p), axis=2).mean(axis=0)  # (B,)
    got = mpvae.probit_nll(torch.from_numpy(u), torch.from_numpy(y)).item()
    assert got == pytest.approx(-np.log(lik).mean(), rel=1e-10)


def test_log_probability_is_accurate_in_the_tails_in_float32():
    """log p(u) and log(1 - p(u)) = log p(-u) within 3e-6 of float64 truth for u in [-12, 12]."""
    u = np.linspace(-12, 12, 4001)
    truth_log_p = np.where(u > 0, np.log1p(-(5e-7 + (1 - 1e-6) * stats.norm.sf(u))),
                           np.log(5e-7 + (1 - 1e-6) * stats.norm.cdf(u)))
    u32 = torch.tensor(u, dtype=torch.float32, requires_grad=True)
    log_p = torch.log(mpvae.squashed_probability(u32))
    np.testing.assert_allclose(log_p.detach().numpy(), truth_log_p, atol=3e-6, rtol=0)
    log_1mp = torch.log(mpvae.squashed_probability(-u32))
    np.testing.assert_allclose(log_1mp.detach().numpy(), truth_log_p[::-1], atol=3e-6, rtol=0)
    (log_p.sum() + log_1mp.sum()).backward()
    assert torch.isfinite(u32.grad).all()
    # d/du log p(u) = (1 - eps) phi(u) / p(u): compare on a moderate range
    grad_truth = (1 - 1e-6) * stats.norm.pdf(u) / (5e-7 + (1 - 1e-6) * stats.norm.cdf(u))
    grad_truth -= (1 - 1e-6) * stats.norm.pdf(u) / (5e-7 + (1 - 1e-6) * stats.norm.sf(u))
    mid = np.abs(u) < 6
    np.testing.assert_allclose(u32.grad.numpy()[mid], grad_truth[mid], rtol=1e-4, atol=1e-6)


def test_fused_branch_losses_equal_the_separate_definitions():
    rng = np.random.default_rng(11)
    u = torch.from_numpy(rng.normal(scale=1.5, size=(6, 5, 7)))
    y = torch.from_numpy((rng.uniform(size=(5, 7)) < 0.4).astype(float))
    y[0] = 0
    nll, rank = mpvae.branch_losses(u, y)
    assert nll.item() == pytest.approx(mpvae.probit_nll(u, y).item(), rel=1e-12)
    assert rank.item() == pytest.approx(mpvae.ranking_loss(mpvae.squashed_probability(u), y).item(), rel=1e-10)


def test_closed_form_kl_matches_monte_carlo():
    mu_q, lv_q = _rand(2, 3, seed=3), _rand(2, 3, seed=4) * 0.5
    mu_p, lv_p = _rand(2, 3, seed=5), _rand(2, 3, seed=6) * 0.5
    q = torch.distributions.Normal(mu_q, torch.exp(0.5 * lv_q))
    p = torch.distributions.Normal(mu_p, torch.exp(0.5 * lv_p))
    torch.manual_seed(0)
    z = q.sample((400_000,))
    monte_carlo = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean(0).mean().item()
    exact = torch.distributions.kl_divergence(q, p).sum(-1).mean().item()
    got = mpvae.gaussian_kl(mu_q, lv_q, mu_p, lv_p).item()
    assert got == pytest.approx(exact, rel=1e-12)
    assert got == pytest.approx(monte_carlo, abs=0.02)
    assert mpvae.gaussian_kl(mu_q, lv_q, mu_q, lv_q).item() == pytest.approx(0.0, abs=1e-12)


def test_expected_probability_is_the_monte_carlo_limit():
    m = _rand(3, 4, seed=7)
    r = _rand(4, 4, seed=8) * 0.6
    torch.manual_seed(1)
    noise_r = torch.randn(200_000, 1, 4, dtype=DTYPE) @ r.T
    mc = mpvae.squashed_probability(m.unsqueeze(0) + noise_r).mean(0)
    exact = mpvae.expected_probability(m, r)
    np.testing.assert_allclose(exact.numpy(), mc.numpy(), atol=4e-3)


def test_l2_penalty_is_half_squared_norm():
    w = [_rand(3, 2, seed=9), _rand(4, seed=10)]
    expected = 0.5 * sum(float((t.numpy() ** 2).sum()) for t in w)
    assert mpvae.l2_penalty(w).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("labels", ["none", "all", "mixed"])
def test_no_positive_or_all_positive_rows_give_finite_loss_and_gradients(labels):
    torch.manual_seed(0)
    net = mpvae.MPVAENetwork(n_features=5, n_labels=4, latent_dim=3)
    x = torch.randn(3, 5)
    y = {"none": torch.zeros(3, 4), "all": torch.ones(3, 4),
         "mixed": torch.tensor([[0.0, 0, 0, 0], [1, 1, 1, 1], [1, 0, 1, 0]])}[labels]
    parts = mpvae.mpvae_loss(net, net(x, y), y, n_samples=8, nll_coeff=0.1, c_coeff=20, beta=1.1, l2_coeff=1.0)
    parts["total"].backward()
    assert all(torch.isfinite(v).all() for v in parts.values())
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    if labels != "mixed":
        assert parts["rank_e"].item() == 0 and parts["rank_x"].item() == 0
    else:
        assert parts["rank_x"].item() > 0
