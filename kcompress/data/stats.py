"""Empirical power laws of an entity stream: Heaps (distinct entities) and Zipf (ranked counts)."""

from __future__ import annotations

import numpy as np

from kcompress.analysis.fits import loglog_slope

NUM_REPLICATES = 16          # independent PYCRP streams beside a run's own (stream_stats)
REPLICATE_SEED_BASE = 1000   # their entity keys: PRNGKey(REPLICATE_SEED_BASE + r)


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


def counts_of_counts(entity_N) -> dict[str, list[int]]:
  """{count: [c ...], entities: [M_c ...]}: how many entities occur exactly c times."""
  c, m = np.unique(np.bincount(np.asarray(entity_N)), return_counts=True)
  keep = c > 0
  return {"count": c[keep].tolist(), "entities": m[keep].tolist()}


def replicate_entities(alpha: float, beta: float, num_sentences: int,
                       num_replicates: int = NUM_REPLICATES) -> tuple[np.ndarray, np.ndarray]:
  """Entity sequences of independent PYCRP(alpha, beta) streams and their first-occurrence
  flags: (int32 [R, N], bool [R, N]) (host numpy).

  Keyed by REPLICATE_SEED_BASE + r, apart from any run's own stream keys.
  """
  import jax
  import jax.numpy as jnp
  from kcompress.data import pycrp

  def one(key):
    _, entity, is_new = pycrp.pycrp_draw(alpha, beta, num_sentences, key,
                                         pycrp.crp_init(num_sentences), num_sentences)
    return entity, is_new

  with jax.enable_x64(True):
    keys = jnp.stack([jax.random.PRNGKey(REPLICATE_SEED_BASE + r) for r in range(num_replicates)])
    return jax.device_get(jax.jit(jax.vmap(one))(keys))


def stream_stats(alpha: float, beta: float, entity_N, is_new_N,
                 num_replicates: int = NUM_REPLICATES) -> dict:
  """Heaps curve and counts of counts of a stream's entity sequence (and its first-occurrence
  flags), beside the same of
  `num_replicates` independent PYCRP streams of the same length (their spread is the
  sampling spread of any statistic of the stream). JSON-ready (WORKDIR/stream_stats.json).
  """
  entity_N = np.asarray(entity_N)
  n, k = heaps_curve(is_new_N)
  reps = zip(*replicate_entities(alpha, beta, len(entity_N), num_replicates))
  return {"num_sentences": int(len(entity_N)), "alpha": alpha, "beta": beta,
          "heaps": {"n": n.tolist(), "entities": k.tolist()},
          "counts_of_counts": counts_of_counts(entity_N),
          "replicates": [{"heaps_entities": heaps_curve(new)[1].tolist(),
                          "counts_of_counts": counts_of_counts(e)} for e, new in reps]}
