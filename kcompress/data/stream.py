"""The sentence stream: entity, template, synonyms and value of each sentence, with counts.

`generate_sentences(spec, world, state, num)` draws the next `num` sentences and
returns them with every count the Bayes code and the annotations need (counts
*before* each sentence). Its state is explicit, so a stream can be drawn in chunks,
checkpointed and resumed; chunked and one-shot generation give identical output.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from kcompress.data import pycrp
from kcompress.data.spec import DataSpec
from kcompress.data.world import World, fact_values


class StreamState(NamedTuple):
  """Everything the stream remembers. E = entity capacity, A attributes, T, F, S syntax."""
  crp: pycrp.CRPState
  entity_counts_E: jax.Array       # int32: occurrences of each entity so far
  fact_counts_ExA: jax.Array       # int32: occurrences of fact (k, a) so far
  template_counts_T: jax.Array     # int32: uses of each template so far
  synonym_counts_TxFxS: jax.Array  # int32: uses of each synonym of each slot so far

  @property
  def num_sentences(self) -> jax.Array:
    return self.crp.index

  @property
  def revealed_ExA(self) -> jax.Array:
    """bool: fact (k, a) revealed so far."""
    return self.fact_counts_ExA > 0


class Sentences(NamedTuple):
  """N consecutive sentences of the stream; *_before = counts before that sentence."""
  index_N: jax.Array                    # int32 global sentence index i
  entity_N: jax.Array                   # int32 entity id (creation order)
  is_new_N: jax.Array                   # bool first occurrence of the entity
  entities_before_N: jax.Array          # int32 K_i
  occurrences_before_N: jax.Array       # int32 n_k before this sentence
  template_N: jax.Array                 # int32 t
  template_count_before_N: jax.Array    # int32 c_t
  synonym_NxF: jax.Array                # int32 synonym u of slot f, -1 for f >= F_t
  synonym_count_before_NxF: jax.Array   # int32 c_{t,f,u} (0 where unused)
  attribute_N: jax.Array                # int32 a(t)
  value_N: jax.Array                    # int32 v_{k, a(t)}
  first_reveal_N: jax.Array             # bool (k, a(t)) revealed for the first time
  length_N: jax.Array                   # int32 tokens in the sentence


def init_stream(spec: DataSpec, capacity: int) -> StreamState:
  """Empty state for a stream of at most `capacity` sentences."""
  E = spec.max_entities(capacity)
  return StreamState(
      crp=pycrp.crp_init(capacity),
      entity_counts_E=jnp.zeros((E,), jnp.int32),
      fact_counts_ExA=jnp.zeros((E, spec.num_attributes), jnp.int32),
      template_counts_T=jnp.zeros((spec.num_templates,), jnp.int32),
      synonym_counts_TxFxS=jnp.zeros(
          (spec.num_templates, spec.max_fillers, spec.synonyms_per_slot), jnp.int32))


def rank_within_groups(keys_N: jax.Array, valid_N: jax.Array | None = None) -> jax.Array:
  """For each position, how many earlier positions hold the same key. int32 [N].

  A stable sort groups equal keys in stream order; the rank is the distance to
  the group start. O(N log N), no loop. Invalid positions get rank 0 and do not count.
  """
  n = keys_N.shape[0]
  if valid_N is not None:
    keys_N = jnp.where(valid_N, keys_N, jnp.iinfo(keys_N.dtype).max)
  order = jnp.argsort(keys_N, stable=True)
  sorted_keys = keys_N[order]
  pos = jnp.arange(n, dtype=jnp.int32)
  is_start = jnp.concatenate([jnp.ones((1,), bool), sorted_keys[1:] != sorted_keys[:-1]])
  start = jax.lax.cummax(jnp.where(is_start, pos, 0))
  rank = jnp.zeros((n,), jnp.int32).at[order].set(pos - start)
  return rank if valid_N is None else jnp.where(valid_N, rank, 0)


def rank_within_small_groups(keys_N: jax.Array, num_keys: int) -> jax.Array:
  """rank_within_groups for keys in [0, num_keys) with num_keys small: one-hot cumsum, no sort."""
  onehot_NxK = (keys_N[:, None] == jnp.arange(num_keys, dtype=keys_N.dtype)).astype(jnp.int32)
  before_NxK = jnp.cumsum(onehot_NxK, 0) - onehot_NxK
  return jnp.take_along_axis(before_NxK, keys_N[:, None], 1)[:, 0]


def synonym_ranks(template_N, template_rank_N, synonym_NxF, num_templates: int,
                  num_synonyms: int) -> jax.Array:
  """Earlier uses of the same (template, slot, synonym), per sentence and slot. int32 [N, F].

  Counting sort by template (offset of the template + rank within it), then a
  one-hot cumsum over synonyms within each template's run, per slot.
  """
  n = template_N.shape[0]
  sizes_T = jnp.zeros((num_templates,), jnp.int32).at[template_N].add(1)
  dest_N = jnp.cumsum(sizes_T)[template_N] - sizes_T[template_N] + template_rank_N
  syn_sorted = jnp.zeros_like(synonym_NxF).at[dest_N].set(synonym_NxF)
  onehot = (syn_sorted[..., None] == jnp.arange(num_synonyms)).astype(jnp.int32)  # [N, F, S]
  before = jnp.cumsum(onehot, 0) - onehot
  run_start_N = dest_N - template_rank_N
  rank_sorted = before - before[jnp.zeros((n,), jnp.int32).at[dest_N].set(run_start_N)]
  rank_NxF = jnp.take_along_axis(rank_sorted[dest_N], jnp.maximum(synonym_NxF, 0)[..., None],
                                 -1)[..., 0]
  return jnp.where(synonym_NxF >= 0, rank_NxF, 0)


def _draw_syntax(spec: DataSpec, world: World, index_N: jax.Array):
  """Template and synonyms of each sentence by inverse CDF, pure in (seed, sentence index)."""
  F = spec.max_fillers
  cdf_T = jnp.cumsum(world.theta_T)[:-1]                  # [T-1]
  cdf_TxFxS = jnp.cumsum(world.theta_TxFxS, -1)[..., :-1]  # [T, F, S-1]
  u_Nx1F = jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(world.key_syntax, i),
                                                 (1 + F,), jnp.float64))(index_N)
  template_N = (u_Nx1F[:, :1] >= cdf_T[None, :]).sum(-1, dtype=jnp.int32)
  synonym_NxF = (u_Nx1F[:, 1:, None] >= cdf_TxFxS[template_N]).sum(-1, dtype=jnp.int32)
  used_NxF = jnp.arange(F)[None, :] < world.num_fillers_T[template_N][:, None]
  return template_N, jnp.where(used_NxF, synonym_NxF, -1)


class RawSentences(NamedTuple):
  """The draws of N sentences before any counting (see Sentences for the fields)."""
  index_N: jax.Array
  entity_N: jax.Array
  is_new_N: jax.Array
  template_N: jax.Array
  synonym_NxF: jax.Array
  attribute_N: jax.Array
  value_N: jax.Array
  length_N: jax.Array


def draw_sentences(spec: DataSpec, world: World, crp: pycrp.CRPState, max_entities: int,
                   num: int) -> tuple[pycrp.CRPState, RawSentences]:
  """Entity, template, synonyms and value of the next `num` sentences."""
  crp_after, entity_N, is_new_N = pycrp.pycrp_draw(spec.alpha, spec.beta, max_entities,
                                                   world.key_entities, crp, num)
  index_N = crp.index + jnp.arange(num, dtype=jnp.int32)
  return crp_after, sentences_of(spec, world, index_N, entity_N, is_new_N)


def sentences_of(spec: DataSpec, world: World, index_N: jax.Array, entity_N: jax.Array,
                 is_new_N: jax.Array) -> RawSentences:
  """The sentences of given entities at given sentence indices: syntax (pure in the
  index), the revealed attribute, its value and the length in tokens."""
  template_N, synonym_NxF = _draw_syntax(spec, world, index_N)
  attribute_N = world.attribute_T[template_N]
  value_N = fact_values(spec, world, entity_N, attribute_N)
  length_N = (spec.name_length + world.num_fillers_T[template_N] + 2).astype(jnp.int32)
  return RawSentences(index_N, entity_N, is_new_N, template_N, synonym_NxF, attribute_N,
                      value_N, length_N)


def count_history(spec: DataSpec, state: StreamState,
                  raw: RawSentences) -> tuple[StreamState, Sentences]:
  """Adds the counts before each sentence (vectorised) and updates the stream's counts.

  `state.crp` is left as it is: `generate_sentences` replaces it.
  """
  T, F, S, A = spec.num_templates, spec.max_fillers, spec.synonyms_per_slot, spec.num_attributes
  entity_N, template_N, synonym_NxF = raw.entity_N, raw.template_N, raw.synonym_NxF
  entities_before_N = state.crp.num_entities + jnp.cumsum(raw.is_new_N) - raw.is_new_N
  occurrences_before_N = state.entity_counts_E[entity_N] + rank_within_groups(entity_N)
  template_rank_N = rank_within_small_groups(template_N, T)
  template_count_before_N = state.template_counts_T[template_N] + template_rank_N
  used_NxF = synonym_NxF >= 0
  syn_key_NxF = (template_N[:, None] * F + jnp.arange(F)[None, :]) * S + synonym_NxF
  syn_rank = synonym_ranks(template_N, template_rank_N, synonym_NxF, T, S)
  syn_base = state.synonym_counts_TxFxS.reshape(-1)[jnp.where(used_NxF, syn_key_NxF, 0)]
  synonym_count_before_NxF = jnp.where(used_NxF, syn_base + syn_rank, 0)
  first_reveal_N = (state.fact_counts_ExA[entity_N, raw.attribute_N] == 0) & (
      rank_within_groups(entity_N * A + raw.attribute_N) == 0)

  new_state = StreamState(
      crp=state.crp,
      entity_counts_E=state.entity_counts_E.at[entity_N].add(1),
      fact_counts_ExA=state.fact_counts_ExA.at[entity_N, raw.attribute_N].add(1),
      template_counts_T=state.template_counts_T.at[template_N].add(1),
      synonym_counts_TxFxS=state.synonym_counts_TxFxS.reshape(-1).at[
          jnp.where(used_NxF, syn_key_NxF, T * F * S)].add(1, mode="drop").reshape(T, F, S))
  sentences = Sentences(
      index_N=raw.index_N, entity_N=entity_N, is_new_N=raw.is_new_N,
      entities_before_N=entities_before_N.astype(jnp.int32),
      occurrences_before_N=occurrences_before_N.astype(jnp.int32),
      template_N=template_N, template_count_before_N=template_count_before_N.astype(jnp.int32),
      synonym_NxF=synonym_NxF, synonym_count_before_NxF=synonym_count_before_NxF.astype(jnp.int32),
      attribute_N=raw.attribute_N, value_N=raw.value_N, first_reveal_N=first_reveal_N,
      length_N=raw.length_N)
  return new_state, sentences


def generate_sentences(spec: DataSpec, world: World, state: StreamState,
                       num: int) -> tuple[StreamState, Sentences]:
  """Draws the next `num` sentences (static) with their counts. Pure; chunk-invariant."""
  crp, raw = draw_sentences(spec, world, state.crp, state.entity_counts_E.shape[0], num)
  state, sentences = count_history(spec, state, raw)
  return state._replace(crp=crp), sentences
