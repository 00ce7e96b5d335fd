"""Estimators of data-law exponents, one set for every curve the claims fit: the Bayes code's
knowledge bits (replicate streams), reference learners and trained models (one run's
per-step series), and runs merged across seeds.

A curve y(x) ~ A x^-a is summarised by its mean in log-spaced bins of x (BINS_PER_DECADE per
decade) and fitted with the floor fixed at 0 (`floor0_fit`: least squares of log y on
log x), the fit the theory states (an excess over the Bayes code tends to 0). Beside it:
the free floor E + A x^-a (`fits.fit_power_law`, a check: it trades E against a), the
cumulative excess (`cumulative_fit`, far less noisy), and local exponents in quarter-decade
windows (`local_exponents`). Intervals:
- independent replicates (streams, runs): a bootstrap over replicates (`replicate_exponent`),
  or Student's t over the runs' own exponents when there are few (`over_runs`);
- one run: a moving-block bootstrap of the log-residuals over neighbouring bins
  (`block_bootstrap`): bins of one run share the same rare entities, so their errors are
  correlated, and resampling bins (or steps) as independent gives intervals far too narrow.
Pure numpy; x in tokens or sentences, y in bits.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from kcompress.analysis import fits

BINS_PER_DECADE = 20
WINDOW_DECADES = 0.25      # local exponents: least-squares slope over a quarter decade
ONSET_SKIP_DECADES = 0.25  # fitted range starts a quarter decade after the local slope's peak
ONSET_MIN_RISE = 0.2       # ... when the peak stands this far above the later local slopes
BLOCK_DECADES = 0.25       # block length of the within-run bootstrap
NUM_BOOT = 1000
SEED = 0
LEVEL = 0.95


def log_edges(lo: float, hi: float, per_decade: int = BINS_PER_DECADE) -> np.ndarray:
  """Geometric bin edges from lo to hi (both > 0), `per_decade` bins per decade (>= 1 bin)."""
  nb = max(1, int(math.ceil(math.log10(hi / lo) * per_decade)))
  return np.geomspace(lo, hi, nb + 1)


def _quantiles(draws) -> tuple[float, float]:
  d = np.asarray(draws, float)
  d = d[np.isfinite(d)]
  if len(d) < 2:
    return (math.nan, math.nan)
  lo, hi = np.percentile(d, [(1 - LEVEL) / 2 * 100, (1 + LEVEL) / 2 * 100])
  return float(lo), float(hi)


def floor0_fit(x, y) -> dict:
  """y = A x^-a fitted by least squares of log y on log x over the bins with y > 0:
  {a, A, bins, dropped} (a NaN with fewer than 3 positive bins)."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  keep = np.isfinite(y) & (y > 0) & (x > 0)
  if keep.sum() < 3:
    return {"a": math.nan, "A": math.nan, "bins": int(keep.sum()), "dropped": int((~keep).sum())}
  slope, icpt = np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)
  return {"a": float(-slope), "A": float(math.exp(icpt)), "bins": int(keep.sum()),
          "dropped": int((~keep).sum())}


def free_floor_fit(x, y) -> dict:
  """E + A x^-a with E >= 0 free (fits.fit_power_law) over the bins with y > 0: {a, E, A}."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  keep = np.isfinite(y) & (y > 0)
  if keep.sum() < 4:
    return {"a": math.nan, "E": math.nan, "A": math.nan}
  try:
    f = fits.fit_power_law(x[keep], y[keep])
  except (ValueError, RuntimeError):
    return {"a": math.nan, "E": math.nan, "A": math.nan}
  return {"a": f.a, "E": f.E, "A": f.A}


def cumulative_fit(x_end, y, w, x_start: float) -> dict:
  """Exponent a of the cumulative excess D = sum of y * w over the bins up to each bin's end
  x_end (y: mean excess per token in the bin, w: the bin's tokens; the sum starts at
  x_start), fitted as D(x) = B (x^(1-a) - x_start^(1-a)) / (1 - a), the integral of
  B t^-a (Hutter 2021: a cumulative loss averages the noise of neighbouring steps). Least
  squares on log D over a grid of a (0.01 .. 3)."""
  x, y, w = (np.asarray(v, float) for v in (x_end, y, w))
  d = np.cumsum(y * w)
  keep = (d > 0) & (x > x_start)
  if keep.sum() < 3:
    return {"a": math.nan}
  logd, best = np.log(d[keep]), (math.inf, math.nan)
  for a in np.linspace(0.01, 3.0, 600):
    g = ((x[keep] ** (1 - a) - x_start ** (1 - a)) / (1 - a) if abs(1 - a) > 1e-9
         else np.log(x[keep] / x_start))
    logb = np.mean(logd - np.log(g))
    ssr = float(np.sum((logd - logb - np.log(g)) ** 2))
    if ssr < best[0]:
      best = (ssr, float(a))
  return {"a": best[1]}


def local_exponents(x, y, window: float = WINDOW_DECADES) -> dict:
  """-d log y / d log x in windows of `window` decades, one per bin whose window fits in the
  range: {x (window centres, geometric), a, end (the last window's exponent)}."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  lx = np.log10(x)
  cx, ca = [], []
  for i in range(len(x)):
    sel = (lx >= lx[i]) & (lx <= lx[i] + window + 1e-9) & np.isfinite(y) & (y > 0)
    if lx[-1] < lx[i] + window - 1e-9 or sel.sum() < 3:
      continue
    cx.append(float(10 ** (lx[sel].mean())))
    ca.append(float(-np.polyfit(np.log(x[sel]), np.log(y[sel]), 1)[0]))
  return {"x": cx, "a": ca, "end": ca[-1] if ca else math.nan}


def local_noise(x, y, window: float = WINDOW_DECADES) -> float:
  """Standard deviation of one local exponent due to bin-to-bin noise: the scatter of
  log y about its mean trend (from successive differences) propagated through a
  least-squares slope over a window of `window` decades."""
  lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
  ok = np.isfinite(ly)
  lx, ly = lx[ok], ly[ok]
  if len(lx) < 4:
    return 0.0
  d = np.diff(ly) - np.diff(lx) * np.polyfit(lx, ly, 1)[0]
  sigma = float(np.std(d, ddof=1) / math.sqrt(2))
  h = float(np.median(np.diff(lx)))
  k = max(int(round(window * math.log(10) / h)) + 1, 3)
  return sigma / h * math.sqrt(12.0 / (k * (k * k - 1)))


def onset_end(x, y, start: int = 0) -> int:
  """Index of the first bin of the fitted range. The onset transient (the slope rising past
  the law just after syntax is learned, then falling back) is recognised when the local
  exponent's peak (over windows from bin `start`) stands above the median of the windows
  after it by ONSET_MIN_RISE and by 4 times a local exponent's noise (`local_noise`): the range then starts ONSET_SKIP_DECADES after the peak. Without
  such a peak (a pure power law, or a slope still rising at the end) it starts at `start`."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  loc = local_exponents(x[start:], y[start:])
  if not loc["a"]:
    return start
  a = np.asarray(loc["a"])
  p = int(np.argmax(a))
  if p + 1 >= len(a) or a[p] - np.median(a[p + 1:]) < max(ONSET_MIN_RISE,
                                                         4 * local_noise(x[start:], y[start:])):
    return start
  first = np.flatnonzero(x >= loc["x"][p] * 10 ** ONSET_SKIP_DECADES)
  return int(first[0]) if len(first) else len(x)


def block_bootstrap(x, ys, fit=floor0_fit, num_boot: int | None = None, seed: int = SEED,
                    block_decades: float = BLOCK_DECADES, counts=None) -> list[dict]:
  """For each binned curve of `ys` (over the same bins x), the point exponent of `fit` and a
  95% interval a +- t sd, sd over a moving-block bootstrap of its log-residuals (blocks of
  `block_decades` of consecutive bins, wrapped around; t: Student's quantile with one
  degree of freedom fewer than the number of blocks, the independent pieces the spread
  rests on), the SAME blocks for every curve, so
  that differences of paired curves (a model and a reference learner on the same tokens)
  keep their correlation: [{a, ci, draws}]. Only bins where every curve is > 0 are used.
  `counts` [B] (steps averaged in each bin): residuals are resampled standardised by
  sqrt(count), so a bin of few steps keeps its larger scatter wherever a block lands (early
  log-bins hold few steps)."""
  x = np.asarray(x, float)
  ys = [np.asarray(y, float) for y in ys]
  keep = np.all([np.isfinite(y) & (y > 0) for y in ys], axis=0) & (x > 0)
  scale = np.sqrt(np.asarray(counts, float) if counts is not None else np.ones(len(x)))[keep]
  x, ys = x[keep], [y[keep] for y in ys]
  points = [fit(x, y) for y in ys]
  n = len(x)
  if n < 4 or not all(np.isfinite(p["a"]) for p in points):
    return [{"a": p["a"], "ci": (math.nan, math.nan), "draws": [], "blocks": 0} for p in points]
  lines = [p.get("E", 0.0) + p["A"] * x ** -p["a"] for p in points]
  resids = [(np.log(y) - np.log(np.maximum(line, 1e-300))) * scale
            for y, line in zip(ys, lines)]
  block = max(2, int(round(block_decades * BINS_PER_DECADE)))
  rng = np.random.default_rng(seed)
  draws = [[] for _ in ys]
  for _ in range(NUM_BOOT if num_boot is None else num_boot):
    starts = rng.integers(0, n, size=-(-n // block))
    idx = (starts[:, None] + np.arange(block)[None, :]).reshape(-1)[:n] % n
    for k, (line, resid) in enumerate(zip(lines, resids)):
      draws[k].append(fit(x, line * np.exp(resid[idx] / scale))["a"])
  t = sps.t.ppf((1 + LEVEL) / 2, max(-(-n // block) - 1, 1))
  out = []
  for p, d in zip(points, draws):
    sd = float(np.nanstd(d, ddof=1))
    out.append({"a": p["a"], "ci": (p["a"] - t * sd, p["a"] + t * sd), "draws": d,
                "blocks": -(-n // block)})
  return out


def difference_ci(first: dict, second: dict, blocks: int) -> tuple[float, float]:
  """95% interval of first - second from paired draws of `block_bootstrap` (the same
  t quantile, `blocks` the number of blocks)."""
  a, b = np.asarray(first["draws"], float), np.asarray(second["draws"], float)
  if not (len(a) == len(b) and len(a)):
    return (math.nan, math.nan)
  d = first["a"] - second["a"]
  half = sps.t.ppf((1 + LEVEL) / 2, max(blocks - 1, 1)) * float(np.nanstd(a - b, ddof=1))
  return (d - half, d + half)


def replicate_exponent(x, y_RxB, num_boot: int = 2000, seed: int = SEED) -> dict:
  """Floor-0 exponent of the replicate-mean curve, 95% interval from a bootstrap over the
  R independent replicates: {a, ci, per_replicate_sd, bins, dropped, draws}."""
  y = np.asarray(y_RxB, float)
  point = floor0_fit(x, y.mean(0))
  rng = np.random.default_rng(seed)
  r = y.shape[0]
  draws = [floor0_fit(x, y[rng.integers(0, r, r)].mean(0))["a"] for _ in range(num_boot)]
  each = [floor0_fit(x, row)["a"] for row in y]
  return {"a": point["a"], "ci": _quantiles(draws), "bins": point["bins"],
          "dropped": point["dropped"],
          "per_replicate_sd": float(np.nanstd(each, ddof=1)) if r >= 2 else math.nan,
          "draws": draws}


def over_runs(exponents_per_run) -> dict:
  """Mean of independent runs' exponents with Student's t 95% interval (n - 1 dof):
  {a, ci, runs}; with one run {a, ci: NaN, runs: 1}. A percentile bootstrap over 3-5 runs
  under-covers (its variance is (n-1)/n of the mean's, from at most n^n resamples)."""
  a = np.asarray([v for v in exponents_per_run if v is not None and np.isfinite(v)], float)
  if len(a) < 2:
    return {"a": float(a[0]) if len(a) else math.nan, "ci": (math.nan, math.nan), "runs": len(a)}
  half = sps.t.ppf((1 + LEVEL) / 2, len(a) - 1) * a.std(ddof=1) / math.sqrt(len(a))
  return {"a": float(a.mean()), "ci": (float(a.mean() - half), float(a.mean() + half)),
          "runs": len(a)}
