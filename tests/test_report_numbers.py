"""Numbers a run reports: fit intervals that hold their point estimates, headline numbers
at their precision, a progress ETA without the compilation."""

import numpy as np

from kcompress import loop
from kcompress.analysis import fits, readings
from kcompress.analysis.summary import smooth


def _loss_curve(seed: int):
  """A smoothed loss-vs-tokens curve as summary.py fits it (the run's first 10% dropped,
  a 25-step window): 2.31 + 43.6 x^-0.527 bits plus N(0, 0.062) noise per step, flat
  at its end (the offset E sits at min y). The curve of seed 12 gave, before the fix,
  a = 0.821 [0.618, 0.816]: the point outside its own interval."""
  rng = np.random.default_rng(seed)
  x = 4096.0 * np.arange(41, 401)
  y = 2.31 + 43.57 * x ** -0.527 + rng.normal(0, 0.0624, 400)[40:]
  return x, smooth(y, 25)


def test_point_estimate_inside_its_bootstrap_interval():
  """Why points fell outside: each refit bounded its offset by the RESAMPLED curve's
  minimum, which lies below the observed one, so with E at its bound every refit had a
  lower E and a lower exponent. Refits now share the point fit's bounds (and start). The
  exponent lies strictly inside: the interval is not merely widened to reach it."""
  x, y = _loss_curve(12)
  fit = fits.bootstrap_power_law(x, y, num_boot=100, seed=0)
  assert fit.E == y.min() or abs(fit.E - y.min()) < 1e-6 * y.min()   # the bound case
  assert fit.a_ci[0] < fit.a < fit.a_ci[1], (fit.a, fit.a_ci)
  assert fit.E_ci[0] <= fit.E <= fit.E_ci[1]
  for seed in range(4):   # other curves of the same law, flat or not at their end
    f = fits.bootstrap_power_law(*_loss_curve(seed), num_boot=50, seed=0)
    for value, (lo, hi) in ((f.E, f.E_ci), (f.A, f.A_ci), (f.a, f.a_ci)):
      assert lo <= value <= hi


def test_refits_keep_the_point_fits_offset_bound():
  x, y = _loss_curve(12)
  lower = y * 0.97   # a resample whose minimum lies below the observed one
  f = fits.fit_power_law(x, lower, E_max=y.min())
  assert f.E <= y.min() + 1e-12
  assert fits.fit_power_law(x, lower).E <= lower.min() + 1e-12


def test_headline_numbers_are_rounded_to_their_precision():
  assert readings.rounded(256.0) == "256"             # an occurrence count
  assert readings.rounded(31 / 128) == "0.24"         # a rate over 128 probes
  assert readings.rounded(None) == "None"
  assert readings.rounded(1234.0) == "1,234"


def test_eta_leaves_the_compilation_out():
  """Step 1 takes 100 s (compilation), later steps 1 s: the first progress line (step 10)
  reports 1 step/s, so a 1000-step run's ETA is 990 s, not ~1080 s."""
  pace = loop.Pace()
  assert pace.lap(1, 100.0) is None        # before the clock starts
  pace.start(1, 100.0)
  assert pace.lap(1, 100.0) is None        # a progress line at step 1: no rate yet
  rate = pace.lap(10, 109.0)
  assert rate == 1.0 and (1000 - 10) / rate == 990
  assert pace.lap(20, 114.0) == 2.0        # later lines: since the previous line
