"""The pure train step `(state, batch) -> (state, metrics)`, vmapped over a sweep of models.

Every model of the sweep is one row of a `TrainState` with a leading model axis M.
The loss of a batch is measured BEFORE the update (prequential code), in bits.
Per-model learning rates are traced (`lr_scale`), so one compiled step serves all
widths. A model whose loss or gradients turn non-finite is frozen: its parameters stop
changing, `frozen_step` records when, and the others train on.
Parameters, optimizer state, losses and code lengths are float32 whatever the model's
matmul compute dtype (`ModelConfig.dtype`).
"""

from __future__ import annotations

import math
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from kcompress import model as model_lib
from kcompress.data.roles import NUM_ROLES
from kcompress.data.tokens import first_name_tokens

LR_SCALINGS = ("constant", "mup")
BITS_PER_NAT = 1.0 / math.log(2.0)   # the one nats -> bits conversion


class TrainState(flax.struct.PyTreeNode):
  params: Any
  opt_state: Any
  step: jax.Array         # int32 updates applied
  width: jax.Array        # int32 active width
  seed: jax.Array         # int32 init seed
  lr_scale: jax.Array     # float32 peak learning rate of this model
  frozen: jax.Array       # bool
  frozen_step: jax.Array  # int32, -1 while not frozen


def lr_for_width(optim_cfg, width) -> np.ndarray:
  """Peak learning rate per width: constant, or muP-style lr * base_width / width."""
  width = np.asarray(width, np.float32)
  if optim_cfg.lr_scaling == "constant":
    return np.full_like(width, optim_cfg.lr)
  if optim_cfg.lr_scaling == "mup":
    return (optim_cfg.lr * optim_cfg.base_width / width).astype(np.float32)
  raise ValueError(f"config.optim.lr_scaling={optim_cfg.lr_scaling!r}: choose one of {LR_SCALINGS}")


def lr_schedule(optim_cfg, num_steps: int):
  """Multiplier of the peak lr: linear warmup, then cosine (or constant) to final_lr_fraction."""
  warmup = max(int(optim_cfg.warmup_steps), 0)
  final = float(optim_cfg.final_lr_fraction)
  if optim_cfg.decay not in ("cosine", "constant"):
    raise ValueError(f"config.optim.decay={optim_cfg.decay!r}: choose 'cosine' or 'constant'")

  def schedule(step):
    step = jnp.asarray(step, jnp.float32)
    warm = jnp.minimum(1.0, (step + 1) / max(warmup, 1)) if warmup else 1.0
    if optim_cfg.decay == "constant":
      return warm
    frac = jnp.clip((step - warmup) / max(num_steps - warmup, 1), 0.0, 1.0)
    return warm * (final + (1 - final) * 0.5 * (1 + jnp.cos(jnp.pi * frac)))

  return schedule


def make_optimizer(optim_cfg, num_steps: int) -> optax.GradientTransformation:
  """AdamW direction with clipping; the caller scales it by -lr_scale * schedule(step)."""
  lr_for_width(optim_cfg, 1)   # validates lr_scaling early
  lr_schedule(optim_cfg, num_steps)
  return optax.chain(
      optax.clip_by_global_norm(optim_cfg.grad_clip),
      optax.scale_by_adam(b1=optim_cfg.b1, b2=optim_cfg.b2),
      optax.add_decayed_weights(optim_cfg.weight_decay),
  )


def init_sweep(cfg: model_lib.ModelConfig, optim_cfg, optimizer, widths_M, seeds_M) -> TrainState:
  """TrainState with leading model axis M, padded to the bucket's cfg.max_width.

  Model m's parameters are drawn from PRNGKey(seeds_M[m]) folded with its width, at the
  unpadded shapes of that width (`model.init_params`), then zero-padded: (width, seed)
  alone fixes them, whatever bucket holds the model.
  """
  widths_M = np.asarray(widths_M, np.int32)
  seeds_M = np.asarray(seeds_M, np.int32)
  params_M = [model_lib.init_params(jax.random.fold_in(jax.random.PRNGKey(seed), width),
                                    cfg, int(width))
              for width, seed in zip(widths_M, seeds_M)]
  params = jax.tree.map(lambda *p: jnp.stack(p), *params_M)

  def one(params, width, seed, lr):
    return TrainState(params=params, opt_state=optimizer.init(params),
                      step=jnp.zeros((), jnp.int32), width=width, seed=seed,
                      lr_scale=lr, frozen=jnp.zeros((), bool),
                      frozen_step=jnp.full((), -1, jnp.int32))

  lrs = jnp.asarray(lr_for_width(optim_cfg, widths_M))
  return jax.jit(jax.vmap(one))(params, jnp.asarray(widths_M), jnp.asarray(seeds_M), lrs)


def is_real(roles_BxL: jax.Array) -> jax.Array:
  """bool [B, L]: a stream token (not row padding, roles.PAD)."""
  return roles_BxL < NUM_ROLES


def token_bits(params, cfg: model_lib.ModelConfig, width, batch: dict) -> jax.Array:
  """-log2 p(target) of every token, [B, L] float32 bits; 0 on row padding (when the batch
  has `roles_BxL`), so every sum of it is a code length of the stream tokens alone."""
  logits = model_lib.apply(params, cfg, batch["inputs_BxL"], width).astype(jnp.float32)
  nats = optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets_BxL"])
  bits = nats * BITS_PER_NAT
  if "roles_BxL" in batch:
    bits = jnp.where(is_real(batch["roles_BxL"]), bits, 0.0)
  return bits


def bits_by_role(bits_BxL: jax.Array, roles_BxL: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(summed bits per role [R], token count per role [R])."""
  onehot = jax.nn.one_hot(roles_BxL, NUM_ROLES, dtype=jnp.float32)
  return jnp.einsum("bl,blr->r", bits_BxL, onehot), onehot.sum((0, 1))


def train_step(cfg: model_lib.ModelConfig, optimizer, schedule, state: TrainState,
               batch: dict) -> tuple[TrainState, dict]:
  """One update of one model; metrics are of the batch before the update (bits)."""

  num_real = jnp.maximum(is_real(batch["roles_BxL"]).sum(), 1)

  def loss_fn(params):
    bits = token_bits(params, cfg, state.width, batch)
    return bits.sum() / num_real, bits

  (loss, bits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  mask = model_lib.param_mask(cfg, state.width)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  lr = state.lr_scale * schedule(state.step)
  new_params = jax.tree.map(lambda p, u, m: p - lr * u * m, state.params, updates, mask)
  finite = jnp.isfinite(loss) & jnp.all(jnp.array(
      [jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
  ok = finite & ~state.frozen
  keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
  frozen = state.frozen | ~finite
  new_state = state.replace(
      params=keep(new_params, state.params), opt_state=keep(opt_state, state.opt_state),
      step=state.step + 1, frozen=frozen,
      frozen_step=jnp.where(frozen & ~state.frozen, state.step, state.frozen_step))
  role_bits, role_tokens = bits_by_role(bits, batch["roles_BxL"])
  first = first_name_tokens(batch["roles_BxL"])
  metrics = {"bits_by_role": role_bits, "tokens_by_role": role_tokens, "loss_bits": loss,
             "entity_bits": jnp.where(first, bits, 0.0).sum(),
             "entity_tokens": first.sum(dtype=jnp.float32),
             "grad_norm": jnp.sqrt(sum(jnp.sum(g ** 2) for g in jax.tree.leaves(grads))), "lr": lr, "nonfinite": ~finite,
             "frozen": frozen, "frozen_step": new_state.frozen_step}
  return new_state, metrics
