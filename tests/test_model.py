"""The masked width sweep: padded == unpadded, causality, frozen padding, one step for all."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kcompress import model as model_lib, step as step_lib, sweep
from configs.sweep import get_config

VOCAB, CTX = 37, 12


def _cfg(max_width, depth=2, head_dim=8, mlp_ratio=4):
  return model_lib.ModelConfig(vocab_size=VOCAB, context_length=CTX, max_width=max_width,
                               depth=depth, head_dim=head_dim, mlp_ratio=mlp_ratio)


def _active_slice(padded, mask):
  """The leading active block of a padded array (active entries form a prefix on each axis)."""
  index = []
  for axis in range(padded.ndim):
    other = tuple(a for a in range(padded.ndim) if a != axis)
    index.append(slice(0, int((np.asarray(mask).sum(axis=other) > 0).sum()) if other else
                       int((np.asarray(mask) > 0).sum())))
  return padded[tuple(index)]


def _batch(seed, batch=3):
  rng = np.random.default_rng(seed)
  targets = rng.integers(2, VOCAB, (batch, CTX)).astype(np.int32)
  inputs = np.concatenate([np.zeros((batch, 1), np.int32), targets[:, :-1]], 1)
  return {"inputs_BxL": jnp.asarray(inputs), "targets_BxL": jnp.asarray(targets),
          "roles_BxL": jnp.asarray(rng.integers(0, 4, (batch, CTX)).astype(np.int32))}


@pytest.mark.parametrize("width", [16, 24])
def test_masked_equals_unpadded(width):
  big, small = _cfg(40), _cfg(width)
  params = model_lib.init_params(jax.random.PRNGKey(0), big, width)
  mask = model_lib.param_mask(big, width)
  sliced = jax.tree.map(_active_slice, params, mask)
  # The padded entries are exactly zero, and the unpadded model has the right shapes.
  for p, m in zip(jax.tree.leaves(params), jax.tree.leaves(mask)):
    assert np.all(np.asarray(p)[np.asarray(m) == 0] == 0)
  for s, ref in zip(jax.tree.leaves(sliced),
                    jax.tree.leaves(model_lib.init_params(jax.random.PRNGKey(1), small, width))):
    assert s.shape == ref.shape
  batch = _batch(0)
  apply = jax.jit(model_lib.apply, static_argnums=1)
  logits_big = apply(params, big, batch["inputs_BxL"], width)
  logits_small = apply(sliced, small, batch["inputs_BxL"], width)
  np.testing.assert_allclose(logits_big, logits_small, atol=2e-5, rtol=1e-5)

  def loss(p, cfg):
    return step_lib.token_bits(p, cfg, width, batch).mean()

  grad = jax.jit(jax.grad(loss), static_argnums=1)
  g_big = jax.tree.map(_active_slice, grad(params, big), mask)
  g_small = grad(sliced, small)
  for a, b in zip(jax.tree.leaves(g_big), jax.tree.leaves(g_small)):
    np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-4)


def test_causality():
  cfg = _cfg(32)
  params = model_lib.init_params(jax.random.PRNGKey(3), cfg, 32)
  batch = _batch(1)
  t = 5
  changed = batch["inputs_BxL"].at[:, t + 1:].set(7)
  a = model_lib.apply(params, cfg, batch["inputs_BxL"], 32)
  b = model_lib.apply(params, cfg, changed, 32)
  np.testing.assert_array_equal(a[:, :t + 1], b[:, :t + 1])
  assert not np.allclose(a[:, t + 1:], b[:, t + 1:])


def test_param_count_matches_mask_and_formula():
  cfg = _cfg(48, depth=3)
  for w in (16, 32, 48):
    mask = model_lib.param_mask(cfg, w)
    active = sum(int(np.asarray(m).sum()) for m in jax.tree.leaves(mask))
    h = 4 * w
    formula = VOCAB * w + CTX * w + 3 * (4 * w + 4 * w * w + 2 * w * h + h + w) + 2 * w + w * VOCAB
    assert model_lib.param_count(cfg, w) == active == formula


def _optim(**kw):
  c = get_config().optim
  c.warmup_steps = 0
  for k, v in kw.items():
    c[k] = v
  return c


def _sweep(widths, seeds, optim_cfg, cfg, num_steps=10):
  """A one-bucket sweep (every width padded to cfg.max_width); state of that bucket."""
  opt = step_lib.make_optimizer(optim_cfg, num_steps)
  layout = sweep.Layout(((cfg, tuple(range(len(widths)))),))
  [state] = sweep.init(layout, optim_cfg, opt, widths, seeds)
  step = sweep.make_step(layout, opt, optim_cfg, num_steps)

  def one_bucket_step(state, batch):
    [state], metrics = step([state], batch)
    return state, metrics
  return state, one_bucket_step, opt


def test_padding_stays_zero_and_vmap_equals_single_models():
  cfg, optim_cfg = _cfg(32), _optim(weight_decay=0.1)
  widths, seeds = [16, 24, 32], [0, 1, 2]
  state, sweep_step, opt = _sweep(widths, seeds, optim_cfg, cfg)
  batch = _batch(2)
  init = jax.tree.map(np.asarray, state)
  for _ in range(4):
    state, metrics = sweep_step(state, batch)
  for m, w in enumerate(widths):
    mask = model_lib.param_mask(cfg, w)
    params_m = jax.tree.map(lambda x: np.asarray(x)[m], state.params)
    for p, k in zip(jax.tree.leaves(params_m), jax.tree.leaves(mask)):
      assert np.all(p[np.asarray(k) == 0] == 0)
  # Model 1 trained alone (unbatched train_step) reaches the same parameters.
  single = jax.tree.map(lambda x: jnp.asarray(x[1]), init)
  sched = step_lib.lr_schedule(optim_cfg, 10)
  one_step = jax.jit(lambda s, b: step_lib.train_step(cfg, opt, sched, s, b))
  for _ in range(4):
    single, single_metrics = one_step(single, batch)
  for a, b in zip(jax.tree.leaves(single.params), jax.tree.leaves(state.params)):
    np.testing.assert_allclose(a, np.asarray(b)[1], atol=1e-5, rtol=1e-4)
  np.testing.assert_allclose(single_metrics["bits_by_role"], metrics["bits_by_role"][1], rtol=1e-5)


def test_nonfinite_model_is_frozen_others_train():
  cfg, optim_cfg = _cfg(32, depth=1), _optim(lr=3e-3)
  state, sweep_step, _ = _sweep([16, 32], [0, 0], optim_cfg, cfg, num_steps=30)
  bad = state.params["unembed"].at[0, 0, 0].set(jnp.nan)
  state = state.replace(params={**state.params, "unembed": bad})
  batch = _batch(4)
  losses = []
  for _ in range(25):
    state, metrics = sweep_step(state, batch)
    losses.append(np.asarray(metrics["loss_bits"]))
  assert bool(state.frozen[0]) and int(state.frozen_step[0]) == 0
  assert not bool(state.frozen[1]) and int(state.frozen_step[1]) == -1
  assert losses[-1][1] < 0.5 * losses[0][1]     # the healthy model memorises the batch
  assert np.isnan(np.asarray(state.params["unembed"][0, 0, 0]))


def test_lr_scaling():
  c = _optim(lr=1e-2, base_width=32, lr_scaling="mup")
  np.testing.assert_allclose(step_lib.lr_for_width(c, [32, 64, 128]), [1e-2, 5e-3, 2.5e-3])
  c.lr_scaling = "constant"
  np.testing.assert_allclose(step_lib.lr_for_width(c, [32, 64]), [1e-2, 1e-2])
  c.lr_scaling = "sqrt"
  with pytest.raises(ValueError, match="config.optim.lr_scaling"):
    step_lib.make_optimizer(c, 10)
