"""The Bayes code of the sentences a model actually sees, in the order it sees them.

During pretraining with sentence packing, the model reads the stream in the order the
generator draws it, so the generator's own bits are the right prices. Two things break
that equality, and this module mends both:

- the generator runs ahead of training: a `BatchState` holds drawn sentences not yet
  served, whose counts are already in its `StreamState`. `served_state` subtracts them:
  the counts of exactly the sentences served so far (what probes may ask about, and
  what a continuation is conditioned on);
- fine-tuning interleaves other sentences (injected entities) with the stream. Its batch
  is priced by `price_rows`: a scan over the batch's sentences in row order that reads
  each sentence's counts from a `StreamState` of everything priced before (pretraining
  and fine-tuning so far), prices it with `bayes_code_bits`, and adds it to the counts.

Sentences are read back from their tokens (`parse_sentences`): the token ranges are
disjoint, so a sentence's tokens fix its template, synonyms, attribute and value.
Only sentence-packed data is supported (every sentence whole where it is read).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from kcompress.data import roles
from kcompress.data.bayes import bayes_code_bits
from kcompress.data.spec import DataSpec
from kcompress.data.stream import RawSentences, Sentences, StreamState
from kcompress.data.tokens import Tokens, render, sentence_starts
from kcompress.data.world import World


def parse_sentences(spec: DataSpec, world: World, flat: Tokens, start_S: jax.Array,
                    valid_S: jax.Array) -> RawSentences:
  """The draws of the sentences starting at `start_S` in `flat`, read from their tokens.

  Invalid entries get template 0, no synonyms and entity -1.
  """
  L, F, S, V = spec.name_length, spec.max_fillers, spec.synonyms_per_slot, spec.values_per_attribute
  size = flat.token.shape[0]
  tok = lambda pos: flat.token[jnp.clip(pos, 0, size - 1)]
  template = jnp.clip(((tok(start_S + L) - spec.syn0) // S) // F, 0, spec.num_templates - 1)
  template = jnp.where(valid_S, template, 0).astype(jnp.int32)
  f_t, p_t = world.num_fillers_T[template], world.value_pos_T[template]
  f_F = jnp.arange(F, dtype=jnp.int32)[None, :]
  offset_SxF = L + jnp.where(f_F < p_t[:, None], f_F, f_F + 1)
  synonym = (tok(start_S[:, None] + offset_SxF) - spec.syn0) % S
  synonym = jnp.where((f_F < f_t[:, None]) & valid_S[:, None], synonym, -1).astype(jnp.int32)
  value = ((tok(start_S + L + p_t) - spec.val0) % V).astype(jnp.int32)
  at = lambda x: x[jnp.clip(start_S, 0, size - 1)]
  return RawSentences(
      index_N=at(flat.sentence), entity_N=jnp.where(valid_S, at(flat.entity), -1),
      is_new_N=at(flat.is_new) & valid_S, template_N=template, synonym_NxF=synonym,
      attribute_N=world.attribute_T[template], value_N=value,
      length_N=jnp.where(valid_S, L + f_t + 2, 0).astype(jnp.int32))


def _add_counts(spec: DataSpec, state: StreamState, raw: RawSentences, valid_S: jax.Array,
                sign: int) -> StreamState:
  """`state` with the valid sentences' occurrences added (sign +1) or removed (-1)."""
  T, F, S = spec.num_templates, spec.max_fillers, spec.synonyms_per_slot
  E = state.entity_counts_E.shape[0]
  entity = jnp.where(valid_S, raw.entity_N, E)   # out of range: dropped
  syn_key = (raw.template_N[:, None] * F + jnp.arange(F)[None, :]) * S + raw.synonym_NxF
  syn_key = jnp.where(valid_S[:, None] & (raw.synonym_NxF >= 0), syn_key, T * F * S)
  n = valid_S.sum(dtype=jnp.int32)
  new = (raw.is_new_N & valid_S).sum(dtype=jnp.int32)
  return state._replace(
      crp=state.crp._replace(index=state.crp.index + sign * n,
                             num_entities=state.crp.num_entities + sign * new),
      entity_counts_E=state.entity_counts_E.at[entity].add(sign, mode="drop"),
      fact_counts_ExA=state.fact_counts_ExA.at[entity, raw.attribute_N].add(sign, mode="drop"),
      template_counts_T=state.template_counts_T.at[jnp.where(valid_S, raw.template_N, T)].add(
          sign, mode="drop"),
      synonym_counts_TxFxS=state.synonym_counts_TxFxS.reshape(-1).at[syn_key].add(
          sign, mode="drop").reshape(T, F, S))


def served_state(spec: DataSpec, world: World, batch_state) -> StreamState:
  """The counts of the sentences SERVED so far (a `source.BatchState`'s stream minus its
  buffered, unserved sentences). Its `crp.repeats_C` is the generator's: for counting,
  not for drawing."""
  buffer, fill = batch_state.buffer, batch_state.fill
  size = buffer.token.shape[0]
  live = jnp.arange(size) < fill
  start_S, valid_S = sentence_starts(buffer, live, size // spec.min_sentence_length + 1)
  raw = parse_sentences(spec, world, buffer, start_S, valid_S)
  return _add_counts(spec, batch_state.stream, raw, valid_S, -1)


def price_rows(spec: DataSpec, world: World, state: StreamState, rows: Tokens,
               entity_slot: Callable[[jax.Array], jax.Array] = lambda e: e
               ) -> tuple[StreamState, jax.Array]:
  """Bayes bits of sentence-packed rows [B, C] read in row order after everything `state`
  counts: (state with them added, bayes_bits [B, C] float64, 0 on padding).

  `entity_slot` maps entity ids to rows of the state's entity arrays (fine-tuning puts
  injected ids, at the top of the name space, after the stream's).
  """
  B, C = rows.token.shape
  flat = jax.tree.map(lambda x: x.reshape(-1), rows)
  max_sentences = B * (C // spec.min_sentence_length) + 1
  start_S, valid_S = sentence_starts(flat, flat.role != roles.PAD, max_sentences)
  raw = parse_sentences(spec, world, flat, start_S, valid_S)
  raw = raw._replace(entity_N=jnp.where(valid_S, entity_slot(raw.entity_N), -1))
  F = spec.max_fillers

  def one(st: StreamState, x):
    e, t, syn_F, a, v, length, valid = x
    n_e = st.entity_counts_E[e]
    used = syn_F >= 0
    c_syn = st.synonym_counts_TxFxS[t, jnp.arange(F), jnp.maximum(syn_F, 0)]
    s = Sentences(
        index_N=st.crp.index[None], entity_N=e[None], is_new_N=(n_e == 0)[None],
        entities_before_N=st.crp.num_entities[None], occurrences_before_N=n_e[None],
        template_N=t[None], template_count_before_N=st.template_counts_T[t][None],
        synonym_NxF=syn_F[None], synonym_count_before_NxF=jnp.where(used, c_syn, 0)[None],
        attribute_N=a[None], value_N=v[None], first_reveal_N=(st.fact_counts_ExA[e, a] == 0)[None],
        length_N=length[None])
    bits = bayes_code_bits(spec, world, s)
    one_raw = RawSentences(s.index_N, s.entity_N, s.is_new_N, s.template_N, s.synonym_NxF,
                           s.attribute_N, s.value_N, s.length_N)
    st = _add_counts(spec, st, one_raw, valid[None], 1)
    return st, (jax.tree.map(lambda z: z[0], s), jax.tree.map(lambda z: z[0], bits))

  state, (sentences, bits) = jax.lax.scan(one, state, (
      jnp.maximum(raw.entity_N, 0), raw.template_N, raw.synonym_NxF, raw.attribute_N,
      raw.value_N, raw.length_N, valid_S))
  rendered, in_sentence = render(spec, world, sentences, bits)   # [S, L_max]
  j = jnp.arange(spec.max_sentence_length)[None, :]
  dest = jnp.where(in_sentence & valid_S[:, None], start_S[:, None] + j, B * C)
  out = jnp.zeros((B * C,), rendered.bayes_bits.dtype).at[dest.reshape(-1)].set(
      rendered.bayes_bits.reshape(-1), mode="drop")
  return state, out.reshape(B, C)
