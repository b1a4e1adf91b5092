"""MPVAE: Multivariate Probit Variational AutoEncoder (Bai, Kong, Gomes, IJCAI 2020).

Specification: ``MODELS.md`` (section MPVAE). Two encoders map into a shared
``latent_dim``-dimensional latent space: a *label encoder* q(z | x, y) and a
*feature encoder* p(z | x); a shared decoder turns ``concat(x, z)`` into the
means ``m`` of a multivariate probit model whose residual covariance is
``R Rᵀ + I`` (``R`` is L × rank). Training fits both branches with the probit
likelihood and a pairwise ranking term and pulls the encoders together with a
closed-form KL; prediction uses the feature branch only.

Where this port differs from the TensorFlow reference, on purpose:

* **Ranking term in O(L).** The reference materialises an S × B × L × L tensor;
  ``sum_{i pos, k neg} exp(-5 (p_i - p_k))`` factorises exactly into
  ``(sum_pos exp(-5 p_i)) * (sum_neg exp(5 p_k))`` (:func:`ranking_loss`).
* **Stable logs.** The reference squashes probabilities to
  ``[eps/2, 1 - eps/2]`` (eps = 1e-6) with ``p = eps/2 + (1 - eps) Phi(u)`` and
  takes ``log p``; we keep the same squash but compute ``log p`` as
  ``logaddexp(log(eps/2), log(1 - eps) + log_ndtr(u))`` and ``log(1 - p)`` through
  ``Phi(-u)``, so neither log loses precision near 0 or 1.
* **Exact test-time expectation.** The reference predicts the mean of
  ``Phi(m + R eps_s)`` over 10,000 Monte-Carlo draws. That mean has a closed form,
  ``E[Phi(m_j + (R eps)_j)] = Phi(m_j / sqrt(1 + |R_j|^2))``, which we use by
  default (``n_test_samples = 0``); a positive ``n_test_samples`` gives the
  reference's Monte-Carlo estimate. The sample-count study
  (``benchmarks/bench_mpvae_samples.py``) shows why: draws of 10,000 samples still
  differ by ~1e-2 on some scores, and 1e-3 everywhere would need ~10^6 samples.
* **Deterministic latent at test time.** The reference draws one latent sample
  z ~ p(z | x) per test example; we decode the mean ``mu_x`` so that predictions
  do not depend on the random state.
* **Features are standardised** (mean/std fitted on the training rows only,
  constant columns left unscaled); the reference feeds its ``.npy`` features raw.
* **Dropout is a drop probability.** The reference's ``keep_prob`` is a *keep*
  probability; ``dropout = 1 - keep_prob`` (reference default keep_prob 0.5).
* **Initialisation** follows the reference (Glorot-uniform weights, zero biases;
  ``R`` uniform in ±sqrt(6 / (L + rank))).
* **Last partial batch dropped** as in the reference, except when the training set
  is smaller than one batch: then the whole set is one batch (otherwise nothing
  would be trained at all).
* **Step-decay interval** uses the integer number of steps per epoch
  (the reference uses the fractional ``n / batch_size``).

Hyperparameter defaults are the authors' yeast script (see ``REFERENCE_SETTINGS``
for the other datasets' rows of MODELS.md).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmark.model_api import Model

# The reference's eps1: probabilities are squashed into [PROB_EPS/2, 1 - PROB_EPS/2].
PROB_EPS = 1e-6
# exp(-RANK_SCALE * (p_i - p_k)) / RANK_SCALE: the reference's hard-coded 5.
RANK_SCALE = 5.0


# ---------------------------------------------------------------------------
# Loss terms as pure functions (unit-tested against direct computations)
# ---------------------------------------------------------------------------


def probit_noise_scores(means: torch.Tensor, noise_times_r: torch.Tensor) -> torch.Tensor:
    """Latent probit utilities u = m + R eps for every Monte-Carlo sample: (S, B, L).

    ``means`` is (B, L); ``noise_times_r`` is ``eps @ R.T`` of shape (S, B, L), computed
    once and shared by the two branches (as in the reference).
    """
    return means.unsqueeze(0) + noise_times_r


def squashed_probability(u: torch.Tensor, prob_eps: float = PROB_EPS) -> torch.Tensor:
    """``eps/2 + (1 - eps) Phi(u)``: Phi squashed into [eps/2, 1 - eps/2] as in the reference."""
    return 0.5 * prob_eps + (1.0 - prob_eps) * torch.special.ndtr(u)


def log_squashed_probability(u: torch.Tensor, prob_eps: float = PROB_EPS) -> torch.Tensor:
    """``log(eps/2 + (1 - eps) Phi(u))`` without cancellation for any u."""
    floor = torch.full_like(u, math.log(0.5 * prob_eps))
    return torch.logaddexp(floor, math.log1p(-prob_eps) + torch.special.log_ndtr(u))


def probit_nll(u: torch.Tensor, y: torch.Tensor, prob_eps: float = PROB_EPS) -> torch.Tensor:
    """Monte-Carlo negative log-likelihood ``-log((1/S) sum_s prod_j Bern(y_j | p_sj))``.

    Averaged over the batch. ``1 - p(u) = p(-u)`` for the symmetric squash, so the
    Bernoulli log-probability of every cell is ``log p(sign * u)`` with
    ``sign = 2y - 1``: one ``log_ndtr`` per cell, and ``logsumexp`` over samples.
    """
    sign = 2.0 * y - 1.0
    log_joint = log_squashed_probability(u * sign, prob_eps).sum(dim=-1)  # (S, B)
    n_samples = u.shape[0]
    log_mean = torch.logsumexp(log_joint, dim=0) - math.log(n_samples)
    return -log_mean.mean()


def ranking_loss(p: torch.Tensor, y: torch.Tensor, scale: float = RANK_SCALE) -> torch.Tensor:
    """Pairwise ranking term of the reference, in O(L) per sample and example.

    For every Monte-Carlo sample s and example b:
    ``sum_{i pos, k neg} exp(-scale (p_si - p_sk)) / (scale |pos| |neg|)``
    = ``(sum_pos exp(-scale p_si)) (sum_neg exp(scale p_sk)) / (scale |pos| |neg|)``,
    averaged over s and over *all* examples; an example without a positive or a
    negative label contributes 0 (the reference maps its NaN/inf to 0).
    ``p`` is (S, B, L), ``y`` is (B, L) in {0, 1}.
    """
    n_pos = y.sum(dim=-1)
    n_neg = y.shape[-1] - n_pos
    pos_sum = (torch.exp(-scale * p) * y).sum(dim=-1)  # (S, B)
    neg_sum = (torch.exp(scale * p) * (1.0 - y)).sum(dim=-1)
    pairs = n_pos * n_neg
    weight = torch.where(pairs > 0, 1.0 / (scale * pairs.clamp(min=1.0)), torch.zeros_like(pairs))
    return (pos_sum * neg_sum * weight).mean()


def gaussian_kl(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu_q, exp(logvar_q)) || N(mu_p, exp(logvar_p)))``, diagonal, summed over
    dimensions and averaged over the batch (closed form).

    The reference adds 1e-6 to the prior variance in the squared-mean term; we do not
    (``exp(-logvar_p)`` is finite for any finite logvar).
    """
    per_dim = logvar_p - logvar_q - 1.0 + torch.exp(logvar_q - logvar_p) + (mu_q - mu_p) ** 2 * torch.exp(-logvar_p)
    return 0.5 * per_dim.sum(dim=-1).mean()


def l2_penalty(weights: list[torch.Tensor]) -> torch.Tensor:
    """``sum ||W||^2 / 2`` over weight matrices (TF's ``l2_regularizer``, biases excluded)."""
    return 0.5 * sum((w * w).sum() for w in weights)


def expected_probability(means: torch.Tensor, r: torch.Tensor, prob_eps: float = PROB_EPS) -> torch.Tensor:
    """Exact mean over eps ~ N(0, I) of the squashed ``Phi(m + R eps)``: (B, L).

    ``(R eps)_j ~ N(0, |R_j|^2)``, and ``E[Phi(m + w)] = P(Z - w <= m) = Phi(m / sqrt(1 + |R_j|^2))``;
    the squash is affine, so it passes through the expectation.
    """
    scale = torch.sqrt(1.0 + (r * r).sum(dim=1))
    return squashed_probability(means / scale, prob_eps)


# ---------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------


def _mlp(sizes: list[int], dropout: float) -> nn.Sequential:
    """Linear → ReLU → Dropout for every consecutive pair of ``sizes``."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class MPVAENetwork(nn.Module):
    """Label encoder, feature encoder, shared decoder, two probit-mean heads and R."""

    def __init__(self, n_features: int, n_labels: int, latent_dim: int = 50, rank: int | None = None,
                 dropout: float = 0.5):
        super().__init__()
        rank = n_labels if rank is None else int(rank)
        self.label_encoder = _mlp([n_features + n_labels, 512, 256], dropout)
        self.label_mu = nn.Linear(256, latent_dim)
        self.label_logvar = nn.Linear(256, latent_dim)
        self.feature_encoder = _mlp([n_features, 256, 512, 256], dropout)
        self.feature_mu = nn.Linear(256, latent_dim)
        self.feature_logvar = nn.Linear(256, latent_dim)
        # Decoder shared by both branches; no dropout (as in the reference).
        self.decoder = nn.Sequential(nn.Linear(n_features + latent_dim, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU())
        self.label_head = nn.Linear(512, n_labels)
        self.feature_head = nn.Linear(512, n_labels)
        bound = math.sqrt(6.0 / (n_labels + rank))
        self.r = nn.Parameter(torch.empty(n_labels, rank).uniform_(-bound, bound))
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def linear_weights(self) -> list[torch.Tensor]:
        """Weight matrices under the L2 penalty (the reference regularises these, not R or biases)."""
        return [m.weight for m in self.modules() if isinstance(m, nn.Linear)]

    def encode_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.feature_encoder(x)
        return self.feature_mu(h), self.feature_logvar(h)

    def encode_labels(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.label_encoder(torch.cat([x, y], dim=1))
        return self.label_mu(h), self.label_logvar(h)

    def predict_means(self, x: torch.Tensor) -> torch.Tensor:
        """Feature-branch probit means at the latent mean (test time)."""
        mu_x, _ = self.encode_features(x)
        return self.feature_head(self.decoder(torch.cat([x, mu_x], dim=1)))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training pass: both branches with one shared latent noise draw."""
        mu_e, logvar_e = self.encode_labels(x, y)
        mu_x, logvar_x = self.encode_features(x)
        eps = torch.randn_like(mu_e)
        z_e = mu_e + torch.exp(0.5 * logvar_e) * eps
        z_x = mu_x + torch.exp(0.5 * logvar_x) * eps
        # One decoder pass over both branches stacked on the batch axis.
        hidden = self.decoder(torch.cat([torch.cat([x, z_e], dim=1), torch.cat([x, z_x], dim=1)], dim=0))
        h_e, h_x = hidden.split(x.shape[0], dim=0)
        return {
            "mu_e": mu_e, "logvar_e": logvar_e, "mu_x": mu_x, "logvar_x": logvar_x,
            "m_e": self.label_head(h_e), "m_x": self.feature_head(h_x),
        }


def mpvae_loss(net: MPVAENetwork, out: dict[str, torch.Tensor], y: torch.Tensor, n_samples: int,
               nll_coeff: float, c_coeff: float, beta: float, l2_coeff: float,
               weight_decay: float = 1e-5) -> dict[str, torch.Tensor]:
    """Total loss of one batch and its parts (tensors; no host synchronisation)."""
    batch, _ = out["m_e"].shape
    noise = torch.randn(n_samples, batch, net.r.shape[1], device=y.device, dtype=out["m_e"].dtype)
    noise_r = noise @ net.r.T  # (S, B, L), shared by both branches as in the reference
    parts: dict[str, torch.Tensor] = {}
    for branch in ("e", "x"):
        u = probit_noise_scores(out[f"m_{branch}"], noise_r)
        parts[f"nll_{branch}"] = probit_nll(u, y)
        parts[f"rank_{branch}"] = ranking_loss(squashed_probability(u), y)
    parts["kl"] = gaussian_kl(out["mu_e"], out["logvar_e"], out["mu_x"], out["logvar_x"])
    parts["l2"] = l2_penalty(net.linear_weights())
    parts["total"] = (nll_coeff * (parts["nll_e"] + parts["nll_x"]) + c_coeff * (parts["rank_e"] + parts["rank_x"])
                      + beta * parts["kl"] + l2_coeff * weight_decay * parts["l2"])
    return parts
