"""Power-law fits with bootstrap intervals; structure-function hulls and the oracle."""

import math

import numpy as np
import pytest

from kcompress.analysis import fits, ksf


def _synthetic(rng, E=1.5, A=3.0, a=0.5, sigma=0.01, n=25):
  x = np.geomspace(1e1, 1e4, n)
  return x, (E + A * x ** (-a)) * np.exp(sigma * rng.standard_normal(n))


def test_fit_recovers_known_law():
  """1% multiplicative noise on 25 points spanning 3 decades: the estimates move by about
  sigma / sqrt(n) relative, so 5% (exponent, amplitude) and 1% (offset) are loose bounds."""
  x, y = _synthetic(np.random.default_rng(0))
  f = fits.fit_power_law(x, y)
  assert abs(f.a - 0.5) < 0.05 and abs(f.A - 3.0) / 3.0 < 0.15 and abs(f.E - 1.5) < 0.015
  g = fits.fit_power_law(x, 3.0 * x ** -0.7, with_offset=False)
  assert abs(g.a - 0.7) < 1e-6 and abs(g.A - 3.0) < 1e-5 and g.E == 0.0
  assert abs(fits.loglog_slope(x, 2 * x ** 0.3) - 0.3) < 1e-9


def test_bootstrap_intervals_cover_at_nominal_rate():
  """40 synthetic datasets, 90% intervals for the exponent. Coverage is Binomial(40, 0.9):
  sd = sqrt(40 * 0.9 * 0.1) = 1.9 datasets, so >= 30 covered is the mean minus 3 sd."""
  rng = np.random.default_rng(1)
  covered = 0
  for rep in range(40):
    x, y = _synthetic(rng, sigma=0.01, n=20)
    f = fits.bootstrap_power_law(x, y, num_boot=60, seed=rep, level=0.9)
    covered += f.a_ci[0] <= 0.5 <= f.a_ci[1]
    assert f.a_ci[0] < f.a_ci[1]
  assert covered >= 30


def test_lower_envelope_and_convex_hull():
  rng = np.random.default_rng(2)
  c, d = rng.uniform(0, 100, 200), rng.uniform(0, 100, 200)
  ec, eh = ksf.lower_envelope(c, d)
  assert np.all(np.diff(ec) >= 0) and np.all(np.diff(eh) < 0)
  for ci, di in zip(c, d):       # every point lies on or above the step function
    assert di >= eh[np.searchsorted(ec, ci, side="right") - 1] - 1e-12
  hc, hh = ksf.lower_convex_hull(c, d)
  assert np.all(np.diff(hh) <= 0)
  assert hh[-1] == d.min() and hc[0] == ec[0]
  # Convex: slopes increase; every point lies on or above the hull where the hull is defined.
  slopes = np.diff(hh) / np.diff(hc)
  assert np.all(np.diff(slopes) >= -1e-9)
  for ci, di in zip(c, d):
    if hc[0] <= ci <= hc[-1]:
      assert di >= np.interp(ci, hc, hh) - 1e-9
  assert ksf.best_two_part([1, 5, 10], [20, 10, 9]) == 1


def test_oracle_structure_function_by_hand():
  """Counts (3, 1), N = 4; stored bits (10, 12); full price (30, 11); syntax 5 + 7 bits.
  m=0: data = 7 + escape 4 log2(4/4)=0 + 30 + 11 = 48, complexity 5.
  m=1: data = 7 + 3 log2(4/3) + 1 log2(4/1) + 11 = 20 + 3 log2(4/3), complexity 15.
  m=2: data = 7 + 3 log2(4/3) + 1 log2 4 = 9 + 3 log2(4/3), complexity 27."""
  c, d = ksf.oracle_structure_function([1, 3], [12, 10], [11, 30], 5.0, 7.0)
  np.testing.assert_allclose(c, [5, 15, 27])
  np.testing.assert_allclose(d, [48, 20 + 3 * math.log2(4 / 3), 9 + 3 * math.log2(4 / 3)])


def test_oracle_monotone_on_zipf_counts():
  rng = np.random.default_rng(3)
  counts = np.maximum(1, (1000 * np.arange(1, 300) ** -1.8).astype(int))
  name_bits = 14.0
  c, d = ksf.oracle_structure_function(counts, name_bits + 6 * 4 * np.ones_like(counts, float),
                                       counts * (name_bits + 6.0), 40.0, 5000.0)
  assert np.all(np.diff(c) > 0) and np.all(np.diff(d) < 0)
  del rng


def test_oracle_of_a_tiny_stream_by_hand():
  """At m = 0 the oracle pays name + value at full price for every occurrence (escape costs
  N log2(N/N) = 0); at m = K it codes each occurrence by frequency, n_k log2(N/n_k)."""
  from configs.sweep import get_config
  from kcompress import data
  from kcompress.analysis import oracle
  spec = data.data_spec(get_config("tiny").data)
  stream = data.generate_stream(spec, seed=0, num_sentences=300)
  o = oracle.oracle_ksf_of_stream(spec, stream, 300)
  s = stream.sentences
  syntax = float(np.sum(stream.bits.syntax_N))
  name_bits = math.log2(spec.name_space)
  value_bits = math.log2(spec.values_per_attribute)        # uniform H_a
  assert o["data_bits"][0] == pytest.approx(syntax + 300 * (name_bits + value_bits))
  counts = np.bincount(s.entity_N)
  counts = counts[counts > 0]
  assert o["m"][-1] == len(counts)
  assert o["data_bits"][-1] == pytest.approx(syntax + np.sum(counts * np.log2(300 / counts)))
  stored = len(counts) * name_bits + int(np.sum(s.first_reveal_N)) * value_bits
  assert o["complexity_bits"][-1] - o["complexity_bits"][0] == pytest.approx(stored)
  assert np.all(np.diff(o["data_bits"]) < 0)
