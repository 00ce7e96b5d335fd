"""The masked-width flax model against an independent, unpadded reference transformer.

The reference below is written apart from kcompress/model.py: plain jnp over a dict of
unpadded shapes (d = width, hidden = mlp_ratio * width), a loop over heads, textbook
LayerNorm, the tanh GELU written out, -inf causal masking. Its parameters are the masked
model's parameters cut to the active block (the rest must be exactly zero). kcompress.model
is used only to build the masked model under test.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kcompress import model as model_lib, step as step_lib
from configs.sweep import get_config

VOCAB, CTX, DEPTH, HEAD_DIM, MLP_RATIO = 20, 16, 2, 8, 4
WIDTHS = (8, 16, 24)
# Bucket layouts of the sweep: each width alone (no padding), all padded to the widest,
# and a middle split.
LAYOUTS = {"alone": ((8,), (16,), (24,)), "widest": ((8, 16, 24),), "split": ((8, 16), (24,))}
# float32 tolerance, of each tensor's largest entry: masked and reference differ in summation
# order and in how they write GELU, LayerNorm and softmax (padding only adds exact zeros).
# Measured: logits <= 4e-7, gradients <= 3e-6 (last block's wq/wk: softmax cancellation).
FP32_RTOL = 1e-5
# The tests' own jits compile at XLA backend optimisation level 0: a third of the compile
# time of these tiny programs, and the same IEEE float arithmetic up to summation order.
QUICK = {"compiler_options": {"xla_backend_optimization_level": 0}}


# ------------------------------------------------------------------ the reference


def ref_layer_norm(x, scale, bias, eps=1e-5):
  mean = x.mean(-1, keepdims=True)
  var = ((x - mean) ** 2).mean(-1, keepdims=True)
  return (x - mean) / jnp.sqrt(var + eps) * scale + bias


def ref_gelu(x):
  return 0.5 * x * (1.0 + jnp.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def ref_attention(h_BxLxd, blk):
  """Causal multi-head self-attention, one head (HEAD_DIM columns) at a time."""
  L, d = h_BxLxd.shape[1], h_BxLxd.shape[2]
  causal = np.tril(np.ones((L, L), bool))
  heads = []
  for i in range(d // HEAD_DIM):
    cols = slice(i * HEAD_DIM, (i + 1) * HEAD_DIM)
    q, k, v = (h_BxLxd @ blk[name][:, cols] for name in ("wq", "wk", "wv"))
    scores = jnp.where(causal, q @ k.transpose(0, 2, 1) / math.sqrt(HEAD_DIM), -jnp.inf)
    weights = jnp.exp(scores - scores.max(-1, keepdims=True))
    heads.append(weights / weights.sum(-1, keepdims=True) @ v)
  return jnp.concatenate(heads, -1) @ blk["wo"]


def ref_logits(params, tokens_BxL):
  """Logits [B, L, V] of the unpadded pre-norm transformer."""
  x = params["embed"][tokens_BxL] + params["pos"][:tokens_BxL.shape[1]]
  for blk in params["blocks"]:
    x = x + ref_attention(ref_layer_norm(x, blk["ln1_scale"], blk["ln1_bias"]), blk)
    h = ref_layer_norm(x, blk["ln2_scale"], blk["ln2_bias"])
    x = x + ref_gelu(h @ blk["w_in"] + blk["b_in"]) @ blk["w_out"] + blk["b_out"]
  return ref_layer_norm(x, params["lnf_scale"], params["lnf_bias"]) @ params["unembed"]


def ref_bits(params, tokens_BxL, targets_BxL):
  """-log2 p(target), [B, L]."""
  logits = ref_logits(params, tokens_BxL)
  logp = logits - jax.scipy.special.logsumexp(logits, -1, keepdims=True)
  return -jnp.take_along_axis(logp, targets_BxL[..., None], -1)[..., 0] / math.log(2.0)


def ref_shapes(width):
  """Unpadded parameter shapes of a width-`width` model."""
  d, h = width, MLP_RATIO * width
  block = {"ln1_scale": (d,), "ln1_bias": (d,), "ln2_scale": (d,), "ln2_bias": (d,),
           "wq": (d, d), "wk": (d, d), "wv": (d, d), "wo": (d, d),
           "w_in": (d, h), "b_in": (h,), "w_out": (h, d), "b_out": (d,)}
  return {"embed": (VOCAB, d), "pos": (CTX, d), "blocks": [block] * DEPTH,
          "lnf_scale": (d,), "lnf_bias": (d,), "unembed": (d, VOCAB)}


def _is_shape(x):
  return isinstance(x, tuple)


def cut(padded, width):
  """The masked model's params (or gradients) cut to the unpadded shapes of `width`
  (the leading block), as numpy."""
  return jax.tree.map(lambda p, s: p[tuple(slice(0, n) for n in s)], jax.device_get(padded),
                      ref_shapes(width), is_leaf=_is_shape)


def assert_padding_zero(padded, width):
  def check(p, s):
    rest = np.array(p)
    rest[tuple(slice(0, n) for n in s)] = 0
    assert not np.any(rest), "a padded entry is not exactly zero"
  jax.tree.map(check, jax.device_get(padded), ref_shapes(width), is_leaf=_is_shape)


def assert_close(actual, desired, rtol):
  """|actual - desired| <= rtol * max|desired|, tensor by tensor."""
  for a, d in zip(jax.tree.leaves(actual), jax.tree.leaves(desired)):
    a, d = np.asarray(a, np.float64), np.asarray(d, np.float64)
    np.testing.assert_allclose(a, d, rtol=0, atol=rtol * np.abs(d).max())


# ------------------------------------------------------------------ the masked model


def bucket_cfg(max_width, dtype="float32"):
  return model_lib.ModelConfig(VOCAB, CTX, max_width, DEPTH, HEAD_DIM, MLP_RATIO, dtype)


@functools.lru_cache(maxsize=None)
def widest_params(width):
  """numpy params of the width-`width` model padded to the widest bucket, perturbed on the
  active block (so LayerNorms and biases are not 1 and 0)."""
  cfg = bucket_cfg(max(WIDTHS))
  params = model_lib.init_params(jax.random.fold_in(jax.random.PRNGKey(0), width), cfg, width)
  rng = np.random.default_rng(width)

  def perturb(p, shape):
    p = np.array(p)
    p[tuple(slice(0, n) for n in shape)] += 0.3 * rng.standard_normal(shape).astype(np.float32)
    return p
  return jax.tree.map(perturb, jax.device_get(params), ref_shapes(width), is_leaf=_is_shape)


def masked_params(width, max_width):
  """The width-`width` model's params in a bucket of `max_width` (the widest, cut)."""
  return cut(widest_params(width), max_width)


def batch(seed=0, rows=3):
  rng = np.random.default_rng(seed)
  tokens = rng.integers(0, VOCAB, (rows, CTX + 1)).astype(np.int32)
  return {"inputs_BxL": jnp.asarray(tokens[:, :-1]), "targets_BxL": jnp.asarray(tokens[:, 1:])}


@functools.partial(jax.jit, **QUICK)
def ref_logits_and_grads(params, b):
  """(logits [B, L, V], gradient of the mean bits) of the reference."""
  loss = lambda p: ref_bits(p, b["inputs_BxL"], b["targets_BxL"]).mean()
  return ref_logits(params, b["inputs_BxL"]), jax.grad(loss)(params)


@functools.partial(jax.jit, static_argnums=1, **QUICK)
def masked_logits_and_grads(params, cfg, width, b):
  """(logits [B, L, V], gradient of the mean bits) of the masked model."""
  def loss(p):
    logits = model_lib.apply(p, cfg, b["inputs_BxL"], width)
    logp = jax.nn.log_softmax(logits, -1)
    bits = -jnp.take_along_axis(logp, b["targets_BxL"][..., None], -1) / math.log(2.0)
    return bits.mean(), logits
  (_, logits), grads = jax.value_and_grad(loss, has_aux=True)(params)
  return logits, grads


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize("layout", LAYOUTS)
def test_masked_equals_reference(layout):
  b = batch()
  for group in LAYOUTS[layout]:
    cfg = bucket_cfg(max(group))
    for width in group:
      params = masked_params(width, cfg.max_width)
      assert_padding_zero(params, width)
      logits_ref, grads_ref = ref_logits_and_grads(cut(params, width), b)
      logits, grads = masked_logits_and_grads(params, cfg, width, b)
      assert_close(logits, logits_ref, FP32_RTOL)
      assert_padding_zero(grads, width)
      assert_close(cut(grads, width), grads_ref, FP32_RTOL)


def test_padding_stays_zero_after_training():
  """A bucket padded to the widest width, trained as sweep.py does (vmapped train_step)."""
  cfg, optim_cfg = bucket_cfg(max(WIDTHS)), get_config().optim
  optim_cfg.warmup_steps, optim_cfg.weight_decay, optim_cfg.lr = 0, 0.1, 1e-2
  optimizer = step_lib.make_optimizer(optim_cfg, 10)
  schedule = step_lib.lr_schedule(optim_cfg, 10)
  state = step_lib.init_sweep(cfg, optim_cfg, optimizer, WIDTHS, [0, 1, 2])
  one = lambda s, b: step_lib.train_step(cfg, optimizer, schedule, s, b)
  train = jax.jit(jax.vmap(one, in_axes=(0, None)), **QUICK)
  start = state.params
  for i in range(3):
    b = batch(i)
    state, _ = train(state, {**b, "roles_BxL": jnp.zeros_like(b["inputs_BxL"])})
  for m, width in enumerate(WIDTHS):
    params = jax.tree.map(lambda x: x[m], state.params)
    assert_padding_zero(params, width)
    moved = jax.tree.map(lambda a, b: np.any(np.asarray(a[m]) != np.asarray(b)), start, params)
    assert all(jax.tree.leaves(moved))   # every tensor trained


def test_bfloat16_equals_reference():
  """The masked bfloat16 model (all widths padded to the widest) vs the float32 reference,
  in logits and gradients, each error measured in norm: |masked - ref|_2 / |ref|_2.

  Tolerance: bfloat16 keeps 8 significant bits, unit roundoff u = 2^-8 ~ 3.9e-3. Every
  matmul rounds its two inputs to bfloat16 (relative error <= u each) and accumulates in
  float32, so its output is off by ~sqrt(2) u relative (rounding errors of random sign
  add in quadrature; single entries can cancel, hence norms). A logit passes 6 depth + 1
  = 13 such matmuls in series (q/k/v, scores, attention-weighted values, wo, w_in, w_out
  per block; unembed), LayerNorm renormalising in between: ~sqrt(13) sqrt(2) u ~ 5u; we
  allow 8u (measured 1.2u to 2.4u). The backward pass doubles the chain (~26 matmuls,
  ~7u): we allow 16u per gradient tensor (measured <= 5.7u). A bug (a wrong mask, scale or
  head) is O(1). The logits' error must also exceed 1e-4 (float32 gives ~1e-7): the
  compute dtype is really bfloat16.
  """
  u = 2.0 ** -8
  error = lambda a, r: float(np.linalg.norm(np.asarray(a) - r) / np.linalg.norm(r))
  cfg = bucket_cfg(max(WIDTHS), "bfloat16")
  b = batch(1)
  for width in WIDTHS:
    params = masked_params(width, cfg.max_width)
    logits_ref, grads_ref = ref_logits_and_grads(cut(params, width), b)
    logits, grads = masked_logits_and_grads(params, cfg, width, b)
    assert logits.dtype == jnp.float32
    assert 1e-4 < error(logits, logits_ref) < 8 * u, (width, error(logits, logits_ref) / u)
    assert_padding_zero(grads, width)
    for g, g_ref in zip(jax.tree.leaves(cut(grads, width)), jax.tree.leaves(grads_ref)):
      assert g.dtype == jnp.float32 and error(g, g_ref) < 16 * u, (width, error(g, g_ref) / u)
