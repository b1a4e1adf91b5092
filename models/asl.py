"""The mlp trained with the asymmetric loss (ASL; Ridnik et al., ICCV 2021, arXiv 2009.14119).

Same network, optimiser, standardisation and epoch protocol as ``mlp`` (the class is
imported and only the loss replaced). Per label, with p = sigmoid(s):

    positive:  -(1 - p)^gamma_pos * log(p)
    negative:  -p_m^gamma_neg * log(1 - p_m),   p_m = max(p - clip, 0)

Focusing with gamma_neg > gamma_pos down-weights the many easy negatives of a
multi-label problem; the probability shift ``clip`` (m) discards negatives with
p < m outright and lowers the loss of possibly mislabelled confident negatives.
Paper defaults: gamma_pos = 0, gamma_neg = 4, clip = 0.05. The authors' advice: when
positive-negative imbalance is mild, start from gamma = 0 (plain BCE, which ASL reduces
to at gamma_pos = gamma_neg = clip = 0; tested) and raise gamma_neg from there; the
search space includes 0.

The loss is averaged over batch x labels, as the mlp's BCE is (the paper sums): Adam is
nearly invariant to that scale, and the mlp's learning rates and weight decay carry
over. log(p) is computed as logsigmoid(s); log(1 - p_m) as logsigmoid(-s) when clip = 0
and as log of 1 - p_m >= clip otherwise, so the loss is finite for every logit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mlcbench_models.mlp import MLP
from optuna.distributions import FloatDistribution


def asymmetric_loss(logits: torch.Tensor, y: torch.Tensor, gamma_pos: float, gamma_neg: float,
                    clip: float) -> torch.Tensor:
    """Mean over all cells of the ASL of ``logits`` (B, L) against 0/1 ``y``."""
    # The focusing weights (1 - p)^g+ and p_m^g- are taken through logs (or masked at 0):
    # x.pow(g) at x = 0 has an infinite gradient for g < 1, and a saturated sigmoid (1 - p
    # = 0 in float32 beyond logits of ~17) made fractional-gamma trials diverge (NaN).
    p = torch.sigmoid(logits)
    log_p = F.logsigmoid(logits)
    if clip > 0:
        p_m = (p - clip).clamp(min=0.0)
        log_not_p_m = torch.log((1.0 - p_m).clamp(min=clip))
        weight_neg = torch.where(p_m > 0, p_m.clamp(min=1e-12).pow(gamma_neg), torch.zeros_like(p_m))
    else:
        log_not_p_m = F.logsigmoid(-logits)
        weight_neg = torch.exp(gamma_neg * log_p)  # p^g-
    positive = log_p if gamma_pos == 0 else torch.exp(gamma_pos * F.logsigmoid(-logits)) * log_p
    negative = log_not_p_m if gamma_neg == 0 else weight_neg * log_not_p_m
    return -(y * positive + (1.0 - y) * negative).mean()


class ASL(MLP):
    """MLP with the asymmetric loss; see the module docstring."""

    name = "asl"
    defaults = {**MLP.defaults, "gamma_pos": 0.0, "gamma_neg": 4.0, "clip": 0.05}
    search_space = {
        **MLP.search_space,
        "gamma_pos": FloatDistribution(0.0, 2.0),
        "gamma_neg": FloatDistribution(0.0, 6.0),
        "clip": FloatDistribution(0.0, 0.2),
    }

    def training_loss(self, net, x, y):
        p = self.params
        return asymmetric_loss(net(x), y, float(p["gamma_pos"]), float(p["gamma_neg"]), float(p["clip"]))
