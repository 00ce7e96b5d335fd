"""Two-part codes and the Kolmogorov structure function (SPEC section 5), in bits.

h_x(c) = min over models of complexity <= c of the data code. From a cloud of
(complexity, data bits) points the empirical structure function is the lower
envelope (a non-increasing step function); the oracle structure function comes
from ground truth: a model that knows the syntax and the m most frequent entities.
"""

from __future__ import annotations

import numpy as np


def lower_envelope(complexity_bits, data_bits) -> tuple[np.ndarray, np.ndarray]:
  """The points where min{data : complexity <= c} drops, sorted by complexity.

  Returns (c, h): non-decreasing c, strictly decreasing h; every input point lies on
  or above the step function h(c).
  """
  c, d = np.asarray(complexity_bits, float), np.asarray(data_bits, float)
  order = np.lexsort((d, c))
  c, d = c[order], d[order]
  running = np.minimum.accumulate(d)
  keep = np.concatenate([[True], running[1:] < running[:-1]])
  return c[keep], running[keep]


def lower_convex_hull(complexity_bits, data_bits) -> tuple[np.ndarray, np.ndarray]:
  """Vertices of the lower convex hull of the points, up to its minimum data code.

  Non-increasing in data bits; its tangent of slope -1 touches the best two-part code.
  """
  c, h = lower_envelope(complexity_bits, data_bits)
  hull: list[tuple[float, float]] = []
  for p in zip(c, h):
    while len(hull) >= 2:
      (x1, y1), (x2, y2) = hull[-2], hull[-1]
      if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) <= 0:
        hull.pop()
      else:
        break
    hull.append(p)
  arr = np.array(hull, float)
  return arr[:, 0], arr[:, 1]


def best_two_part(complexity_bits, data_bits) -> int:
  """Index of the point with the smallest total complexity + data bits."""
  return int(np.argmin(np.asarray(complexity_bits, float) + np.asarray(data_bits, float)))


def oracle_structure_function(entity_counts, stored_entity_bits, unstored_entity_bits,
                              syntax_model_bits: float, syntax_data_bits: float):
  """(complexity_bits[m], data_bits[m]) for m = 0..K stored entities, most frequent first.

  Entities sorted by decreasing count n_k, N = sum n_k. Storing the top m costs
  syntax_model_bits + sum of their stored_entity_bits (name and facts). The data code:
    syntax_data_bits
    + sum over stored k of n_k log2(N / n_k)          (each occurrence coded by frequency)
    + U log2(N / U)                                    (the escape, U = unstored occurrences)
    + sum over unstored k of unstored_entity_bits[k]   (name and value at full price, every time)
  Vectorised with cumulative sums; O(K log K).
  """
  n = np.asarray(entity_counts, float)
  order = np.argsort(-n, kind="stable")
  n = n[order]
  stored = np.asarray(stored_entity_bits, float)[order]
  unstored = np.asarray(unstored_entity_bits, float)[order]
  total = n.sum()
  zero = np.zeros(1)
  complexity = syntax_model_bits + np.concatenate([zero, np.cumsum(stored)])
  freq = np.concatenate([zero, np.cumsum(n * np.log2(total / n))])
  u = total - np.concatenate([zero, np.cumsum(n)])
  u = np.where(u < 0.5, 0.0, u)
  escape = np.where(u > 0, u * np.log2(total / np.maximum(u, 1e-300)), 0.0)
  remaining = unstored.sum() - np.concatenate([zero, np.cumsum(unstored)])
  data = syntax_data_bits + freq + escape + np.maximum(remaining, 0.0)
  return complexity, data
