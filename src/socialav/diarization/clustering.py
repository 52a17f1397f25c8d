"""Agglomerative clustering of embeddings (SciPy) with cannot-link constraints.

Average-linkage agglomerative clustering on cosine distances (``1 - cos`` of L2-normalised
vectors), stopped at a distance threshold: the result of ``sklearn.cluster.
AgglomerativeClustering(metric="precomputed", linkage="average", distance_threshold=...)``
(which builds the same tree with ``scipy.cluster.hierarchy.linkage``), computed with SciPy's
``linkage`` and ``fcluster`` directly, which spares ``detect`` scikit-learn's import (the
interview's persons stage 1.14 -> 0.18 s, ``docs/speed.md``);
``tests/diarization/test_persons.py`` checks the labels are scikit-learn's. A cannot-link pair (two
face tracks on screen at the same time) gets the distance :data:`CANNOT_LINK_DISTANCE`; with
average linkage two clusters holding such a pair are at least ``CANNOT_LINK_DISTANCE /
(n1 n2)`` apart, above any threshold for clusters of fewer than 10^5 x 10^5 members, and the
result is checked (any violation left is split off) so the constraint always holds.

Cost: the distance matrix is ``n^2`` floats; above ``max_items`` items a regular subsample
is clustered and the others join the cluster of their most similar clustered item.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "CANNOT_LINK_DISTANCE",
    "cluster_embeddings",
    "constrained_distances",
    "cosine_distances",
]

CANNOT_LINK_DISTANCE: float = 1.0e10


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)


def cosine_distances(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """``1 - cos`` between the rows of ``a`` ``(n, d)`` and ``b`` ``(m, d)`` → ``(n, m)``."""
    a = _normalise(a)
    b = a if b is None else _normalise(b)
    return np.clip(1.0 - a @ b.T, 0.0, 2.0)


def constrained_distances(
    embeddings: np.ndarray, cannot_link: np.ndarray | None = None
) -> np.ndarray:
    """The ``(n, n)`` cosine distances that are clustered: :func:`cosine_distances` of the
    rows, :data:`CANNOT_LINK_DISTANCE` for cannot-link pairs (``cannot_link`` ``(n, n)`` bool,
    either direction), 0 on the diagonal."""
    dist = cosine_distances(embeddings)
    if cannot_link is not None:
        both = cannot_link | cannot_link.T
        np.fill_diagonal(both, False)
        dist[both] = CANNOT_LINK_DISTANCE
    np.fill_diagonal(dist, 0.0)
    return dist


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0, 1, ... in order of first occurrence."""
    mapping: dict[int, int] = {}
    return np.array([mapping.setdefault(int(x), len(mapping)) for x in labels], dtype=np.int64)


def cluster_embeddings(
    embeddings: np.ndarray,
    threshold: float,
    cannot_link: np.ndarray | None = None,
    max_items: int = 2000,
) -> np.ndarray:
    """Cluster rows of ``embeddings`` so that merged clusters are closer than ``threshold``.

    Args:
        embeddings: ``(n, d)`` float vectors (normalised here).
        threshold: average-linkage cosine-distance threshold, in ``(0, 2)``.
        cannot_link: optional ``(n, n)`` bool, True where two items must not share a cluster.
        max_items: at most this many items enter the ``n^2`` distance matrix (see module).

    Returns:
        ``(n,)`` int64 cluster labels, numbered in order of first occurrence.

    Raises:
        ValueError: wrong shapes, a threshold outside ``(0, 2)``, non-finite embeddings.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must have shape (n, d), but got shape {x.shape}")
    if not 0 < threshold < 2:
        raise ValueError(f"threshold must be a cosine distance in (0, 2), but got {threshold}")
    if not np.all(np.isfinite(x)):
        raise ValueError("embeddings contain NaN or infinite values")
    n = len(x)
    if cannot_link is not None:
        cannot_link = np.asarray(cannot_link, dtype=bool)
        if cannot_link.shape != (n, n):
            raise ValueError(f"cannot_link must have shape ({n}, {n}), but got {cannot_link.shape}")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    if n > max_items:
        if cannot_link is not None:
            raise ValueError(
                f"cannot_link constraints need all {n} items in one distance matrix; "
                f"raise max_items (now {max_items})"
            )
        keep = np.linspace(0, n - 1, max_items).round().astype(np.int64)
        keep = np.unique(keep)
        sub = cluster_embeddings(x[keep], threshold, None, max_items)
        nearest = np.argmin(cosine_distances(x, x[keep]), axis=1)
        labels = sub[nearest]
        labels[keep] = sub
        return _relabel(labels)
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    dist = constrained_distances(x, cannot_link)
    tree = linkage(squareform(dist, checks=False), method="average")
    # merge while the average distance is below the threshold (scikit-learn's
    # distance_threshold); fcluster keeps merges at or below t: the float just under it
    labels = fcluster(tree, t=np.nextafter(threshold, 0.0), criterion="distance")
    if cannot_link is not None:
        labels = _split_violations(labels, cannot_link | cannot_link.T)
    return _relabel(labels)


def _split_violations(labels: np.ndarray, cannot_link: np.ndarray) -> np.ndarray:
    """Move items out of clusters where they conflict with an earlier member (safety net)."""
    labels = labels.copy()
    next_label = int(labels.max()) + 1
    for cluster in np.unique(labels):
        members = [int(i) for i in np.flatnonzero(labels == cluster)]
        kept: list[int] = []
        for i in members:
            if any(cannot_link[i, j] for j in kept):
                logger.warning("cannot-link violation in cluster %d: item %d split off", cluster, i)
                labels[i] = next_label
                next_label += 1
            else:
                kept.append(i)
    return labels
