"""Decoder-only transformer whose width is a traced value: one shape serves a whole sweep.

`Transformer(cfg)` is a flax linen module allocated at the bucket's `max_width` D and
masked to the model's `width` w (a traced int): d_model = w, heads = w // head_dim, MLP
hidden = mlp_ratio*w. Hidden units >= w are zero, whole heads >= w // head_dim are
masked, LayerNorm statistics use the w active units only, and padded parameter entries
are exactly zero (the optimizer keeps them so). A masked width-w model computes what an
unpadded model of width w computes (tests/test_reference.py checks it).

Pre-norm blocks, causal multi-head attention, GELU MLP, learned positions, untied
unembedding. Mixed precision: parameters are float32; every matmul casts its inputs to
`cfg.dtype` and accumulates in float32; LayerNorm, softmax and logits are float32.

The functional API is what the rest of the code calls: `init_params` draws the params
(a dict pytree: "embed", "pos", "blocks" (a list of dicts), "lnf_scale", "lnf_bias",
"unembed"), `apply` runs the module on them, `param_mask` has the same tree.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from kcompress.errors import UserError

DTYPES = ("float32", "bfloat16")
ACCELERATORS = ("gpu", "tpu", "cuda", "rocm")


def resolve_dtype(name: str, platform: str) -> str:
  """The compute dtype of `config.model.dtype` on `platform` ("cpu", "gpu", ...):
  "auto" is bfloat16 on an accelerator, float32 on the CPU."""
  if name == "auto":
    return "bfloat16" if platform.lower() in ACCELERATORS else "float32"
  if name not in DTYPES:
    raise UserError(f"config.model.dtype={name!r}: choose float32, bfloat16 or auto")
  return name


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Static shape settings of a bucket (hashable); `dtype` is the matmul compute dtype."""
  vocab_size: int
  context_length: int
  max_width: int
  depth: int
  head_dim: int
  mlp_ratio: int
  dtype: str = "float32"

  def __post_init__(self):
    if self.dtype not in DTYPES:
      raise UserError(f"ModelConfig.dtype={self.dtype!r}: choose one of {DTYPES} "
                      "(resolve 'auto' with model.resolve_dtype)")

  @classmethod
  def from_config(cls, model_cfg, vocab_size: int, context_length: int) -> "ModelConfig":
    return cls(vocab_size=vocab_size, context_length=context_length,
               max_width=max(model_cfg.widths), depth=model_cfg.depth,
               head_dim=model_cfg.head_dim, mlp_ratio=model_cfg.mlp_ratio,
               dtype=resolve_dtype(model_cfg.get("dtype", "float32"), jax.default_backend()))

  @property
  def max_heads(self) -> int:
    return self.max_width // self.head_dim

  @property
  def max_hidden(self) -> int:
    return self.mlp_ratio * self.max_width


def _masks(cfg: ModelConfig, width) -> dict[str, jax.Array]:
  """Float 0/1 vectors of the active units: d [D], hidden [H], heads [NH]."""
  return {
      "d": (jnp.arange(cfg.max_width) < width).astype(jnp.float32),
      "hidden": (jnp.arange(cfg.max_hidden) < cfg.mlp_ratio * width).astype(jnp.float32),
      "heads": (jnp.arange(cfg.max_heads) < width // cfg.head_dim).astype(jnp.float32),
  }


def param_mask(cfg: ModelConfig, width) -> dict:
  """1 where a parameter entry is active for `width`, 0 where it is padding (params' tree)."""
  m = _masks(cfg, width)
  d, h = m["d"], m["hidden"]
  inner = d  # attention inner dim = heads * head_dim = width
  block = {
      "ln1_scale": d, "ln1_bias": d, "ln2_scale": d, "ln2_bias": d,
      "wq": d[:, None] * inner[None, :], "wk": d[:, None] * inner[None, :],
      "wv": d[:, None] * inner[None, :], "wo": inner[:, None] * d[None, :],
      "w_in": d[:, None] * h[None, :], "b_in": h, "w_out": h[:, None] * d[None, :], "b_out": d,
  }
  V, C = cfg.vocab_size, cfg.context_length
  return {
      "embed": jnp.broadcast_to(d[None, :], (V, cfg.max_width)),
      "pos": jnp.broadcast_to(d[None, :], (C, cfg.max_width)),
      "blocks": [dict(block) for _ in range(cfg.depth)],
      "lnf_scale": d, "lnf_bias": d,
      "unembed": jnp.broadcast_to(d[:, None], (cfg.max_width, V)),
  }


@functools.partial(jax.jit, static_argnums=(1, 2))
def _init(key: jax.Array, cfg: ModelConfig, width: int) -> dict:
  """`init_params`, drawn at the unpadded shapes of `width`, then zero-padded.

  Bit-for-bit what the recorded runs drew: the key order (split into 3 + 6 depth: per
  block wq wk wv wo w_in w_out, then embed, pos, unembed), and the fan-in scales divide by
  sqrt of a runtime width (the barrier stops XLA folding it into a constant, which rounds
  differently by 1 ulp), in this one jit whatever the caller's context.
  """
  w = jnp.asarray(jax.lax.optimization_barrier(jnp.int32(width)), jnp.float32)
  D, H = width, cfg.mlp_ratio * width
  V, C = cfg.vocab_size, cfg.context_length
  keys = iter(jax.random.split(key, 3 + 6 * cfg.depth))

  def normal(shape, fan_in):
    return jax.random.normal(next(keys), shape, jnp.float32) / jnp.sqrt(fan_in)

  residual_scale = math.sqrt(2 * cfg.depth)   # residual-branch outputs shrink with depth
  blocks = []
  for _ in range(cfg.depth):
    blocks.append({
        "ln1_scale": jnp.ones((D,)), "ln1_bias": jnp.zeros((D,)),
        "ln2_scale": jnp.ones((D,)), "ln2_bias": jnp.zeros((D,)),
        "wq": normal((D, D), w), "wk": normal((D, D), w), "wv": normal((D, D), w),
        "wo": normal((D, D), w) / residual_scale,
        "w_in": normal((D, H), w), "b_in": jnp.zeros((H,)),
        "w_out": normal((H, D), cfg.mlp_ratio * w) / residual_scale,
        "b_out": jnp.zeros((D,)),
    })
  unpadded = {
      "embed": jax.random.normal(next(keys), (V, D)),
      "pos": 0.1 * jax.random.normal(next(keys), (C, D)),
      "blocks": blocks,
      "lnf_scale": jnp.ones((D,)), "lnf_bias": jnp.zeros((D,)),
      "unembed": normal((D, V), w),
  }
  pad = lambda p, m: jnp.pad(p, [(0, n - k) for k, n in zip(p.shape, m.shape)])
  return jax.tree.map(pad, unpadded, param_mask(cfg, width))


def init_params(key: jax.Array, cfg: ModelConfig, width: int) -> dict:
  """Params of the width-`width` model (a Python int), zero-padded to cfg.max_width:
  N(0, 1/fan_in) weights (wo, w_out further / sqrt(2 depth)), embed N(0, 1),
  pos N(0, 0.1^2), LayerNorm 1 / 0, biases 0.

  Drawn at the unpadded shapes of `width`, so (key, width) alone fixes the active entries,
  whatever bucket (max_width) holds the model.
  """
  try:
    width = int(width)
  except jax.errors.ConcretizationTypeError as e:
    raise TypeError("init_params draws at the unpadded shapes: `width` must be static") from e
  if not 0 < width <= cfg.max_width or width % cfg.head_dim:
    raise ValueError(f"width {width}: need a multiple of head_dim={cfg.head_dim} "
                     f"in (0, {cfg.max_width}]")
  return _init(key, cfg, width)


def _matmul(x: jax.Array, w: jax.Array, dtype) -> jax.Array:
  """x @ w with both inputs cast to the compute dtype; float32 result."""
  return jnp.matmul(x.astype(dtype), w.astype(dtype), preferred_element_type=jnp.float32)


def _einsum(spec: str, x: jax.Array, y: jax.Array, dtype) -> jax.Array:
  """einsum(spec, x, y) with both inputs cast to the compute dtype; float32 result."""
  return jnp.einsum(spec, x.astype(dtype), y.astype(dtype), preferred_element_type=jnp.float32)


def _layer_norm(x, scale, bias, mask_d, width):
  """LayerNorm (float32) over the `width` active units of the last axis (padding stays 0)."""
  x = x.astype(jnp.float32)
  n = jnp.asarray(width, jnp.float32)
  mean = (x * mask_d).sum(-1, keepdims=True) / n
  centred = (x - mean) * mask_d
  var = (centred ** 2).sum(-1, keepdims=True) / n
  return centred * jax.lax.rsqrt(var + 1e-5) * scale + bias


def _shape_only(key, shape, dtype=jnp.float32):
  """Initializer of every declared parameter: flax checks shapes with it; the values come
  from `init_params` (explicit key order, true fan-in, zero padding)."""
  return jnp.zeros(shape, dtype)


class Block(nn.Module):
  """Pre-norm block at padded width D: x + attention(LN1 x), then x + MLP(LN2 x).
  Residual stream x [B, L, D] float32; `masks` of `_masks(cfg, width)`."""
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x_BxLxD: jax.Array, masks: dict, width) -> jax.Array:
    cfg = self.cfg
    D, H, NH, Dh = cfg.max_width, cfg.max_hidden, cfg.max_heads, cfg.head_dim
    dtype = jnp.dtype(cfg.dtype)
    p = lambda name, *shape: self.param(name, _shape_only, shape)
    B, L, _ = x_BxLxD.shape
    x = x_BxLxD

    h = _layer_norm(x, p("ln1_scale", D), p("ln1_bias", D), masks["d"], width)
    q = _matmul(h, p("wq", D, D), dtype).reshape(B, L, NH, Dh)
    k = _matmul(h, p("wk", D, D), dtype).reshape(B, L, NH, Dh)
    v = _matmul(h, p("wv", D, D), dtype).reshape(B, L, NH, Dh)
    scores = _einsum("bqhd,bkhd->bhqk", q, k, dtype) / math.sqrt(Dh)
    causal = jnp.tril(jnp.ones((L, L), bool))
    scores = jnp.where(causal[None, None], scores, -1e30)
    attn = jax.nn.softmax(scores, axis=-1) * masks["heads"][None, :, None, None]
    o = _einsum("bhqk,bkhd->bqhd", attn, v, dtype).reshape(B, L, NH * Dh)
    x = x + _matmul(o, p("wo", D, D), dtype)

    h = _layer_norm(x, p("ln2_scale", D), p("ln2_bias", D), masks["d"], width)
    h = _matmul(h, p("w_in", D, H), dtype) + p("b_in", H)
    h = jax.nn.gelu(h) * masks["hidden"]
    return x + _matmul(h, p("w_out", H, D), dtype) + p("b_out", D)


class Transformer(nn.Module):
  """Masked-width decoder: tokens [B, L] int and width (traced int) -> logits [B, L, V]
  float32. Its variables are `linen_params(init_params(...))` (block i: "blocks_{i}");
  `Transformer.init` raises rather than give an all-zero model."""
  cfg: ModelConfig

  @nn.nowrap
  def init(self, *args, **kwargs):
    raise NotImplementedError("Transformer parameters come from "
                              "kcompress.model.init_params(key, cfg, width)")

  @nn.compact
  def __call__(self, inputs_BxL: jax.Array, width) -> jax.Array:
    cfg = self.cfg
    D, V, C = cfg.max_width, cfg.vocab_size, cfg.context_length
    p = lambda name, *shape: self.param(name, _shape_only, shape)
    masks = _masks(cfg, width)
    L = inputs_BxL.shape[1]
    x = p("embed", V, D)[inputs_BxL] + p("pos", C, D)[:L][None]
    for i in range(cfg.depth):
      x = Block(cfg, name=f"blocks_{i}")(x, masks, width)
    x = _layer_norm(x, p("lnf_scale", D), p("lnf_bias", D), masks["d"], width)
    return _matmul(x, p("unembed", D, V), jnp.dtype(cfg.dtype))


def linen_params(params: dict) -> dict:
  """`init_params`' tree (blocks a list) -> Transformer's variable names (blocks_{i})."""
  out = {k: v for k, v in params.items() if k != "blocks"}
  out.update({f"blocks_{i}": block for i, block in enumerate(params["blocks"])})
  return out


def apply(params: dict, cfg: ModelConfig, inputs_BxL: jax.Array, width) -> jax.Array:
  """Logits [B, L, V] (float32) of the width-`width` model for input tokens [B, L]."""
  return Transformer(cfg).apply({"params": linen_params(params)}, inputs_BxL, width)


def param_count(cfg: ModelConfig, width: int) -> int:
  """Unpadded parameter count of the width-`width` model (= active mask entries)."""
  w, h, V, C = width, cfg.mlp_ratio * width, cfg.vocab_size, cfg.context_length
  per_block = 4 * w + 4 * w * w + 2 * w * h + h + w
  return V * w + C * w + cfg.depth * per_block + 2 * w + w * V


def flops_per_token(cfg: ModelConfig, width: int) -> float:
  """Training FLOPs per token (forward + backward): 6 N_matmul + attention scores."""
  w, h, V, L = width, cfg.mlp_ratio * width, cfg.vocab_size, cfg.context_length
  matmul_params = cfg.depth * (4 * w * w + 2 * w * h) + w * V
  attention = cfg.depth * 2 * L * w   # QK^T and AV, per token, forward (causal average ~ L/2, x2)
  return 6.0 * matmul_params + 3.0 * attention
