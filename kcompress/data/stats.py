"""Empirical power laws of an entity stream: Heaps (distinct entities) and Zipf (ranked counts)."""

from __future__ import annotations

import numpy as np

from kcompress.analysis.fits import loglog_slope


def heaps_curve(is_new_N, num_points: int = 40) -> tuple[np.ndarray, np.ndarray]:
  """(n, K_n) on a geometric grid of n in [1, N]."""
  k = np.cumsum(np.asarray(is_new_N, dtype=np.int64))
  n = np.unique(np.geomspace(1, len(k), num_points).astype(np.int64))
  return n, k[n - 1]


def heaps_slope(is_new_N, decades: float = 2.0) -> float:
  """Log-log slope of K_n vs n over the last `decades` decades of the stream (theory: alpha)."""
  n, k = heaps_curve(is_new_N, num_points=60)
  return loglog_slope(n, k, x_min=len(is_new_N) / 10 ** decades)


def ranked_counts(entity_N) -> np.ndarray:
  """Occurrence counts of each entity, sorted decreasingly."""
  return np.sort(np.bincount(np.asarray(entity_N)))[::-1]


def zipf_slope(entity_N, min_count: int = 5) -> float:
  """Log-log slope of ranked entity counts (theory: -1/alpha).

  Fitted over ranks whose count is at least `min_count` (below that, ties and
  integer effects flatten the curve), on a geometric grid of ranks so that each
  decade weighs the same.
  """
  counts = ranked_counts(entity_N)
  top = int(np.sum(counts >= min_count))
  if top < 3:
    return float("nan")
  ranks = np.unique(np.geomspace(1, top, 50).astype(np.int64))
  return loglog_slope(ranks, counts[ranks - 1])


def fact_singletons(fact_counts) -> dict[str, float]:
  """Good-Turing figures of the facts revealed so far, from occurrence counts [E, A].

  singleton_fraction = N1 / K (facts seen exactly once among revealed facts; tends to
  alpha under Pitman-Yor, see `theory.expected_fact_singleton_fraction`);
  missing_mass = N1 / n (the Good-Turing estimate of the probability that the next
  sentence states a fact never seen before; decays as n^(alpha-1)).
  """
  counts = np.asarray(fact_counts, np.int64).reshape(-1)
  revealed = int(np.count_nonzero(counts))
  singles = int(np.count_nonzero(counts == 1))
  total = int(counts.sum())
  return {"revealed": revealed, "singletons": singles, "occurrences": total,
          "singleton_fraction": singles / revealed if revealed else float("nan"),
          "missing_mass": singles / total if total else float("nan")}
