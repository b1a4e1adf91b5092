"""Label-embedding insight: learnt label-label similarity beside the data's label dependence.

For every model whose cells stored ``label_embeddings`` (see :func:`benchmark.execution.worker.model_artifacts`),
per dataset: the cosine-similarity matrix of the learnt embeddings and the pointwise mutual
information (PMI) of label co-occurrence in the same training rows, both in one order
(average-linkage clustering of the PMI matrix), with the Spearman correlation between
their off-diagonal entries. A model whose embeddings encode label dependence shows the
same blocks in both panels and a positive correlation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class EmbeddingInsight:
    dataset: str
    model: str
    spearman: float
    p_value: float
    n_labels: int
    figure: list[Path]


def cosine_similarity(embeddings: np.ndarray) -> np.ndarray:
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    return unit @ unit.T


def pmi(cooccurrence: np.ndarray, n_rows: int, smoothing: float = 0.5) -> np.ndarray:
    """log P(i, j) / (P(i) P(j)), with add-``smoothing`` counts so that never-together pairs stay finite."""
    counts = np.asarray(cooccurrence, dtype=np.float64)
    n = float(n_rows) + 2 * smoothing
    marginal = (np.diag(counts) + smoothing) / n
    joint = (counts + smoothing * 0.5) / n
    return np.log(joint / np.outer(marginal, marginal))


def cluster_order(matrix: np.ndarray) -> np.ndarray:
    """Leaf order of average-linkage clustering with distance max(M) - M (similar labels adjacent)."""
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    if len(matrix) < 3:
        return np.arange(len(matrix))
    distance = matrix.max() - matrix
    distance = (distance + distance.T) / 2
    np.fill_diagonal(distance, 0.0)
    return leaves_list(linkage(squareform(distance, checks=False), method="average"))


def insight(dataset: str, model: str, arrays: dict[str, np.ndarray], out_stem: Path) -> EmbeddingInsight:
    import matplotlib.pyplot as plt
    from scipy.stats import spearmanr

    sim = cosine_similarity(np.asarray(arrays["label_embeddings"], dtype=np.float64))
    dep = pmi(arrays["cooccurrence"], int(arrays["n_train"]))
    present = np.diag(arrays["cooccurrence"]) > 0  # labels never seen in training say nothing
    sim, dep = sim[np.ix_(present, present)], dep[np.ix_(present, present)]
    upper = np.triu_indices(len(sim), k=1)
    rho, p = spearmanr(sim[upper], dep[upper]) if len(upper[0]) >= 3 else (np.nan, np.nan)
    order = cluster_order(dep)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    for ax, matrix, title, cmap in ((axes[0], dep, "label PMI (training co-occurrence)", "viridis"),
                                    (axes[1], sim, f"{model}: cosine similarity of label embeddings", "magma")):
        shown = matrix[np.ix_(order, order)].copy()
        np.fill_diagonal(shown, np.nan)  # self-similarity would set the colour scale
        image = ax.imshow(shown, cmap=cmap, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(f"{dataset}: {len(sim)} labels in one clustered order (diagonal blank); "
                 f"Spearman rho = {rho:.3f} (p = {p:.2g})",
                 fontsize=10)
    fig.tight_layout()
    files = []
    for suffix in (".png", ".pdf"):
        path = out_stem.with_suffix(suffix)
        fig.savefig(path, dpi=130, metadata={"CreationDate": None} if suffix == ".pdf" else None)
        files.append(path)
    plt.close(fig)
    return EmbeddingInsight(dataset, model, float(rho), float(p), int(len(sim)), files)


def embedding_insights(runs, load, figures_dir: Path) -> list[EmbeddingInsight]:
    """One insight per (dataset, model) with stored embeddings: the lowest seed at the largest fraction.

    ``load(relative_path) -> dict`` reads a cell's artifact file (the store's ``load_artifacts``).
    """
    if "artifacts" not in runs.columns:
        return []
    rows = runs[(runs["status"] == "done") & runs["artifacts"].map(lambda v: isinstance(v, str) and bool(v))]
    results = []
    for (dataset, model), group in rows.groupby(["dataset", "model"]):
        chosen = group.sort_values(["fraction", "seed"], ascending=[False, True]).iloc[0]
        try:
            arrays = load(chosen["artifacts"])
        except (OSError, KeyError, ValueError):
            continue  # a missing or damaged artifact file: no figure, the tables are unaffected
        if "label_embeddings" not in arrays or "cooccurrence" not in arrays:
            continue
        figures_dir.mkdir(parents=True, exist_ok=True)
        results.append(insight(dataset, model, arrays, figures_dir / f"embeddings_{model}_{dataset}"))
    return results
