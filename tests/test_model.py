"""The masked width sweep: initial weights per (width, seed), causality, parameter counts,
one vmapped step for all, frozen models, dtypes. (Masked == unpadded: test_reference.py.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kcompress import model as model_lib, step as step_lib, sweep
from kcompress.errors import UserError
from configs.sweep import get_config

VOCAB, CTX = 37, 12


def _cfg(max_width, depth=2, head_dim=8, mlp_ratio=4):
  return model_lib.ModelConfig(vocab_size=VOCAB, context_length=CTX, max_width=max_width,
                               depth=depth, head_dim=head_dim, mlp_ratio=mlp_ratio)


def _batch(seed, batch=3):
  rng = np.random.default_rng(seed)
  targets = rng.integers(2, VOCAB, (batch, CTX)).astype(np.int32)
  inputs = np.concatenate([np.zeros((batch, 1), np.int32), targets[:, :-1]], 1)
  return {"inputs_BxL": jnp.asarray(inputs), "targets_BxL": jnp.asarray(targets),
          "roles_BxL": jnp.asarray(rng.integers(0, 4, (batch, CTX)).astype(np.int32))}


def test_causality():
  cfg = _cfg(32)
  params = model_lib.init_params(jax.random.PRNGKey(3), cfg, 32)
  batch = _batch(1)
  t = 5
  changed = batch["inputs_BxL"].at[:, t + 1:].set(7)
  apply = jax.jit(model_lib.apply, static_argnums=1)
  a = apply(params, cfg, batch["inputs_BxL"], 32)
  b = apply(params, cfg, changed, 32)
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


def test_vmap_equals_single_models():
  """A bucket's vmapped sweep step trains each model as its own unbatched train_step."""
  cfg, optim_cfg = _cfg(32), _optim(weight_decay=0.1)
  widths, seeds = [16, 32], [0, 2]
  state, sweep_step, opt = _sweep(widths, seeds, optim_cfg, cfg)
  batch = _batch(2)
  init = jax.tree.map(np.asarray, state)
  for _ in range(4):
    state, metrics = sweep_step(state, batch)
  # Model 0 (padded) trained alone (unbatched train_step) reaches the same parameters.
  single = jax.tree.map(lambda x: jnp.asarray(x[0]), init)
  sched = step_lib.lr_schedule(optim_cfg, 10)
  one_step = jax.jit(lambda s, b: step_lib.train_step(cfg, opt, sched, s, b))
  for _ in range(4):
    single, single_metrics = one_step(single, batch)
  for a, b in zip(jax.tree.leaves(single.params), jax.tree.leaves(state.params)):
    np.testing.assert_allclose(a, np.asarray(b)[0], atol=1e-5, rtol=1e-4)
  np.testing.assert_allclose(single_metrics["bits_by_role"], metrics["bits_by_role"][0], rtol=1e-5)


def test_initial_params_depend_on_width_and_seed_only():
  """Issue 13: model (16, seed 3) alone, and padded in a bucket of width 32."""
  optim_cfg = _optim()
  opt = step_lib.make_optimizer(optim_cfg, 10)
  alone = step_lib.init_sweep(_cfg(16, depth=1), optim_cfg, opt, [16], [3])
  padded = step_lib.init_sweep(_cfg(32, depth=1), optim_cfg, opt, [16, 16], [5, 3])
  for a, p in zip(jax.tree.leaves(alone.params), jax.tree.leaves(padded.params)):
    a, p = np.asarray(a)[0], np.asarray(p)
    np.testing.assert_array_equal(p[1][tuple(slice(0, n) for n in a.shape)], a)
    if a.std() > 0:   # the seed matters
      assert not np.array_equal(p[0][tuple(slice(0, n) for n in a.shape)], a)
  mask = model_lib.param_mask(_cfg(32, depth=1), 16)
  for p, m in zip(jax.tree.leaves(padded.params), jax.tree.leaves(mask)):
    assert not np.any(np.asarray(p)[1][np.asarray(m) == 0])   # the rest is zero padding


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


def test_dtype():
  assert model_lib.resolve_dtype("auto", "gpu") == "bfloat16"
  assert model_lib.resolve_dtype("auto", "tpu") == "bfloat16"
  assert model_lib.resolve_dtype("auto", "cpu") == "float32"
  assert model_lib.resolve_dtype("float32", "gpu") == "float32"
  assert model_lib.resolve_dtype("bfloat16", "cpu") == "bfloat16"
  with pytest.raises(UserError, match=r"config.model.dtype='float16': choose float32, "
                                      r"bfloat16 or auto"):
    model_lib.resolve_dtype("float16", "gpu")
  with pytest.raises(UserError, match="ModelConfig.dtype"):
    model_lib.ModelConfig(VOCAB, CTX, 16, 1, 8, 4, dtype="auto")
