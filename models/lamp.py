"""LaMP: label message passing (Lanchantin, Sekhon, Qi, ECML-PKDD 2019, arXiv 1904.08049).

The L labels are nodes of a fully connected graph, each with a learnt embedding u_i in
R^d. Each of ``n_layers`` layers (a transformer decoder block without causal mask,
post-norm) updates all label nodes by
1. feature-to-label attention: u <- LN(u + MHA(query u, keys/values = input tokens)),
2. label-to-label attention:   u <- LN(u + MHA(u, u, u)),
3. feed-forward:               u <- LN(u + W2 relu(W1 u)),
and the readout is per label, logit_i = w_i . u_i + b_i with a separate w_i for every
label. Loss: binary cross-entropy on the logits; scores are their sigmoids.

Input tokens for vector features: the paper's inputs are sequences (words), ours are
feature vectors. An MLP encoder F -> ``encoder_hidden`` (ReLU, dropout) -> k * d is
reshaped into k = ``n_tokens`` tokens of size d (then layer-normalised): each token is a
different learnt view of the whole input, so feature-to-label attention lets each label
choose among k views. k = 1 makes the cross-attention a gated copy of one encoding.

Kept cheap on the CPU: d = 64, 2 layers, 4 heads, k = 4 by default (the paper: d = 512
on text). Cost per row is O(n_layers * (L * k + L^2) * d).

Large label sets (``label_block`` = c > 0): the label graph becomes block-diagonal. The
labels are grouped, by training co-occurrence, into blocks of c (:func:`cooccurrence_blocks`)
and label-to-label attention runs within each block, O(L * c * d) instead of O(L^2 * d);
feature-to-label attention and the readout are unchanged. c = 0 (the default) is the
paper's fully connected graph, and so is any c >= L.

Label embeddings (``label_embeddings()``): the learnt initial node states u_i^(0), an
(L, d) array; they do not depend on the input.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from torch import nn

from benchmark.errors import BenchmarkError
from benchmark.modelapi.base import CostUnits
from benchmark.modelapi.torch_layers import MaskDropout, mlp_layers
from benchmark.modelapi.torch_training import (
    ACTIVATION_WORK,
    STEP_OVERHEAD_PER_TENSOR,
    TORCH_DEFAULTS,
    TorchModel,
)


def cooccurrence_blocks(Y, block: int) -> np.ndarray:
    """A label order whose consecutive runs of ``block`` labels co-occur: (L,) int array.

    Greedy and deterministic: each block starts from the most frequent unplaced label and
    then adds, one at a time, the unplaced label with the largest total co-occurrence
    count with the block's members (ties: the more frequent label, then the lower index).
    """
    Y = Y.toarray() if hasattr(Y, "toarray") else np.asarray(Y)
    Y = (Y > 0).astype(np.float64)
    counts = Y.T @ Y
    frequency = np.diag(counts).copy()
    n_labels = Y.shape[1]
    placed = np.zeros(n_labels, dtype=bool)
    # a tie-break term below one co-occurrence count: frequency first, then the index
    tie = (frequency + 1.0 - np.arange(n_labels) / (n_labels + 1.0)) / (frequency.max() + 2.0)
    order: list[int] = []
    while len(order) < n_labels:
        seed = int(np.argmax(np.where(placed, -np.inf, tie)))
        members, score = [seed], counts[seed].copy()
        placed[seed] = True
        while len(members) < block and len(order) + len(members) < n_labels:
            nxt = int(np.argmax(np.where(placed, -np.inf, score + tie)))
            members.append(nxt)
            placed[nxt] = True
            score += counts[nxt]
        order += members
    return np.asarray(order, dtype=np.int64)


class LabelSelfAttention(nn.Module):
    """Label-to-label attention: over all nodes (``block`` = 0, the full graph), or within
    consecutive blocks of ``block`` nodes (the last one padded)."""

    def __init__(self, dim: int, heads: int, block: int, attn_dropout: float):
        super().__init__()
        self.block = block
        self.attn = nn.MultiheadAttention(dim, heads, dropout=attn_dropout, batch_first=True)

    def forward(self, nodes: torch.Tensor) -> torch.Tensor:
        if not self.block:
            return self.attn(nodes, nodes, nodes, need_weights=False)[0]
        batch, n_nodes, dim = nodes.shape
        n_blocks = -(-n_nodes // self.block)
        pad = n_blocks * self.block - n_nodes
        blocks = nn.functional.pad(nodes, (0, 0, 0, pad)).reshape(batch * n_blocks, self.block, dim)
        padding = None
        if pad:  # the padded nodes of the last block are never attended to
            padding = torch.zeros(n_blocks, self.block, dtype=torch.bool, device=nodes.device)
            padding[-1, self.block - pad:] = True
            padding = padding.repeat(batch, 1)
        out = self.attn(blocks, blocks, blocks, key_padding_mask=padding, need_weights=False)[0]
        return out.reshape(batch, n_blocks * self.block, dim)[:, :n_nodes]


class MessagePassingLayer(nn.Module):
    """Feature-to-label attention, label-to-label attention, feed-forward; each residual + LN."""

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float, attn_dropout: float = 0.0,
                 block: int = 0):
        super().__init__()
        # Dropout on the attention weights forces PyTorch's math path, which materialises the
        # B x heads x L x L weights: 8.1 GB and 24 CPU-s for one layer's forward and backward
        # at B = 128, L = 983 (delicious), against 0.7 GB and 3.3 s for the fused kernel that
        # attn_dropout = 0 allows. Residual and feed-forward dropout are kept.
        self.cross = nn.MultiheadAttention(dim, heads, dropout=attn_dropout, batch_first=True)
        self.self_attn = LabelSelfAttention(dim, heads, block, attn_dropout)
        # dropout from a uniform mask: nn.Dropout's bernoulli_ was a quarter of a step at L = 983
        self.ff = nn.Sequential(nn.Linear(dim, ff_dim), nn.ReLU(), MaskDropout(dropout), nn.Linear(ff_dim, dim))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))
        self.dropout = MaskDropout(dropout)

    def forward(self, labels: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        h = self.cross(labels, tokens, tokens, need_weights=False)[0]
        labels = self.norms[0](labels + self.dropout(h))
        h = self.self_attn(labels)
        labels = self.norms[1](labels + self.dropout(h))
        return self.norms[2](labels + self.dropout(self.ff(labels)))


class LaMPNetwork(nn.Module):
    def __init__(self, n_features: int, n_labels: int, dim: int, n_tokens: int, encoder_hidden: int,
                 n_layers: int, heads: int, ff_dim: int, dropout: float, attn_dropout: float = 0.0,
                 label_order: np.ndarray | None = None, block: int = 0):
        super().__init__()
        self.dim, self.n_tokens = dim, n_tokens
        # With blocks the nodes are held in ``label_order`` (co-occurring labels adjacent);
        # ``output_index`` maps the logits back to the dataset's label order.
        if label_order is not None:
            self.register_buffer("output_index", torch.as_tensor(np.argsort(label_order), dtype=torch.long))
        else:
            self.output_index = None
        self.encoder = nn.Sequential(*mlp_layers([n_features, encoder_hidden], dropout, MaskDropout),
                                     nn.Linear(encoder_hidden, n_tokens * dim))
        self.token_norm = nn.LayerNorm(dim)
        self.label_embedding = nn.Parameter(torch.randn(n_labels, dim) * dim ** -0.5)
        self.layers = nn.ModuleList(MessagePassingLayer(dim, heads, ff_dim, dropout, attn_dropout, block)
                                    for _ in range(n_layers))
        self.readout_weight = nn.Parameter(torch.randn(n_labels, dim) * dim ** -0.5)
        self.readout_bias = nn.Parameter(torch.zeros(n_labels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.token_norm(self.encoder(x).view(x.shape[0], self.n_tokens, self.dim))
        labels = self.label_embedding.unsqueeze(0).expand(x.shape[0], -1, -1)
        for layer in self.layers:
            labels = layer(labels, tokens)
        logits = (labels * self.readout_weight).sum(-1) + self.readout_bias
        return logits if self.output_index is None else logits[:, self.output_index]


#: activation bytes of one prediction chunk (see LaMP.predict_scores)
EVAL_BYTES = 256 * 2**20


class LaMP(TorchModel):
    """LaMP for vector features; see the module docstring."""

    name = "lamp"
    family = "deep baseline"
    defaults = {
        **TORCH_DEFAULTS,
        "epochs": 100,
        "batch_size": 128,
        "lr": 3e-4,             # with dropout 0.3: better than 1e-3 / 0.1 on yeast's validation split
        "weight_decay": 1e-5,
        "dim": 64,              # d, size of label nodes and input tokens
        "n_tokens": 4,          # k, input tokens made from the encoder output
        "encoder_hidden": 256,  # hidden width of the feature MLP
        "n_layers": 2,          # T, message-passing layers
        "heads": 4,             # attention heads (must divide dim)
        "ff_dim": 128,          # feed-forward width inside each layer
        "dropout": 0.3,
        "attn_dropout": 0.0,    # on the attention weights; > 0 costs memory O(B L^2) (see MessagePassingLayer)
        "label_block": 0,       # c: label-to-label attention within co-occurrence blocks of c labels; 0 = full graph
    }
    search_space = {
        "lr": FloatDistribution(1e-4, 5e-3, log=True),
        "weight_decay": FloatDistribution(1e-7, 1e-3, log=True),
        "dim": CategoricalDistribution([32, 64, 128]),
        "n_tokens": CategoricalDistribution([1, 2, 4, 8]),
        "encoder_hidden": CategoricalDistribution([128, 256, 512]),
        "n_layers": IntDistribution(1, 3),
        "heads": CategoricalDistribution([1, 2, 4]),
        "ff_dim": CategoricalDistribution([64, 128, 256]),
        "dropout": FloatDistribution(0.0, 0.5),
        "batch_size": CategoricalDistribution([64, 128, 256]),
        "epochs": IntDistribution(20, 200, step=20),
    }

    def fit(self, X, Y, X_val=None, Y_val=None, on_epoch=None) -> "LaMP":
        block = int(self.params.get("label_block", 0))
        if block < 0:
            raise BenchmarkError(f"lamp: label_block must be >= 0 (0 = full label graph), not {block}")
        # a block as large as the label set is the full graph: same network, no reordering
        self.block_ = block if 0 < block < Y.shape[1] else 0
        self.label_order_ = cooccurrence_blocks(Y, block) if self.block_ else None
        return super().fit(X, Y, X_val, Y_val, on_epoch)

    @classmethod
    def cost_units(cls, n_features: int, n_labels: int, params: dict[str, Any], density: float = 1.0,
                   label_density: float = 1.0) -> CostUnits:
        """Work per row is per label node: each layer attends from every label to the feature
        tokens and to the other labels (all of them, or a block), then a feed-forward."""
        p = {**cls.defaults, **params}
        dim, ff, tokens, layers = int(p["dim"]), int(p["ff_dim"]), int(p["n_tokens"]), int(p["n_layers"])
        heads = int(p["heads"])
        block = int(p["label_block"])
        attended = block if 0 < block < n_labels else n_labels
        activations = ACTIVATION_WORK * (3 * dim + ff + heads * (tokens + attended))  # norms, ff, attention weights
        per_label = layers * (8 * dim * dim + 2 * dim * ff + 2 * dim * (tokens + attended) + activations) + 2 * dim
        encoder = n_features * int(p["encoder_hidden"]) + int(p["encoder_hidden"]) * tokens * dim
        tensors = 4 + 14 * layers
        return CostUnits(row=float(encoder + n_labels * per_label),
                         step=float(encoder + n_labels * dim * 2 + layers * (4 * dim * dim + 2 * dim * ff)
                                    + STEP_OVERHEAD_PER_TENSOR * tensors))

    def build_network(self, n_features: int, n_labels: int) -> nn.Module:
        p = self.params
        dim, heads = int(p["dim"]), int(p["heads"])
        if dim % heads:
            raise BenchmarkError(f"lamp: heads ({heads}) must divide dim ({dim})")
        return LaMPNetwork(n_features, n_labels, dim=dim, n_tokens=int(p["n_tokens"]),
                           encoder_hidden=int(p["encoder_hidden"]), n_layers=int(p["n_layers"]), heads=heads,
                           ff_dim=int(p["ff_dim"]), dropout=float(p["dropout"]),
                           attn_dropout=float(p["attn_dropout"]), label_order=self.label_order_,
                           block=self.block_)

    def training_loss(self, net, x, y):
        return nn.functional.binary_cross_entropy_with_logits(net(x), y)

    def predict_scores(self, net, x):
        """Sigmoid scores in row chunks of at most ``EVAL_BYTES`` of label-node activations.

        The harness predicts 8192 rows at a time; here every row carries L label nodes and,
        in eval mode, PyTorch's fused attention materialises the heads x L x L weights: 30 GB
        for one 1938-row validation pass on delicious at the defaults.
        """
        chunk = self.eval_rows(x.shape[0])
        return torch.cat([torch.sigmoid(net(x[i:i + chunk])) for i in range(0, x.shape[0], chunk)])

    def eval_rows(self, n_rows: int) -> int:
        """Rows per prediction chunk: the per-row activations (node states, feed-forward,
        attention weights of a block or of the whole label graph) times the chunk <= EVAL_BYTES."""
        p = self.params
        n_labels = int(self.n_labels_)
        block = getattr(self, "block_", 0) or n_labels
        per_row = 4 * n_labels * (4 * int(p["dim"]) + int(p["ff_dim"]) + int(p["heads"]) * block)
        return max(1, min(n_rows, EVAL_BYTES // per_row))

    def label_embeddings(self) -> np.ndarray:
        """(L, d) float array: the learnt initial label node states."""
        if not hasattr(self, "net_"):
            raise BenchmarkError("lamp must be fitted before label_embeddings")
        embedding = self.net_.label_embedding.detach().float().cpu().numpy()
        index = self.net_.output_index
        return (embedding if index is None else embedding[index.cpu().numpy()]).copy()
