"""Exact O(1)-per-draw sampler of the Pitman-Yor Chinese restaurant process (SPEC section 2).

With i draws made, K distinct entities and n_k occurrences of entity k:
  P(existing k) = (n_k - alpha) / (i + beta),   P(new) = (beta + alpha K) / (i + beta).
Since n_k - alpha = (n_k - 1) + (1 - alpha), an existing entity is drawn either as a
uniform earlier *non-first* occurrence (total weight i - K) or as a uniform entity
(total weight K (1 - alpha)).

Which of the three a draw does, and which index it picks, depends on (i, K) alone,
so a scan over scalars decides them (O(1) per draw, no array in the loop). Draws
that copy an earlier non-first occurrence point at it; the pointers are resolved
afterwards by vectorised pointer jumping. Draw i uses randomness keyed by i alone,
so a stream drawn in chunks equals the stream drawn at once.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

NEW, REPEAT, UNIFORM = 0, 1, 2


class CRPState(NamedTuple):
  """Sequential state of the entity process. Shapes: C = stream capacity (sentences)."""
  index: jax.Array         # int32 []: draws made so far (i)
  num_entities: jax.Array  # int32 []: distinct entities so far (K)
  overflow: jax.Array      # bool []: more entities than capacity were requested
  repeats_C: jax.Array     # int32 [C]: entity of each non-first occurrence, in order (i - K used)


def crp_init(capacity: int) -> CRPState:
  return CRPState(jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32), jnp.zeros((), bool),
                  jnp.zeros((capacity,), jnp.int32))


def _choose(alpha: float, beta: float, key: jax.Array, state: CRPState, num: int):
  """Scan over scalars: per draw its kind (NEW/REPEAT/UNIFORM), index and K before it."""
  index_N = state.index + jnp.arange(num, dtype=jnp.int32)
  u_Nx2 = jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(key, i), (2,),
                                                jnp.float64))(index_N)

  def draw(num_entities, inputs):
    i, u = inputs
    num_repeats = i - num_entities
    x = u[0] * (i + beta)
    w_repeat = num_repeats.astype(jnp.float64)
    w_uniform = num_entities * (1.0 - alpha)
    kind = jnp.where(i == 0, NEW, jnp.where(x < w_repeat, REPEAT, jnp.where(
        x < w_repeat + w_uniform, UNIFORM, NEW)))
    size = jnp.where(kind == REPEAT, num_repeats, num_entities)
    pick = jnp.clip(jnp.floor(u[1] * size).astype(jnp.int32), 0, jnp.maximum(size - 1, 0))
    return num_entities + (kind == NEW).astype(jnp.int32), (kind, pick, num_entities)

  _, (kind_N, pick_N, k_before_N) = jax.lax.scan(draw, state.num_entities, (index_N, u_Nx2))
  return kind_N.astype(jnp.int32), pick_N, k_before_N


def pycrp_draw(alpha: float, beta: float, max_entities: int, key: jax.Array,
               state: CRPState, num: int) -> tuple[CRPState, jax.Array, jax.Array]:
  """Draws `num` entities. Returns (state, entity_N int32, is_new_N bool).

  Entities are numbered in order of creation. Category choice is exact to float64
  resolution; index choices are uniform to a relative error below 1e-6.
  """
  kind_N, pick_N, k_before_N = _choose(alpha, beta, key, state, num)
  is_new_N = kind_N == NEW
  repeats_before = state.index - state.num_entities
  # Non-first occurrences of this chunk take repeat numbers repeats_before + q.
  q_N = jnp.cumsum(~is_new_N) - (~is_new_N)
  pos_of_q = jnp.zeros((num,), jnp.int32).at[jnp.where(is_new_N, num, q_N)].set(
      jnp.arange(num, dtype=jnp.int32), mode="drop")
  in_chunk = (kind_N == REPEAT) & (pick_N >= repeats_before)
  ptr_N = jnp.where(in_chunk, pos_of_q[jnp.clip(pick_N - repeats_before, 0, num - 1)], -1)
  entity_N = jnp.where(is_new_N, k_before_N, jnp.where(
      kind_N == UNIFORM, pick_N, state.repeats_C[jnp.clip(pick_N, 0, state.repeats_C.shape[0] - 1)]))
  entity_N = jnp.where(in_chunk, -1, entity_N)
  # Pointers go strictly backwards; jumping halves every chain each round.
  ptr_N = jnp.where(in_chunk, ptr_N, jnp.arange(num, dtype=jnp.int32))

  def unresolved(carry):
    return jnp.any(carry[0] < 0)

  def jump(carry):
    e, p = carry
    return jnp.where(e < 0, e[p], e), p[p]

  entity_N, _ = jax.lax.while_loop(unresolved, jump, (entity_N, ptr_N))
  full = k_before_N >= max_entities
  overflow = state.overflow | jnp.any(is_new_N & full)
  entity_N = jnp.minimum(entity_N, max_entities - 1)
  slot_N = jnp.where(is_new_N, state.repeats_C.shape[0], repeats_before + q_N)
  repeats_C = state.repeats_C.at[slot_N].set(entity_N, mode="drop")
  num_entities = jnp.minimum(state.num_entities + is_new_N.sum(dtype=jnp.int32), max_entities)
  return CRPState(state.index + num, num_entities, overflow, repeats_C), entity_N, is_new_N
