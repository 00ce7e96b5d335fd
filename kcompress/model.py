"""Decoder-only transformer whose width is a traced value: one shape serves a whole sweep.

Every parameter is allocated at the sweep's `max_width` D and masked to the model's
`width` w (a traced int): d_model = w, heads = w // head_dim, MLP hidden = mlp_ratio*w.
Hidden units >= w are zero, whole heads >= w // head_dim are masked, LayerNorm
statistics use the w active units only, initial scales use the true fan-in of width w,
and padded parameter entries are exactly zero (the optimizer keeps them so). A masked
width-w model computes what an unpadded model of width w computes.

Pre-norm blocks, causal multi-head attention, GELU MLP, learned positions, untied
unembedding. Params are a plain dict pytree; `apply` is a pure function.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Static shape settings of the sweep (hashable)."""
  vocab_size: int
  context_length: int
  max_width: int
  depth: int
  head_dim: int
  mlp_ratio: int

  @classmethod
  def from_config(cls, model_cfg, vocab_size: int, context_length: int) -> "ModelConfig":
    return cls(vocab_size=vocab_size, context_length=context_length,
               max_width=max(model_cfg.widths), depth=model_cfg.depth,
               head_dim=model_cfg.head_dim, mlp_ratio=model_cfg.mlp_ratio)

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
  """1 where a parameter entry is active for `width`, 0 where it is padding."""
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


def init_params(key: jax.Array, cfg: ModelConfig, width) -> dict:
  """Padded params for a model of traced `width`: N(0, 1/fan_in) with the true fan-in."""
  w = jnp.asarray(width, jnp.float32)
  D, H, V, C = cfg.max_width, cfg.max_hidden, cfg.vocab_size, cfg.context_length
  keys = iter(jax.random.split(key, 3 + 6 * cfg.depth))

  def normal(shape, fan_in):
    return jax.random.normal(next(keys), shape, jnp.float32) / jnp.sqrt(fan_in)

  blocks = []
  for _ in range(cfg.depth):
    blocks.append({
        "ln1_scale": jnp.ones((D,)), "ln1_bias": jnp.zeros((D,)),
        "ln2_scale": jnp.ones((D,)), "ln2_bias": jnp.zeros((D,)),
        "wq": normal((D, D), w), "wk": normal((D, D), w), "wv": normal((D, D), w),
        # Residual-branch outputs are scaled down with depth (GPT-2 style).
        "wo": normal((D, D), w) / math.sqrt(2 * cfg.depth),
        "w_in": normal((D, H), w), "b_in": jnp.zeros((H,)),
        "w_out": normal((H, D), cfg.mlp_ratio * w) / math.sqrt(2 * cfg.depth),
        "b_out": jnp.zeros((D,)),
    })
  params = {
      "embed": jax.random.normal(next(keys), (V, D)),
      "pos": 0.1 * jax.random.normal(next(keys), (C, D)),
      "blocks": blocks,
      "lnf_scale": jnp.ones((D,)), "lnf_bias": jnp.zeros((D,)),
      "unembed": normal((D, V), w),
  }
  return jax.tree.map(lambda p, m: p * m, params, param_mask(cfg, width))


def _layer_norm(x, scale, bias, mask_d, width):
  """LayerNorm over the `width` active units of the last axis (padding stays 0)."""
  n = jnp.asarray(width, x.dtype)
  mean = (x * mask_d).sum(-1, keepdims=True) / n
  centred = (x - mean) * mask_d
  var = (centred ** 2).sum(-1, keepdims=True) / n
  return centred * jax.lax.rsqrt(var + 1e-5) * scale + bias


def apply(params: dict, cfg: ModelConfig, inputs_BxL: jax.Array, width) -> jax.Array:
  """Logits [B, L, V] (float32) of the width-`width` model for input tokens [B, L]."""
  m = _masks(cfg, width)
  B, L = inputs_BxL.shape
  NH, Dh = cfg.max_heads, cfg.head_dim
  x = params["embed"][inputs_BxL] + params["pos"][:L][None]
  causal = jnp.tril(jnp.ones((L, L), bool))
  for blk in params["blocks"]:
    h = _layer_norm(x, blk["ln1_scale"], blk["ln1_bias"], m["d"], width)
    q = (h @ blk["wq"]).reshape(B, L, NH, Dh)
    k = (h @ blk["wk"]).reshape(B, L, NH, Dh)
    v = (h @ blk["wv"]).reshape(B, L, NH, Dh)
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(Dh)
    scores = jnp.where(causal[None, None], scores, -1e30)
    attn = jax.nn.softmax(scores, axis=-1) * m["heads"][None, :, None, None]
    o = jnp.einsum("bhqk,bkhd->bqhd", attn, v).reshape(B, L, NH * Dh)
    x = x + o @ blk["wo"]
    h = _layer_norm(x, blk["ln2_scale"], blk["ln2_bias"], m["d"], width)
    h = jax.nn.gelu(h @ blk["w_in"] + blk["b_in"]) * m["hidden"]
    x = x + h @ blk["w_out"] + blk["b_out"]
  x = _layer_norm(x, params["lnf_scale"], params["lnf_bias"], m["d"], width)
  return (x @ params["unembed"]).astype(jnp.float32)


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
