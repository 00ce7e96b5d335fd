"""Injected knowledge for fine-tuning: new entities, each repeated a set number of times
(`plan_injection`), or a fixed set of fact sentences repeated for some epochs (`plan_fact_set`,
Gekhman et al.'s design: `kcompress.gekhman`).

Injected entities take the LAST ids of the name space (name_space - J .. name_space - 1),
so the Pitman-Yor stream, which numbers entities in creation order from 0, never
reaches them while it holds fewer than name_space - J entities (the caller checks).
Their names and facts are the world's own (pure in seed, entity, attribute); their
sentences use the world's syntax (templates and synonyms drawn from theta, keyed by
sentence indices from INJECTED_INDEX_BASE up, which the stream never uses). They carry
0 Bayes bits: the Bayes code is a code of the Pitman-Yor stream only.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from kcompress.data import roles
from kcompress.data.bayes import SentenceBits
from kcompress.data.spec import END, DataSpec
from kcompress.data.stream import Sentences, rank_within_groups, sentences_of
from kcompress.data.source import pack_all_sentences
from kcompress.data.tokens import Tokens, pack, render
from kcompress.data.world import World, fact_values

INJECTED_INDEX_BASE = 1 << 30


class Injection(NamedTuple):
  """The injected material, host numpy. J entities, N injected sentences, R rows of C."""
  entity_J: np.ndarray        # int32 injected entity ids
  repetitions_J: np.ndarray   # int32 planned occurrences of each
  entity_N: np.ndarray        # int32 entity of each injected sentence, in delivery order
  attribute_N: np.ndarray     # int32 attribute revealed by each sentence
  row_N: np.ndarray           # int32 row holding each sentence's last token
  rows: Tokens                # Tokens [R, C]; row tails are padding (roles.PAD)


def injected_entities(spec: DataSpec, repetitions, per_count: int) -> tuple[np.ndarray, np.ndarray]:
  """(entity ids [J], planned repetitions [J]): `per_count` entities for each count."""
  reps = np.repeat(np.asarray(repetitions, np.int32), per_count)
  return (spec.name_space - len(reps) + np.arange(len(reps))).astype(np.int32), reps


def plan_injection(spec: DataSpec, world: World, repetitions, per_count: int,
                   seed: int) -> Injection:
  """Every injected occurrence, shuffled (spread over the run), rendered and cut into rows."""
  entity_J, reps_J = injected_entities(spec, repetitions, per_count)
  occurrences = np.repeat(entity_J, reps_J)
  entity_N = np.random.default_rng(seed).permutation(occurrences).astype(np.int32)
  n = len(entity_N)
  if n == 0:
    empty = np.zeros((0,), np.int32)
    rows = Tokens(*(np.zeros((0, spec.context_length), dt) for dt in
                    (np.int32,) * 5 + (bool, bool, np.float64)))
    return Injection(entity_J, reps_J, empty, empty, empty, rows)
  with jax.enable_x64(True):
    flat, attribute_N, length_N = _render_injected(spec, world, jnp.asarray(entity_N))
    total = int(length_N.sum())
    C = spec.context_length
    if spec.packing == "sentence":
      rows = pack_all_sentences(spec, flat, total, n)
    else:
      num_rows = -(-total // C)
      flat = jax.device_get(flat)
      pad = np.arange(num_rows * C) >= total
      flat = jax.tree.map(lambda x: x[:num_rows * C], flat)
      flat = flat._replace(token=np.where(pad, END, flat.token),
                           role=np.where(pad, roles.PAD, flat.role))
      rows = jax.tree.map(lambda x: np.asarray(x).reshape(num_rows, C), flat)
    attribute_N = np.asarray(attribute_N, np.int32)
  return _injection(entity_J, reps_J, entity_N, attribute_N, rows)


def plan_fact_set(spec: DataSpec, world: World, entity_X, attribute_X, template_X,
                  synonym_XxF, entity_J, epochs: int, seed: int) -> Injection:
  """X fact sentences (each with its own template and synonyms) delivered `epochs` times,
  in a fresh order every epoch (keyed by `seed`), rendered and cut into rows. `entity_J`:
  the injected (new) entities among them (the top of the name space); the others are
  entities of the stream. Every example renders the same sentence in every epoch."""
  order = [np.random.default_rng((seed, e)).permutation(len(entity_X)) for e in range(epochs)]
  pick = np.concatenate(order).astype(np.int64) if order else np.zeros((0,), np.int64)
  entity_J = np.asarray(entity_J, np.int32)
  reps = np.array([epochs * int(np.sum(np.asarray(entity_X) == k)) for k in entity_J], np.int32)
  if len(pick) == 0:
    return plan_injection(spec, world, (), 0, seed)._replace(entity_J=entity_J,
                                                             repetitions_J=reps)
  entity_N = np.asarray(entity_X, np.int32)[pick]
  syntax = (np.asarray(template_X, np.int32)[pick], np.asarray(synonym_XxF, np.int32)[pick])
  with jax.enable_x64(True):
    flat, attribute_N, length_N = _render_injected(
        spec, world, jnp.asarray(entity_N), jnp.asarray(np.asarray(attribute_X, np.int32)[pick]),
        syntax, first_new=int(entity_J.min()) if len(entity_J) else spec.name_space)
    rows = pack_all_sentences(spec, flat, int(length_N.sum()), len(entity_N))
  return _injection(entity_J, reps, entity_N, np.asarray(attribute_N, np.int32), rows)


def _injection(entity_J, reps_J, entity_N, attribute_N, rows) -> Injection:
  """The Injection of rendered rows: each sentence's row found from its tokens."""
  row_R = np.broadcast_to(np.arange(rows.token.shape[0])[:, None], rows.token.shape)
  row_N = np.zeros(len(entity_N), np.int32)
  real = rows.role != roles.PAD
  np.maximum.at(row_N, rows.sentence[real] - INJECTED_INDEX_BASE, row_R[real])
  return Injection(entity_J, reps_J, entity_N, attribute_N, row_N, rows)


def _render_injected(spec: DataSpec, world: World, entity_N: jax.Array, attribute_N=None,
                     syntax=None, first_new: int = 0):
  """Flat tokens of injected sentences: the templates of their sentence indices (from
  INJECTED_INDEX_BASE), or the given attributes with `syntax` = (template, synonyms)."""
  n = entity_N.shape[0]
  index_N = INJECTED_INDEX_BASE + jnp.arange(n, dtype=jnp.int32)
  is_new = (rank_within_groups(entity_N) == 0) & (entity_N >= first_new)
  raw = sentences_of(spec, world, index_N, entity_N, is_new)
  if syntax is not None:
    template_N, synonym_NxF = (jnp.asarray(x) for x in syntax)
    raw = raw._replace(template_N=template_N, synonym_NxF=synonym_NxF, attribute_N=attribute_N,
                       value_N=fact_values(spec, world, entity_N, attribute_N),
                       length_N=(spec.name_length + jnp.asarray(world.num_fillers_T)[template_N] + 2
                                 ).astype(jnp.int32))
  zeros_N = jnp.zeros((n,), jnp.int32)
  sentences = Sentences(
      index_N=index_N, entity_N=entity_N, is_new_N=raw.is_new_N, entities_before_N=zeros_N,
      occurrences_before_N=zeros_N, template_N=raw.template_N, template_count_before_N=zeros_N,
      synonym_NxF=raw.synonym_NxF, synonym_count_before_NxF=jnp.zeros_like(raw.synonym_NxF),
      attribute_N=raw.attribute_N, value_N=raw.value_N,
      first_reveal_N=jnp.zeros((n,), bool), length_N=raw.length_N)
  zf = jnp.zeros((n,), jnp.float64)
  bits = SentenceBits(zf, zf, zf, jnp.zeros(raw.synonym_NxF.shape, jnp.float64), zf)
  rendered, valid = render(spec, world, sentences, bits)
  size = n * spec.max_sentence_length + spec.context_length   # room to pad the last row
  return pack(rendered, valid, raw.length_N, size), raw.attribute_N, raw.length_N
