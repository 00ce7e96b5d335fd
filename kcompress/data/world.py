"""Per-seed constants of a Syntax-Knowledge source: skeletons, syntax parameters, keys.

Everything here is drawn once per seed and never changes along the stream.
Knowledge lookups (names, facts) are pure functions of (world, entity, attribute).
All functions are jittable and vmap over a leading seed axis of `World`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from kcompress.data.spec import NAME0, DataSpec


class World(NamedTuple):
  """Drawn-once constants of one seed. Shapes: T templates, F = F_max, S synonyms."""
  attribute_T: jax.Array      # int32: attribute a(t) each template reveals
  num_fillers_T: jax.Array    # int32: F_t in [min_fillers, max_fillers]
  value_pos_T: jax.Array      # int32: value follows this many fillers, in [1, F_t]
  theta_T: jax.Array          # float64: template probabilities ~ Dir(gamma_T)
  theta_TxFxS: jax.Array      # float64: synonym probabilities per slot ~ Dir(gamma)
  key_entities: jax.Array     # PRNG key of the PYCRP draws (indexed by sentence)
  key_syntax: jax.Array       # PRNG key of templates and synonyms (indexed by sentence)
  key_facts: jax.Array        # PRNG key of facts (indexed by entity, attribute)
  key_names: jax.Array        # PRNG key of the name bijection


def draw_world(spec: DataSpec, key: jax.Array) -> World:
  """Draws the skeletons and the syntax parameters of one seed."""
  T, A, F, S = spec.num_templates, spec.num_attributes, spec.max_fillers, spec.synonyms_per_slot
  k_attr, k_fill, k_pos, k_tt, k_ts, k_ent, k_syn, k_fact, k_name = jax.random.split(key, 9)
  attribute_T = (jax.random.permutation(k_attr, T) % A).astype(jnp.int32)
  num_fillers_T = jax.random.randint(k_fill, (T,), spec.min_fillers, spec.max_fillers + 1,
                                     dtype=jnp.int32)
  value_pos_T = 1 + jnp.floor(jax.random.uniform(k_pos, (T,), jnp.float64)
                              * num_fillers_T).astype(jnp.int32)
  theta_T = jax.random.dirichlet(k_tt, jnp.full((T,), spec.gamma_template, jnp.float64))
  theta_TxFxS = jax.random.dirichlet(k_ts, jnp.full((S,), spec.gamma_synonym, jnp.float64),
                                     shape=(T, F))
  return World(attribute_T, num_fillers_T, value_pos_T, theta_T, theta_TxFxS,
               k_ent, k_syn, k_fact, k_name)


def value_log2_probs(spec: DataSpec) -> np.ndarray:
  """log2 H_a(v) of the base measure, float64 numpy [V] (the same for every attribute)."""
  V = spec.values_per_attribute
  if spec.value_base == "uniform":
    return np.full((V,), -np.log2(float(V)))
  w = np.arange(1, V + 1, dtype=np.float64) ** (-spec.value_zipf_exponent)
  return np.log2(w / w.sum())


def fact_values(spec: DataSpec, world: World, entity_N: jax.Array,
                attribute_N: jax.Array) -> jax.Array:
  """v_{k,a} ~ H_a, a pure function of (seed, k, a). int32 [N] in [0, V)."""
  A, V = spec.num_attributes, spec.values_per_attribute

  def one(k, a):
    key = jax.random.fold_in(world.key_facts, k * A + a)
    if spec.value_base == "uniform":
      return jax.random.randint(key, (), 0, V, dtype=jnp.int32)
    cdf = jnp.cumsum(jnp.exp2(value_log2_probs(spec)))
    u = jax.random.uniform(key, (), jnp.float64)
    return jnp.minimum(jnp.searchsorted(cdf, u, side="right"), V - 1).astype(jnp.int32)

  return jax.vmap(one)(entity_N, attribute_N)


def _mix32(x: jax.Array, k: jax.Array) -> jax.Array:
  """A 32-bit integer hash of (x, k): the Feistel round function."""
  x = (x ^ k) * jnp.uint32(0x9E3779B1)
  x = x ^ (x >> 15)
  x = x * jnp.uint32(0x85EBCA77)
  x = x ^ (x >> 13)
  x = x * jnp.uint32(0xC2B2AE3D)
  return x ^ (x >> 16)


def name_codes(spec: DataSpec, world: World, entity_N: jax.Array) -> jax.Array:
  """Unique name code of each entity: a keyed bijection of [0, V_n**L). int32 [N].

  A 4-round Feistel permutation on the smallest even-bit domain 2**(2h) >= V_n**L,
  cycle-walked back into [0, V_n**L). Distinct entities get distinct names, and
  the names look like draws without replacement from the whole name space.
  """
  n = spec.name_space
  half = max(1, (max(n - 1, 1).bit_length() + 1) // 2)
  mask = jnp.uint32((1 << half) - 1)
  round_keys = jax.random.bits(world.key_names, (4,), jnp.uint32)

  def permute(x):
    left, right = x >> half, x & mask
    for r in range(4):
      left, right = right, left ^ (_mix32(right, round_keys[r]) & mask)
    return (left << half) | right

  def walk(x):
    x = permute(x)
    return jax.lax.while_loop(lambda y: y >= n, permute, x)

  return jax.vmap(walk)(entity_N.astype(jnp.uint32)).astype(jnp.int32)


def name_tokens(spec: DataSpec, code_N: jax.Array) -> jax.Array:
  """Name code -> its L tokens (base-V_n digits, most significant first). int32 [N, L]."""
  powers = spec.name_alphabet ** jnp.arange(spec.name_length - 1, -1, -1, dtype=jnp.int32)
  digits = (code_N[:, None] // powers[None, :]) % spec.name_alphabet
  return (NAME0 + digits).astype(jnp.int32)
