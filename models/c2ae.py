"""C2AE: canonical-correlated autoencoder (Yeh, Wu, Ko, Wang, AAAI 2017, arXiv 1707.00418).

Three networks into and out of a shared latent space R^l:
- feature mapping F_x: x -> R^l (MLP F -> hidden x depth -> l),
- label encoder F_e: y -> R^l (MLP L -> hidden -> l),
- label decoder F_d: R^l -> R^L (MLP l -> hidden -> L), outputs o (logits).

Training objective per batch (B rows), Phi + alpha * Gamma:
- Phi, the deep-CCA embedding loss: mean over rows of ||F_x(x) - F_e(y)||^2 under the
  constraints F_x(X)^T F_x(X) / B = F_e(Y)^T F_e(Y) / B = I. The paper writes them as
  equality constraints handled by a Lagrangian; here, per batch, as the penalty
  ``orth_weight * (||F_x^T F_x / B - I||_F^2 + ||F_e^T F_e / B - I||_F^2)``. The 1/B
  (ours) makes the constraint "uncorrelated latent coordinates of unit second moment",
  independent of the batch size; without it the constraint would shrink every latent
  vector towards norm sqrt(l/B) and make Phi trivially small.
- Gamma, the decoder's label-correlation-aware loss (BP-MLL pairwise ranking) on
  o = F_d(F_e(y)):  (1 / (|y1| |y0|)) sum_{p in y1, q in y0} exp(o_q - o_p), computed in
  O(L) as exp(logsumexp_q o_q + logsumexp_p (-o_p)) / (|y1| |y0|). Rows without a
  positive or without a negative label have no pair and contribute 0.
Prediction: F_d(F_x(x)), turned into scores in [0, 1] by a sigmoid. Gamma is invariant
to adding a constant to all of a row's logits, so the sigmoid's 0.5 is not calibrated:
the ``val`` threshold protocol (a threshold chosen on validation data) is the one to
read for C2AE; rankings (P@k) are unaffected.

Label embeddings (``label_embeddings()``): label k's point in the shared space is
F_e(e_k), the encoding of the label set {k} alone (eval mode), an (L, l) array.

Defaults are ours (sizes as the mlp's, l = 64, alpha = 1, orth_weight = 0.5), not the
paper's per-dataset settings; every constant is a hyperparameter with a search space.
"""

from __future__ import annotations

import numpy as np
import torch
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from torch import nn

from benchmark.errors import BenchmarkError
from benchmark.modelapi.torch_layers import mlp_layers
from benchmark.modelapi.torch_training import TORCH_DEFAULTS, TorchModel


def pairwise_ranking_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Batch mean of BP-MLL's (1/(|y1||y0|)) sum_{p pos, q neg} exp(o_q - o_p), O(L) per row."""
    positive = y > 0.5
    n_pos = positive.sum(-1)
    n_neg = y.shape[-1] - n_pos
    has_pairs = (n_pos > 0) & (n_neg > 0)
    # rows without pairs sum over all labels instead (finite values and gradients), then get 0
    use_pos = positive | ~has_pairs.unsqueeze(-1)
    use_neg = ~positive | ~has_pairs.unsqueeze(-1)
    log_neg = torch.logsumexp(logits.masked_fill(~use_neg, float("-inf")), dim=-1)
    log_pos = torch.logsumexp((-logits).masked_fill(~use_pos, float("-inf")), dim=-1)
    log_pairs = torch.log(use_pos.sum(-1).to(logits.dtype)) + torch.log(use_neg.sum(-1).to(logits.dtype))
    per_row = torch.exp(log_neg + log_pos - log_pairs)
    return (per_row * has_pairs.to(logits.dtype)).mean()


def orthogonality_penalty(z: torch.Tensor) -> torch.Tensor:
    """||z^T z / B - I||_F^2 for a (B, l) batch of latent codes."""
    gram = z.t() @ z / z.shape[0]
    return (gram - torch.eye(z.shape[1], device=z.device, dtype=z.dtype)).pow(2).sum()


class C2AENetwork(nn.Module):
    def __init__(self, n_features: int, n_labels: int, latent_dim: int, hidden: int, depth: int,
                 label_hidden: int, dropout: float):
        super().__init__()
        self.n_labels = n_labels
        self.feature_map = nn.Sequential(*mlp_layers([n_features] + [hidden] * depth, dropout),
                                         nn.Linear(hidden if depth else n_features, latent_dim))
        self.label_encoder = nn.Sequential(*mlp_layers([n_labels, label_hidden], dropout),
                                           nn.Linear(label_hidden, latent_dim))
        self.label_decoder = nn.Sequential(*mlp_layers([latent_dim, label_hidden], dropout),
                                           nn.Linear(label_hidden, n_labels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Prediction logits F_d(F_x(x))."""
        return self.label_decoder(self.feature_map(x))


class C2AE(TorchModel):
    """C2AE; see the module docstring."""

    name = "c2ae"
    family = "deep baseline"
    defaults = {
        **TORCH_DEFAULTS,
        "epochs": 100,
        "batch_size": 128,
        "lr": 1e-3,
        "weight_decay": 1e-5,
        "latent_dim": 64,      # l, the shared latent space
        "hidden": 512,         # width of F_x's hidden layers
        "depth": 2,            # hidden layers of F_x
        "label_hidden": 512,   # hidden width of F_e and F_d
        "dropout": 0.3,
        "alpha": 1.0,          # weight of the decoder loss Gamma against the embedding loss Phi
        "orth_weight": 0.5,    # penalty weight of the CCA constraints (the paper's Lagrangian)
    }
    search_space = {
        "lr": FloatDistribution(1e-4, 1e-2, log=True),
        "weight_decay": FloatDistribution(1e-7, 1e-3, log=True),
        "latent_dim": CategoricalDistribution([16, 32, 64, 128]),
        "hidden": CategoricalDistribution([128, 256, 512, 1024]),
        "depth": IntDistribution(1, 3),
        "label_hidden": CategoricalDistribution([128, 256, 512]),
        "dropout": FloatDistribution(0.0, 0.6),
        "alpha": FloatDistribution(0.1, 10.0, log=True),
        "orth_weight": FloatDistribution(0.01, 10.0, log=True),
        "batch_size": CategoricalDistribution([64, 128, 256]),
        "epochs": IntDistribution(20, 200, step=20),
    }

    def build_network(self, n_features: int, n_labels: int) -> nn.Module:
        p = self.params
        return C2AENetwork(n_features, n_labels, latent_dim=int(p["latent_dim"]), hidden=int(p["hidden"]),
                           depth=int(p["depth"]), label_hidden=int(p["label_hidden"]), dropout=float(p["dropout"]))

    def training_loss(self, net, x, y):
        terms = c2ae_loss_terms(net, x, y)
        p = self.params
        return terms["embedding"] + float(p["orth_weight"]) * terms["orthogonality"] + float(p["alpha"]) * terms["ranking"]

    def label_embeddings(self) -> np.ndarray:
        """(L, l) float array: label k's code F_e(e_k) in the shared latent space."""
        if not hasattr(self, "net_"):
            raise BenchmarkError("c2ae must be fitted before label_embeddings")
        net = self.net_
        was_training = net.training
        net.eval()
        with torch.inference_mode():
            eye = torch.eye(net.n_labels, device=next(net.parameters()).device)
            codes = net.label_encoder(eye).float().cpu().numpy()
        net.train(was_training)
        return codes


def c2ae_loss_terms(net: C2AENetwork, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Batch loss terms: embedding (Phi's distance), orthogonality (its constraints), ranking (Gamma)."""
    z_x = net.feature_map(x)
    z_e = net.label_encoder(y)
    return {
        "embedding": (z_x - z_e).pow(2).sum(-1).mean(),
        "orthogonality": orthogonality_penalty(z_x) + orthogonality_penalty(z_e),
        "ranking": pairwise_ranking_loss(net.label_decoder(z_e), y),
    }
