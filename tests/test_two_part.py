"""Two-part codes with quantised parameters are real code lengths (kcompress.two_part)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs.sweep import get_config
from kcompress import model as model_lib, pretrain, setup as setup_lib, step as step_lib, two_part
from kcompress.data import roles
from kcompress.data.spec import BOS


def test_integer_code_is_within_the_multinomial_bounds():
  rng = np.random.default_rng(0)
  for k in (2, 7, 40):
    values = rng.integers(-k, k, size=5000)
    _, counts = np.unique(values, return_counts=True)
    n = values.size
    h = -(counts / n * np.log2(counts / n)).sum()
    header = two_part.integer_code_bits(values) - math.ceil(
        (math.lgamma(n + 1) - sum(math.lgamma(c + 1) for c in counts)) / math.log(2))
    body = two_part.integer_code_bits(values) - header
    # log2 multinomial lies in [N H - (K-1) log2(N+1), N H] (type-counting bounds), +1 for rounding.
    assert n * h - (len(counts) - 1) * math.log2(n + 1) <= body <= n * h + 1
    # The header: at most a few Elias-gamma codes per distinct value.
    assert 0 < header <= len(counts) * (2 * (2 * math.log2(n) + 1)) + 4 * math.log2(4 * k) + 2
  # A constant sequence costs its header only: K=1 (1 bit), the value 5 (zigzag 10 -> gamma(11)
  # = 7 bits), its count 1000 (gamma: 19 bits); the body log2(N!/N!) = 0.
  assert two_part.integer_code_bits(np.full(1000, 5)) == 1 + 7 + 19


def test_elias_gamma_lengths():
  np.testing.assert_array_equal(two_part.elias_gamma_bits([1, 2, 3, 4, 7, 8]), [1, 3, 3, 5, 5, 7])
  with pytest.raises(ValueError):
    two_part.elias_gamma_bits([0])


def _tiny_setup():
  cfg = get_config("tiny")
  return cfg, setup_lib.make_setup(cfg)


def test_quantisation_is_exact_on_the_grid_and_zero_on_padding():
  _, setup = _tiny_setup()
  cfg, _ = setup.layout.buckets[-1]
  width = 16          # padded inside a width-32 bucket shape
  cfg = model_lib.ModelConfig(cfg.vocab_size, cfg.context_length, 32, cfg.depth, cfg.head_dim,
                              cfg.mlp_ratio)
  params = jax.device_get(model_lib.init_params(jax.random.PRNGKey(3), cfg, width))
  mask = jax.device_get(model_lib.param_mask(cfg, width))
  for precision in (-2, 0, 4):
    ints, steps = two_part.quantise(params, mask, precision)
    deq = two_part.dequantise(ints, steps)
    for p, q, s, m in zip(*(jax.tree.leaves(t) for t in (params, deq, steps, mask))):
      m = np.asarray(m) > 0
      assert np.all(np.abs(p[m] - q[m]) <= s / 2 * (1 + 1e-6))
      assert np.all(q[~m] == 0)
    again, _ = two_part.quantise(deq, mask, precision)
    # Re-quantising the dequantised model reproduces the integers (the decoder's view).
    for a, b in zip(jax.tree.leaves(ints), jax.tree.leaves(again)):
      np.testing.assert_array_equal(a, b)
  # Finer grids cost more bits.
  costs = [two_part.param_code_bits(two_part.quantise(params, mask, p)[0], mask) for p in (0, 4, 8)]
  assert costs[0] < costs[1] < costs[2]
  active = sum(int(np.sum(np.asarray(m) > 0)) for m in jax.tree.leaves(mask))
  # At precision 8 a Gaussian-like weight costs about 8 + log2(sqrt(2 pi e)) = 10.05 bits.
  assert 9.0 < costs[2] / active < 11.0


def _direct_bits(params, cfg, width, batch):
  """-log2 p of every stream target (0 on row padding), by a separate path: log_softmax of
  the model's logits."""
  logits = model_lib.apply(params, cfg, jnp.asarray(batch["inputs_BxL"]), width)
  logp = jax.nn.log_softmax(logits)
  t = jnp.asarray(batch["targets_BxL"])
  bits = -np.asarray(jnp.take_along_axis(logp, t[..., None], -1)[..., 0]) / math.log(2)
  return np.where(np.asarray(batch["roles_BxL"]) == roles.PAD, 0.0, bits)


def test_data_bits_are_what_the_quantised_model_assigns():
  config, setup = _tiny_setup()
  state = setup.init_state()
  pipe = pretrain.job(config, setup).pipe
  sample = two_part.sample_batches(pipe, config.train.num_steps, 3)
  assert list(sample[0]) == [0, 20, 39]
  points = two_part.two_part_points(setup, state, sample, (0, 3))
  batches = sample[1]
  for i, (width, _) in enumerate(setup.models):
    cfg = setup.model_config(i)
    b, j = next((b, idx.index(i)) for b, (_, idx) in enumerate(setup.layout.buckets) if i in idx)
    params = jax.tree.map(lambda x: np.asarray(x[j]), jax.device_get(state[b].params))
    mask = jax.device_get(model_lib.param_mask(cfg, width))
    for q in points[i]["quantised"]:
      ints, steps = two_part.quantise(params, mask, q["precision"])
      assert q["complexity_bits"] == two_part.param_code_bits(ints, mask)
      deq = two_part.dequantise(ints, steps)
      want = [_direct_bits(deq, cfg, width, jax.tree.map(lambda x: x[s], batches)).sum()
              for s in range(3)]
      np.testing.assert_allclose(q["bits_S"], want, rtol=1e-5)
    want = [_direct_bits(params, cfg, width, jax.tree.map(lambda x: x[s], batches)).sum()
            for s in range(3)]
    np.testing.assert_allclose(points[i]["bits_S"], want, rtol=1e-5)
  # The batches are the run's own: the same as stepping the pipe.
  st = pipe.init
  for t in range(21):
    st, batch, _ = pipe.step(st)
  np.testing.assert_array_equal(batch["targets_BxL"], batches["targets_BxL"][1])
  assert np.all(batches["inputs_BxL"][:, :, 0] == BOS)


def test_ksf_rows_arithmetic():
  sample_idx = np.arange(4)   # every batch sampled: exact data bits
  points = [{"bits_S": np.array([10.0, 8.0, 6.0, 4.0]),
             "quantised": [{"precision": 1, "complexity_bits": 100.0,
                            "bits_S": np.array([11.0, 9.0, 7.0, 5.0])}]}]
  rows = two_part.ksf_rows(2, 4, sample_idx, points, preq_bits_M=[30.0])
  assert rows[0]["data_bits"] == 28.0
  assert rows[0]["seen_data_bits"] == 18.0          # batches 0 and 1
  assert rows[0]["prequential_complexity_bits"] == 12.0
  assert rows[0]["quantised"] == [{"precision": 1, "complexity_bits": 100.0, "data_bits": 32.0}]
  assert list(two_part.sample_indices(1500, 16)[[0, -1]]) == [0, 1499]
  assert len(two_part.sample_indices(1500, 16)) == 16
