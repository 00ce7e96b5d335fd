"""Rendering sentences to annotated tokens, and packing them into a token stream.

Sentence layout: NAME (L tokens), filler slots with the VALUE token after the first
p_t fillers, END. Each token carries its annotations (SPEC section 2) and the
Bayes bits placed on it: the entity-choice (PYCRP) bits on the first name token, a new
entity's name bits on the last name token (the same token when name_length is 1),
template bits on the first filler, each slot's bits on its filler, value bits on the
value token, 0 on END. Summed over a sentence they are its exact Bayes code; summed by
role they give the Bayes code of the name / syntax / value parts, and the first name
tokens alone give the entity-choice part (`first_name_tokens`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from kcompress.data import roles
from kcompress.data.bayes import SentenceBits
from kcompress.data.spec import END, DataSpec
from kcompress.data.stream import Sentences
from kcompress.data.world import World, name_codes, name_tokens


class Tokens(NamedTuple):
  """Annotated tokens; every field has the same shape (any leading dims)."""
  token: jax.Array         # int32 token id
  role: jax.Array          # int32 roles.NAME / SYNTAX / VALUE / END
  entity: jax.Array        # int32 entity of the sentence
  attribute: jax.Array     # int32 attribute a(t) of the sentence
  sentence: jax.Array      # int32 global sentence index
  is_new: jax.Array        # bool entity's first occurrence
  first_reveal: jax.Array  # bool (entity, attribute) value revealed for the first time
  bayes_bits: jax.Array    # float64 Bayes code bits placed on this token


def render(spec: DataSpec, world: World, s: Sentences, bits: SentenceBits) -> tuple[Tokens, jax.Array]:
  """Sentences -> (Tokens [N, L_max], valid [N, L_max]); rows padded past each length."""
  L, F = spec.name_length, spec.max_fillers
  n = s.index_N.shape[0]
  j = jnp.arange(spec.max_sentence_length, dtype=jnp.int32)[None, :]   # [1, Lmax]
  f_t = world.num_fillers_T[s.template_N][:, None]                     # [N, 1]
  p_t = world.value_pos_T[s.template_N][:, None]
  q = j - L                                                            # slot position
  is_name = j < L
  is_value = q == p_t
  is_filler = (q >= 0) & (q <= f_t) & ~is_value
  valid = j < s.length_N[:, None]
  filler = jnp.clip(jnp.where(q < p_t, q, q - 1), 0, F - 1)            # [N, Lmax]

  names = name_tokens(spec, name_codes(spec, world, s.entity_N))       # [N, L]
  name_tok = jnp.take_along_axis(names, jnp.clip(j, 0, L - 1).repeat(n, 0), axis=1)
  syn = jnp.take_along_axis(s.synonym_NxF, filler, axis=1)
  slot = s.template_N[:, None] * F + filler
  syn_tok = spec.syn0 + slot * spec.synonyms_per_slot + syn
  val_tok = spec.val0 + s.attribute_N * spec.values_per_attribute + s.value_N
  token = jnp.where(is_name, name_tok, jnp.where(
      is_value, val_tok[:, None], jnp.where(is_filler, syn_tok, END)))
  role = jnp.where(is_name, roles.NAME, jnp.where(
      is_value, roles.VALUE, jnp.where(is_filler, roles.SYNTAX, roles.END)))

  slot_bits = jnp.take_along_axis(bits.slot_NxF, filler, axis=1)
  tok_bits = jnp.where(j == 0, bits.entity_N[:, None], 0.0)
  tok_bits += jnp.where(j == L - 1, bits.name_N[:, None], 0.0)
  tok_bits += jnp.where(is_filler, slot_bits + jnp.where(filler == 0, bits.template_N[:, None], 0.0), 0.0)
  tok_bits += jnp.where(is_value, bits.value_N[:, None], 0.0)

  def per_row(x):
    return jnp.broadcast_to(x[:, None], token.shape)

  out = Tokens(
      token=jnp.where(valid, token, END).astype(jnp.int32),
      role=jnp.where(valid, role, roles.END).astype(jnp.int32),
      entity=per_row(s.entity_N), attribute=per_row(s.attribute_N), sentence=per_row(s.index_N),
      is_new=per_row(s.is_new_N), first_reveal=per_row(s.first_reveal_N),
      bayes_bits=jnp.where(valid, tok_bits, 0.0))
  return out, valid


def pack(tokens: Tokens, valid: jax.Array, length_N: jax.Array, size: int,
         start: jax.Array | int = 0, into: Tokens | None = None) -> Tokens:
  """Concatenates rendered sentences in stream order into flat arrays of `size` tokens.

  Sentence r lands at start + sum(length[:r]); tokens past `size` are dropped.
  Writes into `into` (a flat Tokens of `size`) when given, else into zeros.
  """
  offset_N = start + jnp.cumsum(length_N) - length_N
  dest = jnp.where(valid, offset_N[:, None] + jnp.arange(valid.shape[1])[None, :], size)
  dest = dest.reshape(-1)
  if into is None:
    into = jax.tree.map(lambda x: jnp.zeros((size,), x.dtype), tokens)
  return jax.tree.map(lambda buf, x: buf.at[dest].set(x.reshape(-1), mode="drop"), into, tokens)


def first_name_tokens(role: jax.Array) -> jax.Array:
  """bool, the shape of `role` [..., C]: the first name token of each sentence (a NAME token
  after a non-NAME token of its row, or at the row's start). With sentence packing these
  tokens carry exactly the entity-choice bits of the Bayes code (name_length >= 2)."""
  prev = jnp.concatenate([jnp.full_like(role[..., :1], roles.END), role[..., :-1]], -1)
  return (role == roles.NAME) & (prev != roles.NAME)


def sentence_starts(flat: Tokens, live: jax.Array, max_sentences: int):
  """(start positions int32 [S], valid bool [S]) of the first `max_sentences` sentences
  opening in flat tokens where `live`: a NAME token after a non-NAME token (or at position
  0). Missing entries hold the size of `flat`."""
  role = flat.role
  prev_name = jnp.concatenate([jnp.zeros((1,), bool), role[:-1] == roles.NAME])
  is_start = live & (role == roles.NAME) & ~prev_name
  size = role.shape[0]
  start_S = jnp.nonzero(is_start, size=max_sentences, fill_value=size)[0].astype(jnp.int32)
  return start_S, start_S < size
