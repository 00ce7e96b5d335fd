"""Power-law fits y = E + A x^(-a) with bootstrap confidence intervals, and log-log slopes.

Pure numpy/scipy. Used for scaling laws (loss vs tokens, final loss vs parameters)
and for the Heaps/Zipf slopes of the generator.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import optimize

NAN_CI = (math.nan, math.nan)


@dataclasses.dataclass(frozen=True)
class PowerLawFit:
  """y = E + A x^(-a); *_ci are (lo, hi) percentile intervals (NaN when not bootstrapped)."""
  E: float
  A: float
  a: float
  E_ci: tuple[float, float] = NAN_CI
  A_ci: tuple[float, float] = NAN_CI
  a_ci: tuple[float, float] = NAN_CI

  def predict(self, x) -> np.ndarray:
    return self.E + self.A * np.asarray(x, float) ** (-self.a)

  def to_json(self) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v)
            for k, v in dataclasses.asdict(self).items()}


def loglog_slope(x, y, *, x_min: float | None = None) -> float:
  """Least-squares slope of log y against log x over x >= x_min (positive y only)."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  keep = (x > 0) & (y > 0) & (x >= (x_min if x_min is not None else -np.inf))
  if keep.sum() < 2:
    return math.nan
  return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])


def fit_power_law(x, y, *, with_offset: bool = True, E_max: float | None = None,
                  start: PowerLawFit | None = None) -> PowerLawFit:
  """Least squares on log y of E + A x^-a (0 <= E <= E_max, A > 0, a > 0): relative errors
  weigh equally across decades. E_max defaults to min(y). Started from `start` when given
  (a bootstrap refit starts at the point fit), else from the log-log slope of
  y - 0.9 E_max."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  if np.any(x <= 0) or np.any(y <= 0):
    raise ValueError("fit_power_law needs x > 0 and y > 0")
  e_max = float(y.min() if E_max is None else E_max) if with_offset else 0.0
  if start is None:
    e0 = 0.9 * e_max
    slope = loglog_slope(x, y - e0)
    a0 = min(max(-slope if np.isfinite(slope) else 0.5, 1e-3), 5.0)
    A0 = max(float(np.exp(np.mean(np.log(np.maximum(y - e0, 1e-12)) + a0 * np.log(x)))), 1e-12)
  else:
    e0, A0, a0 = start.E, max(start.A, 1e-12), start.a
  logx, logy = np.log(x), np.log(y)

  def residual(p):
    E, logA, a = (p[0], p[1], p[2]) if with_offset else (0.0, p[0], p[1])
    return np.log(E + np.exp(logA - a * logx)) - logy

  if with_offset:
    p0, lo, hi = [e0, math.log(A0), a0], [0.0, -50, 1e-6], [e_max, 50, 10]
  else:
    p0, lo, hi = [math.log(A0), a0], [-50, 1e-6], [50, 10]
  p0 = np.clip(p0, np.array(lo) + 1e-9, np.array(hi) - 1e-9)
  sol = optimize.least_squares(residual, p0, bounds=(lo, hi), method="trf", x_scale="jac")
  if with_offset:
    return PowerLawFit(float(sol.x[0]), float(math.exp(sol.x[1])), float(sol.x[2]))
  return PowerLawFit(0.0, float(math.exp(sol.x[0])), float(sol.x[1]))


def bootstrap_power_law(x, y, *, num_boot: int = 200, seed: int = 0, level: float = 0.95,
                        with_offset: bool = True) -> PowerLawFit:
  """Point fit plus percentile intervals from a residual bootstrap.

  Residuals of log y are resampled (not points): scaling-law curves have few,
  non-exchangeable x values, and resampling points would drop whole decades.
  Every refit solves the point fit's problem on the resampled y: the same bounds (the
  offset below min of the OBSERVED y; a resample's own minimum falls lower, and bounding
  by it pushed every refit's offset, and with it the exponent, below the point fit: points
  fell outside their own intervals, e.g. a data exponent 1.74 [1.51, 1.57]), started from
  the point fit (not from a fresh guess that may stall elsewhere). A point on a bound of
  the parameter space (the offset at min y, the exponent at its floor) stays inside too:
  the draws pile up at that bound and their percentile may stop just short of it, so each
  interval is widened to reach its point estimate where it does not.
  """
  x, y = np.asarray(x, float), np.asarray(y, float)
  fit = fit_power_law(x, y, with_offset=with_offset)
  resid = np.log(y) - np.log(fit.predict(x))
  rng = np.random.default_rng(seed)
  draws = []
  for _ in range(num_boot):
    y_b = fit.predict(x) * np.exp(rng.choice(resid, size=len(resid), replace=True))
    f = fit_power_law(x, y_b, with_offset=with_offset, E_max=y.min(), start=fit)
    draws.append((f.E, f.A, f.a))
  draws = np.array(draws)
  q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
  ci = []
  for i, point in enumerate((fit.E, fit.A, fit.a)):
    lo, hi = np.percentile(draws[:, i], q)
    ci.append((float(min(lo, point)), float(max(hi, point))))
  return dataclasses.replace(fit, E_ci=ci[0], A_ci=ci[1], a_ci=ci[2])
