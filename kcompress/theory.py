"""Closed-form reference predictions of the Pitman-Yor / Syntax-Knowledge theory (SPEC section 6).

Pure numpy/scipy; used by config validation, tests and the analysis overlays.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special


def expected_num_entities(alpha: float, beta: float, n) -> np.ndarray | float:
  """E[K_n], the expected number of distinct entities after n draws of PYCRP(alpha, beta).

  alpha > 0: (beta/alpha) [(beta+alpha)_n / (beta)_n - 1] with (x)_n the rising factorial;
  alpha = 0: beta [psi(beta+n) - psi(beta)]. Exact for every n >= 0 (vectorised over n).
  For beta <= 0 it uses the exact recursion E[K_{i+1}] = E[K_i] (1 + alpha/(i+beta)) +
  beta/(i+beta), which follows from P(new | K_i) being linear in K_i.
  """
  n_arr = np.asarray(n, dtype=np.float64)
  scalar = n_arr.ndim == 0
  n_arr = np.atleast_1d(n_arr)
  if beta > 0:
    if alpha == 0:
      out = beta * (special.digamma(beta + n_arr) - special.digamma(beta))
    else:
      log_ratio = (special.gammaln(beta + alpha + n_arr) - special.gammaln(beta + alpha)
                   - special.gammaln(beta + n_arr) + special.gammaln(beta))
      out = (beta / alpha) * np.expm1(log_ratio)
  else:
    top = int(n_arr.max()) if n_arr.size else 0
    k = np.zeros(top + 1)
    if top >= 1:
      k[1] = 1.0
    for i in range(1, top):
      k[i + 1] = k[i] * (1 + alpha / (i + beta)) + beta / (i + beta)
    out = k[n_arr.astype(np.int64)]
  out = np.where(n_arr <= 0, 0.0, out)
  return float(out[0]) if scalar else out


def _log_rising(x, k):
  """log (x)_k = log Gamma(x + k) - log Gamma(x), for x > 0 (vectorised)."""
  return special.gammaln(np.add(x, k)) - special.gammaln(x)


def expected_blocks_of_size(alpha: float, beta: float, n: int, sizes) -> np.ndarray:
  """E[M_{j,n}]: expected number of entities seen exactly j times after n draws (beta > 0).

  Pitman's formula: C(n, j) (1-alpha)_{j-1} (beta+alpha)_{n-j} / (beta+1)_{n-1}
  (sums to E[K_n] over j and to n when weighted by j).
  """
  j = np.asarray(sizes, dtype=np.float64)
  log_choose = special.gammaln(n + 1) - special.gammaln(j + 1) - special.gammaln(n - j + 1)
  out = np.exp(log_choose + _log_rising(1 - alpha, j - 1) + _log_rising(beta + alpha, n - j)
               - _log_rising(beta + 1, n - 1))
  return np.where((j >= 1) & (j <= n), out, 0.0)


def _tail_blocks(alpha: float, beta: float, n: int, counts, chunk: int = 1 << 20) -> np.ndarray:
  """sum_{j>=c} E[M_{j,n}] for each c in `counts` (c <= 1: E[K_n]; c > n: 0), accumulated over
  chunks of j so that memory stays constant for long streams."""
  c = np.asarray(counts, np.int64)
  prefix = np.zeros(c.shape)            # sum_{j<c} E[M_{j,n}]
  running = 0.0
  for lo in range(1, n + 1, chunk):
    hi = min(lo + chunk, n + 1)         # this chunk: j = lo .. hi - 1
    cum = running + np.cumsum(expected_blocks_of_size(alpha, beta, n, np.arange(lo, hi)))
    here = (c - 1 >= lo) & (c - 1 < hi)
    prefix[here] = cum[c[here] - 1 - lo]
    running = float(cum[-1])
  return np.where(c > n, 0.0, np.maximum(running - prefix, 0.0))


def expected_entities_at_least(alpha: float, beta: float, n: int, counts) -> np.ndarray:
  """E[number of entities seen at least c times after n draws] = sum_{j>=c} E[M_{j,n}], per c
  (beta > -alpha): the expected rank of count c in the rank-frequency (Zipf) curve."""
  return _tail_blocks(alpha, beta, int(n), counts)


def expected_ranked_counts(alpha: float, beta: float, n: int, ranks,
                           grid_points: int = 4000) -> np.ndarray:
  """The count at each rank of the expected rank-frequency curve: the c (real, log-log
  interpolated on a geometric grid of counts) where sum_{j>=c} E[M_{j,n}] = rank. Its
  log-log slope tends to -1/alpha."""
  n = int(n)
  c = np.unique(np.geomspace(1, n, grid_points).astype(np.int64))
  tail = _tail_blocks(alpha, beta, n, c)          # non-increasing in c
  keep = tail > 1e-9
  x, y = np.log(tail[keep])[::-1], np.log(c[keep].astype(np.float64))[::-1]
  return np.exp(np.interp(np.log(np.asarray(ranks, np.float64)), x, y))


def expected_fact_singleton_fraction(alpha: float, beta: float, n: int,
                                     attribute_probs) -> float:
  """E[facts seen once] / E[facts seen] after n sentences (beta > 0).

  Each sentence states one fact (entity k, attribute a), a ~ pi independent of k, so an
  entity seen j times has attribute counts Multinomial(j, pi): E[singletons | j] =
  sum_a j pi_a (1-pi_a)^(j-1), E[distinct | j] = sum_a 1 - (1-pi_a)^j. As n grows, block
  sizes follow the Sibuya law with pgf G(z) = 1 - (1-z)^alpha; the ratio of the two
  sums tends to sum_a G'(1-pi_a) pi_a / sum_a (1 - G(1-pi_a)) = alpha for every pi.
  """
  pi = np.asarray(attribute_probs, np.float64)[None, :]
  j = np.arange(1, n + 1, dtype=np.float64)[:, None]
  m = expected_blocks_of_size(alpha, beta, n, j[:, 0])
  singles = (j * pi * (1 - pi) ** (j - 1)).sum(-1)
  distinct = (1 - (1 - pi) ** j).sum(-1)
  return float(np.dot(m, singles) / np.dot(m, distinct))


def heaps_exponent(alpha: float) -> float:
  """Distinct entities grow as n**alpha (alpha > 0)."""
  return alpha


def zipf_rank_exponent(alpha: float) -> float:
  """Ranked entity frequencies fall as rank**(-1/alpha)."""
  return -1.0 / alpha if alpha > 0 else -math.inf


def data_scaling_exponent(alpha: float) -> float:
  """Knowledge part of the Bayes code per sentence decays to its limit as n**-(1-alpha)."""
  return 1.0 - alpha


def size_scaling_exponent(alpha: float) -> float:
  """A model holding m entities loses ~ m**(1-1/alpha): exponent 1/alpha - 1 in capacity."""
  return 1.0 / alpha - 1.0 if alpha > 0 else math.inf


def fact_missing_mass(alpha: float, beta: float, entity_counts, fact_counts,
                      attribute_probs) -> float:
  """The missing mass of facts given a stream's counts: the probability, under the
  Pitman-Yor generator with attribute probabilities pi, that the next sentence states a
  fact (entity, attribute) never stated so far (what Good-Turing's N1/n estimates):

    (beta + alpha K) / (n + beta) + sum_k (n_k - alpha) / (n + beta) sum_a pi_a [f_ka = 0],

  with n_k = entity_counts [E], f_ka = fact_counts [E, A], n = sum n_k, K = #{n_k > 0}.
  1 for an empty stream."""
  n_k = np.asarray(entity_counts, np.float64)
  f_ka = np.asarray(fact_counts)
  pi = np.asarray(attribute_probs, np.float64)
  n, seen = n_k.sum(), n_k > 0
  if n == 0:
    return 1.0
  new = (beta + alpha * seen.sum()) / (n + beta)
  unrevealed_k = ((f_ka[seen] == 0) * pi[None, :]).sum(-1)
  return float(new + np.sum((n_k[seen] - alpha) / (n + beta) * unrevealed_k))


def expected_fact_missing_mass(alpha: float, beta: float, n: int, attribute_probs) -> float:
  """E[fact_missing_mass] after n sentences (beta > 0): an entity seen j times misses
  attribute a with probability (1 - pi_a)^j, so
  E = (beta + alpha E[K_n]) / (n + beta)
      + sum_j E[M_{j,n}] (j - alpha) / (n + beta) sum_a pi_a (1 - pi_a)^j."""
  if n <= 0:
    return 1.0
  pi = np.asarray(attribute_probs, np.float64)[None, :]
  j = np.arange(1, n + 1, dtype=np.float64)
  m = expected_blocks_of_size(alpha, beta, n, j)
  missing_j = (pi * (1 - pi) ** j[:, None]).sum(-1)
  new = (beta + alpha * expected_num_entities(alpha, beta, n)) / (n + beta)
  return float(new + np.dot(m, (j - alpha) / (n + beta) * missing_j))
