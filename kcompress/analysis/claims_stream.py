"""Claims 1-2 on the generated stream (stream_stats.json): Heaps' and Zipf's log-log slopes,
each against the same statistic of the generator's expected curve.
"""

from __future__ import annotations

import math

import numpy as np

from kcompress import theory
from kcompress.analysis import fits
from kcompress.analysis.claims_rule import Z95, claim_row, fmt

# Measurement choices (fixed before looking at any run).
HEAPS_DECADES = 2.0     # Heaps slope over n in [N / 10^2, N]
ZIPF_MIN_COUNT = 5      # Zipf slope over ranks whose count is >= 5 (as stats.zipf_slope)
ZIPF_GRID = 50          # geometric grid of ranks (each decade weighs the same)


def _stream_missing(run: dict) -> str:
  ss = run.get("stream_stats") or {}
  if not ss:
    return "no stream_stats.json in this run"
  if len(ss.get("replicates", [])) < 2:
    return "stream_stats.json has fewer than 2 replicate streams: no sampling spread"
  return ""


def _sd(values) -> float:
  """Sample standard deviation of the finite values (NaN with fewer than 2)."""
  v = np.asarray(values, float)
  v = v[np.isfinite(v)]
  return float(np.std(v, ddof=1)) if len(v) >= 2 else math.nan


def heaps_statistic(n, k, num_sentences: int) -> float:
  """Log-log slope of K_n vs n over n >= N / 10^HEAPS_DECADES."""
  return fits.loglog_slope(n, k, x_min=num_sentences / 10 ** HEAPS_DECADES)


def ranked_from_counts(counts_of_counts: dict) -> np.ndarray:
  """Ranked entity counts (decreasing) from {count: [c...], entities: [M_c...]}."""
  c = np.asarray(counts_of_counts["count"], np.int64)
  m = np.asarray(counts_of_counts["entities"], np.int64)
  return np.sort(np.repeat(c, m))[::-1]


def zipf_statistic(ranked: np.ndarray) -> float:
  """Log-log slope of ranked counts over ranks with count >= ZIPF_MIN_COUNT, on a geometric
  grid of ranks (the statistic of kcompress.data.stats.zipf_slope)."""
  top = int(np.sum(ranked >= ZIPF_MIN_COUNT))
  if top < 3:
    return math.nan
  ranks = np.unique(np.geomspace(1, top, ZIPF_GRID).astype(np.int64))
  return fits.loglog_slope(ranks, ranked[ranks - 1])


def expected_zipf_statistic(alpha: float, beta: float, n: int) -> float:
  """The Zipf statistic of the expected rank-frequency curve: rank(c) = E[#entities seen >= c
  times] (theory.expected_entities_at_least), inverted to a count per rank."""
  top = float(theory.expected_entities_at_least(alpha, beta, n, [ZIPF_MIN_COUNT])[0])
  if top < 3:
    return math.nan
  ranks = np.unique(np.geomspace(1, top, ZIPF_GRID).astype(np.int64))
  return fits.loglog_slope(ranks, theory.expected_ranked_counts(alpha, beta, n, ranks))


def claim_heaps(run: dict) -> dict:
  """Heaps: slope of log K_n vs log n over the last two decades of the run's stream (on the
  geometric n grid of stream_stats.json); the 95% interval is the slope +- 1.96 sd of the
  same slope over the replicate streams; predicted: the same slope of the exact E[K_n]
  (config alpha and beta: the claim is about the configured generator) on the same n."""
  cfg = run["config"]["data"]
  alpha, beta = cfg["alpha"], cfg["beta"]
  q = "slope of log K_n vs log n over n in [N/100, N] (N sentences of the stream)"
  formula = "slope of E[K_n] = (beta/alpha)[(beta+alpha)_n/(beta)_n - 1] (tends to alpha)"
  missing = _stream_missing(run)
  if missing:
    return claim_row("heaps_slope", "Heaps: distinct entities grow as n^alpha", q, math.nan, None,
                     None, "point", formula=formula, ok=False, why_not=missing)
  ss = run["stream_stats"]
  N = int(ss["num_sentences"])
  n = np.asarray(ss["heaps"]["n"], float)
  measured = heaps_statistic(n, ss["heaps"]["entities"], N)
  reps = np.array([heaps_statistic(n, r["heaps_entities"], N) for r in ss["replicates"]])
  sd = _sd(reps)
  predicted = heaps_statistic(n, theory.expected_num_entities(alpha, beta, n), N)
  return claim_row("heaps_slope", "Heaps: distinct entities grow as n^alpha", q, predicted,
                   measured, (measured - Z95 * sd, measured + Z95 * sd), "point", formula=formula,
                   note=f"N = {N:,} sentences; {len(reps)} replicate streams (mean "
                        f"{fmt(float(np.nanmean(reps)))}, sd {fmt(sd)}); "
                        f"alpha = {alpha}, beta = {beta}")


def claim_zipf(run: dict) -> dict:
  """Zipf: slope of log count vs log rank over ranks with count >= 5 (geometric rank grid);
  95% interval +- 1.96 sd over the replicates; predicted: the same statistic of the expected
  rank-frequency curve rank(c) = sum_{j>=c} E[M_{j,N}] (Pitman's formula). That is the
  statistic of the expected curve, not the expected statistic: they differ at the top ranks
  (at alpha 0.5, beta 10, N = 3.5e5 by 0.04, 0.6 replicate sd), so the note gives the
  replicates' mean beside it."""
  cfg = run["config"]["data"]
  alpha, beta = cfg["alpha"], cfg["beta"]
  q = f"slope of log count vs log rank over ranks with count >= {ZIPF_MIN_COUNT}"
  formula = "slope of rank(c) = sum_{j>=c} E[M_{j,N}] inverted (tends to -1/alpha)"
  missing = _stream_missing(run)
  if missing:
    return claim_row("zipf_slope", "Zipf: ranked entity counts fall as rank^(-1/alpha)", q,
                     math.nan, None, None, "point", formula=formula, ok=False, why_not=missing)
  ss = run["stream_stats"]
  N = int(ss["num_sentences"])
  ranked = ranked_from_counts(ss["counts_of_counts"])
  measured = zipf_statistic(ranked)
  reps = np.array([zipf_statistic(ranked_from_counts(r["counts_of_counts"]))
                   for r in ss["replicates"]])
  sd = _sd(reps)
  predicted = expected_zipf_statistic(alpha, beta, N)
  return claim_row("zipf_slope", "Zipf: ranked entity counts fall as rank^(-1/alpha)", q, predicted,
                   measured, (measured - Z95 * sd, measured + Z95 * sd), "point", formula=formula,
                   note=f"{int(np.sum(ranked >= ZIPF_MIN_COUNT)):,} entities with count >= "
                        f"{ZIPF_MIN_COUNT}; N = {N:,}; {len(reps)} replicates (mean "
                        f"{fmt(float(np.nanmean(reps)))}, sd {fmt(sd)})")

