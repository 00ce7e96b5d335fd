"""The verdict rule of the claims, the claim row, and the 95% intervals they share.

`verdict(predicted, ci, kind)`, with the constants below:
- regime wrong (`ok_regime` False: too few points, run too short, wrong kind of run...),
  or no finite interval -> `inconclusive`, with the reason.
- kind "point" (the prediction is a number p): the interval [lo, hi] is too wide to mean
  anything when hi - lo > max(MAX_REL_WIDTH |p|, MIN_ABS_WIDTH) -> `inconclusive`;
  otherwise `consistent` if lo <= p <= hi, else `inconsistent`.
- kind "above" (the claim: quantity > threshold p): lo > p -> `consistent`; hi < p ->
  `inconsistent`; else `inconclusive` (the interval straddles the threshold).
- kind "below": the mirror of "above".
- kind "at_least" (a lower bound p on the quantity, which may sit at or above it):
  hi >= p -> `consistent`; hi < p -> `inconsistent` (even the top of the interval is below).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

# The verdict rule.
MAX_REL_WIDTH = 1.0     # a point interval wider than this times |prediction| ...
MIN_ABS_WIDTH = 0.1     # ... and wider than this (absolute) is too wide to judge
Z95 = 1.959963984540054  # two-sided 95% normal quantile
LEVEL = 0.95

# Shared by the claims' bootstraps (fixed before looking at any run).
NUM_BOOT = 2000         # draws of the cheap (binomial / step) bootstraps
SEED = 0


def is_finite(x) -> bool:
  """A finite int or float (not None, NaN or inf)."""
  return x is not None and isinstance(x, (int, float, np.floating, np.integer)) and math.isfinite(x)


def fmt(x) -> str:
  """x to 4 significant digits, or 'n/a'."""
  return f"{x:.4g}" if is_finite(x) else "n/a"


def verdict(predicted, ci, kind: str = "point", max_rel_width: float = MAX_REL_WIDTH,
            min_abs_width: float = MIN_ABS_WIDTH, ok_regime: bool = True,
            regime_reason: str = "") -> tuple[str, str]:
  """(verdict, reason) of a 95% interval `ci` = (lo, hi) against a prediction (see the module
  docstring). `predicted` is the number (kind "point") or the threshold (other kinds)."""
  if not ok_regime:
    return "inconclusive", regime_reason or "regime wrong"
  if ci is None or len(ci) != 2 or not (is_finite(ci[0]) and is_finite(ci[1])):
    return "inconclusive", ("no finite 95% interval"
                            + (f": {regime_reason}" if regime_reason else ""))
  if not is_finite(predicted):
    return "inconclusive", "no finite prediction"
  lo, hi = float(min(ci)), float(max(ci))
  p = float(predicted)
  span = f"[{fmt(lo)}, {fmt(hi)}]"
  if kind == "point":
    allowed = max(max_rel_width * abs(p), min_abs_width)
    if hi - lo > allowed:
      return "inconclusive", (f"interval too wide: {span} has width {fmt(hi - lo)} > max("
                              f"{max_rel_width:g} x |{fmt(p)}|, {min_abs_width:g}) = "
                              f"{fmt(allowed)}")
    if lo <= p <= hi:
      return "consistent", f"interval {span} covers the prediction {fmt(p)}"
    return "inconsistent", f"interval {span} excludes the prediction {fmt(p)}"
  if kind in ("above", "below"):
    above, below = lo > p, hi < p
    if (above and kind == "above") or (below and kind == "below"):
      return "consistent", f"interval {span} lies {kind} {fmt(p)}"
    if above or below:
      return "inconsistent", f"interval {span} lies {'above' if above else 'below'} {fmt(p)}"
    return "inconclusive", f"interval straddles threshold {fmt(p)}: {span}"
  if kind == "at_least":
    if hi >= p:
      return "consistent", f"upper end {fmt(hi)} of {span} reaches the lower bound {fmt(p)}"
    return "inconsistent", f"even the upper end of {span} is below the lower bound {fmt(p)}"
  raise ValueError(f"verdict: unknown kind {kind!r}")


def claim_row(cid: str, claim: str, quantity: str, predicted, measured, ci, kind: str, *,
              formula: str | None = None, model: str | None = None, ok: bool = True,
              why_not: str = "", note: str = "") -> dict:
  """One row: the verdict of `ci` against `predicted`, and `note` (range, steps) appended."""
  v, reason = verdict(predicted, ci, kind, ok_regime=ok, regime_reason=why_not)
  clean = lambda x: float(x) if is_finite(x) else None
  row = {"id": cid, "claim": claim, "quantity": quantity, "kind": kind,
         "predicted": clean(predicted), "measured": clean(measured),
         "ci": ([clean(ci[0]), clean(ci[1])] if ci is not None and len(ci) == 2 else None),
         "verdict": v, "reason": reason + (f"; {note}" if note else "")}
  if formula is not None:
    row["formula"] = formula
  if model is not None:
    row["model"] = model
  return row


def percentile_ci(draws) -> tuple[float, float]:
  """The central 95% of the finite bootstrap draws (NaN, NaN with fewer than 2)."""
  d = np.asarray(draws, float)
  d = d[np.isfinite(d)]
  if len(d) < 2:
    return (math.nan, math.nan)
  q = [(1 - LEVEL) / 2 * 100, (1 + LEVEL) / 2 * 100]
  lo, hi = np.percentile(d, q)
  return float(lo), float(hi)


def wilson_interval(k: int, n: int) -> tuple[float, float]:
  """95% Wilson score interval of a binomial proportion k/n."""
  if n <= 0:
    return (math.nan, math.nan)
  p, z2 = k / n, Z95 ** 2
  centre = (p + z2 / (2 * n)) / (1 + z2 / n)
  half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
  return (0.0 if k <= 0 else max(0.0, centre - half), 1.0 if k >= n else min(1.0, centre + half))


def spearman(x, y_BxK) -> np.ndarray:
  """Spearman rank correlation of x [K] with each row of y [B, K] (average ranks for ties;
  0 where a row or x is constant: no association)."""
  rx = sps.rankdata(np.asarray(x, float))
  ry = sps.rankdata(np.atleast_2d(np.asarray(y_BxK, float)), axis=-1)
  rx = rx - rx.mean()
  ry = ry - ry.mean(-1, keepdims=True)
  den = np.sqrt((rx ** 2).sum() * (ry ** 2).sum(-1))
  return np.where(den > 0, ry @ rx / np.where(den > 0, den, 1.0), 0.0)


def model_name(key) -> str:
  """(width, seed) -> "width/seed", the `model` of a claim row."""
  return f"{key[0]}/{key[1]}"


def as_float(x) -> float:
  """None -> NaN."""
  return math.nan if x is None else float(x)

