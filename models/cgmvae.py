"""C-GMVAE: Gaussian-mixture VAE with contrastive learning (Bai, Kong, Gomes, ICML 2022).

Implemented from the description in ../shared/MODELS.md (networks, forward pass, loss,
training schedule); every constant the reference hard-codes is a named hyperparameter
with the reference value as default.

Networks (d = latent_dim, E = emb_size)
- feature encoder F -> 256 -> 512 -> 256 (ReLU + dropout) with heads mu_x, logvar_x;
- label embedding W (E x L, the weight of a Linear(L -> E)); label k's encoder input is
  dropout(relu(W[:, k] + b)), then E -> 512 -> 256 with heads mu_k, logvar_k: one Gaussian
  per label. It does not depend on x, so all L components are computed once per batch;
- decoder concat(x, z) -> 512 (ReLU) -> E (LeakyReLU) -> L2-normalised e; logits e . W.

Loss per batch, per-sample terms averaged over the batch:
    nll_coeff * (BCE_y + BCE_x1 + BCE_x2) + kl_coeff * KL + c_coeff * contrastive
with BCE summed over labels, KL the single-sample estimate log q(z|x) - log p(z|y) for a
fresh z ~ q(z|x) and the prior p(z|y) the uniform mixture of the positive labels'
Gaussians (log-sum-exp), and the supervised contrastive term over anchors [e_y; e_x1]
against the label embeddings (columns of W).

Differences from the reference code, each deliberate:
- BCE is computed from logits (``binary_cross_entropy_with_logits``); the reference takes
  the log of sigmoid outputs, which overflows to -inf for confident wrong predictions.
- A sample with no positive label makes the reference divide by zero (z_y = 0/0, an empty
  mixture, an empty mean in the contrastive term) and the whole batch becomes NaN. Here
  such a sample contributes only its feature-branch likelihood (BCE_x1 + BCE_x2): it is
  masked out of the label branch, the KL term (its prior is undefined) and the
  contrastive term. Losses and gradients stay finite (tested). Every term is still
  divided by the full batch size B (2B anchors for the contrastive term), so a batch
  without such samples gives exactly the reference's loss.
- The reference's ``keep_prob`` argument is used there as a *drop* probability; our
  hyperparameter is called ``dropout`` and means the drop probability (default 0.5).
- Meta columns of the .npy format never enter the features: the dataset loader keeps
  them in ``dataset.meta``; this model only sees X.
- Features are standardised with training-set statistics (as for ``mlp``): the paper's
  own .npy datasets are already normalised, but MULAN datasets mix scales (e.g. yeast vs
  bibtex's binary words), and an unscaled input to the shared decoder concat(x, z) would
  let large features swamp z.

Speed: the three decoder passes of a training step (z_y, z1, z2) run as one batched call,
and the feature part of the decoder's first layer, x @ W_x, is computed once and shared.
The mixture prior's B x L component densities come from matrix products
(``component_log_densities``), never a (B, L, d) tensor.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from torch import nn

from benchmark.modelapi.torch_layers import MaskDropout, mlp_layers
from benchmark.modelapi.torch_training import TORCH_DEFAULTS, TorchModel

LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------- loss terms (pure functions)


def bce_per_sample(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy from logits, summed over labels: shape (..., B).

    softplus(s) - s*y equals -y log sigmoid(s) - (1-y) log(1 - sigmoid(s)) exactly and is
    stable for any logit; y (B, L) broadcasts against logits (R, B, L).
    """
    return (F.softplus(logits) - logits * y).sum(-1)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)), summed over the last axis."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(-1)


def component_log_densities(z: torch.Tensor, mu_k: torch.Tensor, logvar_k: torch.Tensor) -> torch.Tensor:
    """log N(z_b; mu_k, diag exp(logvar_k)) for every row b and component k: (B, L).

    The quadratic form sum_j (z_j - mu_kj)^2 / var_kj expands into two (B, d) @ (d, L)
    products and a per-component constant, so no (B, L, d) tensor is built (at L = 983,
    d = 64 its element-wise passes and their backward were most of a training step).
    Rounding can make the expanded form slightly negative; it is clamped at 0.
    """
    inv_var = torch.exp(-logvar_k)                                          # (L, d)
    quad = (z * z) @ inv_var.t() - 2.0 * (z @ (mu_k * inv_var).t()) + (mu_k * mu_k * inv_var).sum(-1)
    return -0.5 * (z.shape[-1] * LOG_2PI + logvar_k.sum(-1) + quad.clamp_min(0.0))


def mixture_log_density(z: torch.Tensor, mu_k: torch.Tensor, logvar_k: torch.Tensor,
                        y: torch.Tensor) -> torch.Tensor:
    """log p(z|y) = log( (1/|y|) sum_{k: y_k=1} N(z; mu_k, diag exp(logvar_k)) ), shape (B,).

    z: (B, d); mu_k, logvar_k: (L, d); y: (B, L) 0/1. Rows with no positive label get 0
    (their prior is undefined; callers mask them out) with finite gradients.
    """
    component = component_log_densities(z, mu_k, logvar_k)  # (B, L)
    positive = y > 0.5
    has_positive = positive.any(-1, keepdim=True)
    # rows without positives sum over all components instead (finite), then get zeroed
    use = positive | ~has_positive
    log_mix = torch.logsumexp(component.masked_fill(~use, float("-inf")), dim=-1)
    log_count = torch.log(use.sum(-1).to(z.dtype))
    return (log_mix - log_count) * has_positive.squeeze(-1).to(z.dtype)


def contrastive_per_anchor(anchors: torch.Tensor, label_embeddings: torch.Tensor, y: torch.Tensor,
                           temperature: float) -> torch.Tensor:
    """Minus the mean log-softmax probability of each anchor's positive labels, shape (A,).

    anchors: (A, E); label_embeddings: (E, L) (the columns of W); y: (A, L). The softmax
    runs over the L labels of anchor . W / temperature. Anchors without positives get 0.
    """
    return contrastive_from_logits(anchors @ label_embeddings, y, temperature)


def contrastive_from_logits(similarities: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    """``contrastive_per_anchor`` given the anchor . W similarities (A, L); y broadcasts."""
    log_prob = torch.log_softmax(similarities / temperature, dim=-1)
    n_positive = y.sum(-1)
    return -(log_prob * y).sum(-1) / n_positive.clamp(min=1.0)


# --------------------------------------------------------------------------- the network


class CGMVAENetwork(nn.Module):
    def __init__(self, n_features: int, n_labels: int, emb_size: int, latent_dim: int, dropout: float,
                 feature_sizes: list[int], label_sizes: list[int], decoder_hidden: int, leaky_slope: float):
        super().__init__()
        self.n_features = n_features
        self.feature_encoder = nn.Sequential(*mlp_layers([n_features, *feature_sizes], dropout, MaskDropout))
        self.feature_mu = nn.Linear(feature_sizes[-1], latent_dim)
        self.feature_logvar = nn.Linear(feature_sizes[-1], latent_dim)
        self.label_embedding = nn.Linear(n_labels, emb_size)  # weight W: (E, L)
        self.label_input_dropout = MaskDropout(dropout)
        self.label_encoder = nn.Sequential(*mlp_layers([emb_size, *label_sizes], dropout, MaskDropout))
        self.label_mu = nn.Linear(label_sizes[-1], latent_dim)
        self.label_logvar = nn.Linear(label_sizes[-1], latent_dim)
        self.decoder_in = nn.Linear(n_features + latent_dim, decoder_hidden)  # on concat(x, z)
        self.decoder_out = nn.Linear(decoder_hidden, emb_size)
        self.leaky_slope = leaky_slope

    @property
    def W(self) -> torch.Tensor:
        """(E, L): label k's embedding is column k."""
        return self.label_embedding.weight

    def label_components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """mu_k, logvar_k for all L labels at once, each (L, d)."""
        h = self.label_input_dropout(F.relu(self.W.t() + self.label_embedding.bias))  # W e_k + b, all k
        h = self.label_encoder(h)
        return self.label_mu(h), self.label_logvar(h)

    def encode_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.feature_encoder(x)
        return self.feature_mu(h), self.feature_logvar(h)

    def decode(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """e = normalize(leaky(W2 relu(W1 [x; z] + b1) + b2)) for R stacked latents.

        z is (R*B, d) holding R latents per row of x (B, F), stacked block-wise; the x part
        of the first layer is computed once and broadcast over the R blocks.
        """
        weight = self.decoder_in.weight
        x_part = F.linear(x, weight[:, : self.n_features])            # (B, H)
        z_part = F.linear(z, weight[:, self.n_features:], self.decoder_in.bias)  # (R*B, H)
        repeats = z.shape[0] // x.shape[0]
        h = F.relu(z_part.view(repeats, x.shape[0], -1) + x_part).view(z.shape[0], -1)
        e = F.leaky_relu(self.decoder_out(h), self.leaky_slope)
        # L2 normalisation as F.normalize(e, dim=-1) (eps 1e-12 on the norm), cheaper backward
        return e * torch.rsqrt((e * e).sum(-1, keepdim=True).clamp_min(1e-24))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Prediction logits from the feature branch with z = mu_x."""
        mu_x, _ = self.encode_features(x)
        return self.decode(x, mu_x) @ self.W


def cgmvae_loss_terms(net: CGMVAENetwork, x: torch.Tensor, y: torch.Tensor, temperature: float,
                      noise: torch.Tensor | None = None, prior: str = "mixture") -> dict[str, torch.Tensor]:
    """The batch-mean loss terms of one training step (dict of scalars).

    prior: ``"mixture"`` (the paper: the uniform mixture of the positive labels' Gaussians) or
    ``"unimodal"`` (the ablation: a standard normal N(0, I), as in a plain VAE).

    noise: optional (3, B, d) standard-normal draws for z1, z2 and the KL sample (tests
    pass it to compare with a direct computation); drawn fresh when None.
    """
    B = x.shape[0]
    mu_k, logvar_k = net.label_components()
    mu_x, logvar_x = net.encode_features(x)
    if noise is None:
        noise = torch.randn((3, *mu_x.shape), device=x.device, dtype=mu_x.dtype)
    std_x = torch.exp(0.5 * logvar_x)
    z1, z2, z_kl = (mu_x + std_x * noise[i] for i in range(3))

    n_positive = y.sum(-1)
    has_positive = (n_positive > 0).to(x.dtype)
    z_y = (y @ mu_k) / n_positive.clamp(min=1.0).unsqueeze(-1)  # mean of mu_k over positives

    e = net.decode(x, torch.cat([z_y, z1, z2]))  # one batched pass for the three latents
    logits = (e @ net.W).view(3, B, -1)           # rows: label branch, feature sample 1, 2
    bce = bce_per_sample(logits, y)               # (3, B)
    # the contrastive similarities of anchors [e_y; e_x1] with W are the first two logit blocks
    contrastive = contrastive_from_logits(logits[:2], y, temperature)  # (2, B)

    log_q = gaussian_log_density(z_kl, mu_x, logvar_x)
    if prior == "unimodal":
        log_p = gaussian_log_density(z_kl, torch.zeros_like(z_kl), torch.zeros_like(z_kl))
    else:
        log_p = mixture_log_density(z_kl, mu_k, logvar_k, y)

    return {
        "bce_y": (bce[0] * has_positive).sum() / B,
        "bce_x1": bce[1].mean(),
        "bce_x2": bce[2].mean(),
        "kl": ((log_q - log_p) * has_positive).sum() / B,
        "contrastive": (contrastive * has_positive).sum() / (2 * B),
    }


def total_loss(terms: dict[str, torch.Tensor], nll_coeff: float, kl_coeff: float, c_coeff: float) -> torch.Tensor:
    return (nll_coeff * (terms["bce_y"] + terms["bce_x1"] + terms["bce_x2"])
            + kl_coeff * terms["kl"] + c_coeff * terms["contrastive"])


# --------------------------------------------------------------------------- the model


class CGMVAE(TorchModel):
    """C-GMVAE with the reference's defaults; see the module docstring."""

    name = "cgmvae"
    family = "vae"
    defaults = {
        **TORCH_DEFAULTS,
        "epochs": 200,
        "batch_size": 128,
        "lr": 1e-3,
        "weight_decay": 1e-5,
        "emb_size": 512,
        "latent_dim": 64,
        "dropout": 0.5,          # drop probability (the reference's misnamed keep_prob)
        "temperature": 1.0,
        "prior": "mixture",      # or "unimodal" (N(0, I)): the ablation of the label mixture
        "nll_coeff": 0.1,
        "kl_coeff": 6.0,
        "c_coeff": 1.0,
        "scheduler_T0": 50,      # CosineAnnealingWarmRestarts, stepped once per epoch
        "scheduler_T_mult": 2,
        "eta_min": 1e-4,
        "feature_encoder_sizes": [256, 512, 256],
        "label_encoder_sizes": [512, 256],
        "decoder_hidden": 512,
        "leaky_slope": 0.01,     # torch's LeakyReLU default, as in the reference
    }
    search_space = {
        "lr": FloatDistribution(1e-4, 5e-3, log=True),
        "dropout": FloatDistribution(0.1, 0.7),
        "weight_decay": FloatDistribution(1e-7, 1e-3, log=True),
        "latent_dim": CategoricalDistribution([32, 64, 128]),
        "emb_size": CategoricalDistribution([256, 512, 1024, 2048]),
        "nll_coeff": FloatDistribution(0.01, 1.0, log=True),
        "kl_coeff": FloatDistribution(0.5, 10.0, log=True),
        "c_coeff": FloatDistribution(0.1, 10.0, log=True),
        "epochs": IntDistribution(50, 300, step=50),
    }

    #: The authors' published runs: the defaults above (200 epochs, E = 512) everywhere, and
    #: their mirflickr run (MODELS.md). Read by suites with ``reference = true``.
    REFERENCE_SETTINGS = {
        "mirflickr": {"lr": 2e-3, "emb_size": 2048, "nll_coeff": 0.5, "eta_min": 2e-4, "epochs": 90},
    }

    @classmethod
    def reference_params(cls, dataset_name: str) -> dict:
        """The authors' settings for ``dataset_name`` ({}: the defaults, which are theirs)."""
        return dict(cls.REFERENCE_SETTINGS.get(str(dataset_name).strip().lower(), {}))

    def build_network(self, n_features: int, n_labels: int) -> nn.Module:
        p = self.params
        if p.get("prior", "mixture") not in ("mixture", "unimodal"):
            raise ValueError(f"cgmvae: prior must be 'mixture' or 'unimodal', not {p['prior']!r}")
        return CGMVAENetwork(
            n_features, n_labels, emb_size=int(p["emb_size"]), latent_dim=int(p["latent_dim"]),
            dropout=float(p["dropout"]), feature_sizes=[int(s) for s in p["feature_encoder_sizes"]],
            label_sizes=[int(s) for s in p["label_encoder_sizes"]], decoder_hidden=int(p["decoder_hidden"]),
            leaky_slope=float(p["leaky_slope"]),
        )

    def training_loss(self, net, x, y):
        p = self.params
        terms = cgmvae_loss_terms(net, x, y, float(p["temperature"]), prior=str(p.get("prior", "mixture")))
        return total_loss(terms, float(p["nll_coeff"]), float(p["kl_coeff"]), float(p["c_coeff"]))

    def make_scheduler(self, optimizer, steps_per_epoch):
        p = self.params
        scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            optimizer, T_0=int(p["scheduler_T0"]), T_mult=int(p["scheduler_T_mult"]), eta_min=float(p["eta_min"]))
        return scheduler, "epoch"

    def label_embeddings(self):
        """(L, E) float array: label k's learnt embedding, column k of W (for the embedding report)."""
        if not hasattr(self, "net_"):
            raise RuntimeError("cgmvae must be fitted before label_embeddings")
        return self.net_.W.detach().t().float().cpu().numpy().copy()
