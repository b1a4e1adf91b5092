"""A plain multi-layer perceptron trained with binary cross-entropy: the deep baseline.

It shares everything but the network with the VAEs (benchmark.modelapi.torch_training): features
standardised with training statistics (part of the model; hyperparameter ``standardize``),
data on the device, Adam, per-epoch validation macro-F1 with epoch selection
(``epoch_selection``) and pruning callbacks.
"""

from __future__ import annotations

from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from torch import nn

from benchmark.modelapi.torch_layers import mlp_layers
from benchmark.modelapi.torch_training import TORCH_DEFAULTS, TorchModel


class MLP(TorchModel):
    """MLP F -> width x depth -> L (ReLU, dropout), BCE on logits, Adam."""

    name = "mlp"
    family = "deep baseline"
    defaults = {
        **TORCH_DEFAULTS,
        "epochs": 100,
        "batch_size": 128,
        "lr": 1e-3,
        "weight_decay": 1e-5,
        "width": 256,   # units in every hidden layer
        "depth": 2,     # number of hidden layers (0 = linear model)
        "dropout": 0.3,
    }
    search_space = {
        "lr": FloatDistribution(1e-4, 1e-2, log=True),
        "weight_decay": FloatDistribution(1e-7, 1e-3, log=True),
        "width": CategoricalDistribution([64, 128, 256, 512, 1024]),
        "depth": IntDistribution(1, 3),
        "dropout": FloatDistribution(0.0, 0.6),
        "batch_size": CategoricalDistribution([64, 128, 256]),
        "epochs": IntDistribution(20, 200, step=20),
    }

    def build_network(self, n_features: int, n_labels: int) -> nn.Module:
        width, depth = int(self.params["width"]), int(self.params["depth"])
        hidden = mlp_layers([n_features] + [width] * depth, float(self.params["dropout"]))
        return nn.Sequential(*hidden, nn.Linear(width if depth else n_features, n_labels))

    def training_loss(self, net, x, y):
        return nn.functional.binary_cross_entropy_with_logits(net(x), y)
