"""Entry points of the generator: one-shot streams, per-seed vmaps, and training batches.

All data functions trace and run with 64-bit types enabled (Bayes bits are float64;
every integer array is int32 explicitly), so calling them is always wrapped in
`jax.enable_x64(True)`: the same config and seed give the same numbers everywhere.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from kcompress.data import roles
from kcompress.data.bayes import SentenceBits, bayes_code_bits
from kcompress.data.spec import END, DataSpec
from kcompress.data.stream import (RawSentences, Sentences, StreamState, count_history,
                                   generate_sentences, init_stream, rank_within_groups)
from kcompress.data.tokens import Tokens, first_name_tokens, pack, render, sentence_starts
from kcompress.data.world import World, draw_world, value_log2_probs


def x64(fn):
  """Runs `fn` (tracing and execution) with 64-bit types enabled."""
  @functools.wraps(fn)
  def wrapped(*args, **kwargs):
    with jax.enable_x64(True):
      return fn(*args, **kwargs)
  return wrapped


def host_world(spec: DataSpec, seed: int):
  """The World of `seed` as host numpy (jit constants wherever the data step runs)."""
  return jax.device_get(x64(draw_world)(spec, jax.random.PRNGKey(seed)))


class Stream(NamedTuple):
  """A whole stream of N sentences. tokens: flat Tokens of num_tokens (host numpy)."""
  world: World
  state: StreamState
  sentences: Sentences
  bits: SentenceBits
  tokens: Tokens


@functools.partial(jax.jit, static_argnums=(0, 2))
def build_stream(spec: DataSpec, key: jax.Array, num_sentences: int):
  """(world, state, sentences, bits, flat tokens padded to N * L_max) of one seed key."""
  world = draw_world(spec, key)
  state, sentences = generate_sentences(spec, world, init_stream(spec, num_sentences),
                                        num_sentences)
  bits = bayes_code_bits(spec, world, sentences)
  rendered, valid = render(spec, world, sentences, bits)
  flat = pack(rendered, valid, sentences.length_N, num_sentences * spec.max_sentence_length)
  return world, state, sentences, bits, flat


@x64
def generate_stream(spec: DataSpec, seed: int, num_sentences: int) -> Stream:
  """The first `num_sentences` sentences of seed `seed`, rendered and packed (numpy)."""
  out = jax.device_get(build_stream(spec, jax.random.PRNGKey(seed), num_sentences))
  world, state, sentences, bits, flat = out
  n_tok = int(np.sum(sentences.length_N))
  flat = jax.tree.map(lambda x: x[:n_tok], flat)
  if bool(state.crp.overflow):
    raise ValueError("config.data.name_length: the stream created more entities than the "
                     "name space holds; raise name_alphabet or name_length")
  return Stream(world, state, sentences, bits, flat)


@x64
def generate_streams(spec: DataSpec, seeds, num_sentences: int):
  """Independent streams for several seeds at once (vmap over the seed key).

  Returns device arrays with a leading seed axis; flat tokens padded to N * L_max
  (each seed's true token count is sentences.length_N.sum(-1)).
  """
  keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
  return jax.vmap(lambda k: build_stream(spec, k, num_sentences))(keys)


class SentenceParts(NamedTuple):
  """Per-sentence facts of a stream that the data laws and the reference learners need
  (numpy [N]): the Bayes bits by part (float64 bits), the entity, whether it is new, its
  occurrences before the sentence, whether the fact is revealed for the first time, the
  attribute, the value's prior bits -log2 H_a(v) and the sentence's length in tokens."""
  entity_bits: np.ndarray
  name_bits: np.ndarray
  value_bits: np.ndarray
  entity: np.ndarray
  is_new: np.ndarray
  occurrences_before: np.ndarray
  first_reveal: np.ndarray
  attribute: np.ndarray
  value_prior_bits: np.ndarray
  length: np.ndarray


@functools.partial(jax.jit, static_argnums=(0, 2))
def _sentence_parts(spec: DataSpec, key: jax.Array, num_sentences: int) -> SentenceParts:
  world = draw_world(spec, key)
  _, s = generate_sentences(spec, world, init_stream(spec, num_sentences), num_sentences)
  bits = bayes_code_bits(spec, world, s)
  prior = -jnp.asarray(value_log2_probs(spec))[s.value_N]
  return SentenceParts(bits.entity_N, bits.name_N, bits.value_N, s.entity_N, s.is_new_N,
                       s.occurrences_before_N, s.first_reveal_N, s.attribute_N, prior,
                       s.length_N)


@x64
def sentence_parts(spec: DataSpec, seed_or_key, num_sentences: int) -> SentenceParts:
  """The first `num_sentences` sentences of a stream (seed int, or a PRNG key) without
  rendering them: the same sentences and Bayes bits as `generate_stream` (host numpy)."""
  key = (jax.random.PRNGKey(seed_or_key) if isinstance(seed_or_key, (int, np.integer))
         else seed_or_key)
  out = jax.device_get(_sentence_parts(spec, key, num_sentences))
  return SentenceParts(*(np.asarray(v) for v in out))


# ---------------------------------------------------------------- training batches


class BatchState(NamedTuple):
  """Stream state plus rendered-but-unserved tokens. Buffer size: B*C + chunk*L_max."""
  stream: StreamState
  buffer: Tokens
  fill: jax.Array   # int32: valid tokens at the front of the buffer


def chunk_sentences(spec: DataSpec, batch_size: int) -> int:
  """Sentences drawn per refill: always enough for one batch of B*C tokens."""
  return -(-batch_size * spec.context_length // spec.min_sentence_length) + 1


def batch_capacity(spec: DataSpec, batch_size: int, num_batches: int) -> int:
  """Most sentences a run of `num_batches` batches can draw (one refill per batch at most)."""
  return (num_batches + 1) * chunk_sentences(spec, batch_size)


def batch_init(spec: DataSpec, batch_size: int, num_batches: int,
               capacity: int | None = None) -> BatchState:
  """Empty batch state with room for `num_batches` batches, or for `capacity` sentences
  when given (the shape a checkpoint was saved with). Shapes only bound the stream: its
  sentences do not depend on them."""
  size = batch_size * spec.context_length + chunk_sentences(spec, batch_size) * spec.max_sentence_length
  zeros = Tokens(*(jnp.zeros((size,), dt) for dt in
                   (jnp.int32,) * 5 + (bool, bool, jnp.float64)))
  if capacity is None:
    capacity = batch_capacity(spec, batch_size, num_batches)
  return BatchState(init_stream(spec, capacity), zeros, jnp.zeros((), jnp.int32))


def pack_sentences(flat: Tokens, fill: jax.Array, num_rows: int, context: int,
                   max_sentences: int, rows_used: jax.Array | int | None = None
                   ) -> tuple[Tokens, jax.Array]:
  """Greedy sentence packing of the whole sentences in flat[:fill] into rows.

  Sentences are taken in order; a sentence that does not fit in the rest of the current
  row starts the next row, whose tail is left as padding (token END, role PAD, 0 Bayes
  bits, entity/attribute/sentence -1). The layout depends on the sentence lengths alone,
  so packing a stream in pieces gives the rows of packing it at once. Only the first
  `max_sentences` sentences are considered (static; enough for `num_rows` rows) and only
  rows < `rows_used` (default all) are served.

  Returns (rows: Tokens [num_rows, context], tokens consumed from the front of `flat`).
  """
  size = flat.token.shape[0]
  rows_used = num_rows if rows_used is None else rows_used
  pos = jnp.arange(size, dtype=jnp.int32)
  live = pos < fill
  start_S1, _ = sentence_starts(flat, live, max_sentences + 1)
  start_S1 = jnp.minimum(start_S1, fill)   # missing starts at `fill`: zero-length, unavailable
  length_S = jnp.diff(start_S1)
  avail_S = start_S1[:-1] < fill

  def place(carry, x):
    row, offset = carry
    length, avail = x
    wrap = offset + length > context
    row, offset = jnp.where(wrap, row + 1, row), jnp.where(wrap, 0, offset)
    return (row, offset + length), (jnp.where(avail, row, num_rows), offset)

  zero = jnp.zeros((), jnp.int32)
  _, (row_S, offset_S) = jax.lax.scan(place, (zero, zero), (length_S, avail_S))
  served_S = row_S < rows_used
  consumed = jnp.sum(jnp.where(served_S, length_S, 0), dtype=jnp.int32)
  k_P = jnp.clip(jnp.searchsorted(start_S1, pos, side="right") - 1, 0, max_sentences - 1)
  dest = row_S[k_P] * context + offset_S[k_P] + pos - start_S1[k_P]
  dest = jnp.where(live & (pos < consumed), dest, num_rows * context)
  pad = Tokens(token=jnp.full((num_rows * context,), END, jnp.int32),
               role=jnp.full((num_rows * context,), roles.PAD, jnp.int32),
               entity=jnp.full((num_rows * context,), -1, jnp.int32),
               attribute=jnp.full((num_rows * context,), -1, jnp.int32),
               sentence=jnp.full((num_rows * context,), -1, jnp.int32),
               is_new=jnp.zeros((num_rows * context,), bool),
               first_reveal=jnp.zeros((num_rows * context,), bool),
               bayes_bits=jnp.zeros((num_rows * context,), flat.bayes_bits.dtype))
  rows = jax.tree.map(lambda buf, x: buf.at[dest].set(x, mode="drop").reshape(num_rows, context),
                      pad, flat)
  return rows, consumed


def max_sentences_per_rows(spec: DataSpec, num_rows: int) -> int:
  """Most sentences `num_rows` sentence-packed rows can hold (+1: the next one's start)."""
  return num_rows * (spec.context_length // spec.min_sentence_length) + 1


def next_batch(spec: DataSpec, world: World, state: BatchState, batch_size: int,
               rows_used: jax.Array | int | None = None) -> tuple[BatchState, Tokens]:
  """The next B rows of the stream. Pure; jit with static spec, batch_size.

  packing "sentence": rows of whole sentences (`pack_sentences`); "stream": rows of C
  consecutive stream tokens. `rows_used` (sentence packing only): only rows < rows_used
  take sentences from the stream; the other rows are padding (the caller fills them).
  """
  need = batch_size * spec.context_length
  size = state.buffer.token.shape[0]
  chunk = chunk_sentences(spec, batch_size)

  def refill(st: BatchState) -> BatchState:
    stream, sentences = generate_sentences(spec, world, st.stream, chunk)
    rendered, valid = render(spec, world, sentences, bayes_code_bits(spec, world, sentences))
    buffer = pack(rendered, valid, sentences.length_N, size, start=st.fill, into=st.buffer)
    return BatchState(stream, buffer, st.fill + sentences.length_N.sum(dtype=jnp.int32))

  # Either packing takes at most `need` tokens, and `need` queued tokens always fill B rows.
  state = jax.lax.cond(state.fill < need, refill, lambda st: st, state)
  if spec.packing == "sentence":
    batch, consumed = pack_sentences(state.buffer, state.fill, batch_size, spec.context_length,
                                     max_sentences_per_rows(spec, batch_size), rows_used)
  else:
    if rows_used is not None:
      raise ValueError("rows_used needs config.data.packing='sentence'")
    batch = jax.tree.map(lambda x: x[:need].reshape(batch_size, spec.context_length),
                         state.buffer)
    consumed = jnp.asarray(need, jnp.int32)
  rest = jax.tree.map(
      lambda x: jax.lax.dynamic_slice_in_dim(jnp.concatenate([x, jnp.zeros((size,), x.dtype)]),
                                             consumed, size), state.buffer)
  return BatchState(state.stream, rest, state.fill - consumed), batch


def bayes_bits_by_role(batch: Tokens) -> jax.Array:
  """Bayes bits of a batch [B, C] summed by token role, then the entity-choice part:
  float64 [NUM_ROLES + 1]; the last entry (roles.ENTITY_PART) is the bits on the first name
  tokens, a part of the name role's bits (with name_length 1 it holds the new-name bits too)."""
  onehot = jax.nn.one_hot(batch.role.reshape(-1), roles.NUM_ROLES, dtype=jnp.float64)
  by_role = batch.bayes_bits.reshape(-1) @ onehot
  entity = jnp.where(first_name_tokens(batch.role), batch.bayes_bits, 0.0).sum()
  return jnp.concatenate([by_role, entity[None]])


# ----------------------------------------------------------- finite dataset mode


def pack_all_sentences(spec: DataSpec, flat: Tokens, num_tokens: int,
                       num_sentences: int) -> Tokens:
  """All `num_sentences` whole sentences of flat[:num_tokens], sentence-packed into as many
  rows as they need: Tokens [R, C] (host numpy; the last row's tail is padding)."""
  C = spec.context_length
  # Every row but the last holds > C - L_max tokens, which bounds the number of rows.
  bound = num_tokens // (C - spec.max_sentence_length + 1) + 1
  packer = jax.jit(pack_sentences, static_argnums=(2, 3, 4))
  with jax.enable_x64(True):
    rows, _ = jax.device_get(packer(jax.tree.map(jnp.asarray, flat), num_tokens, bound, C,
                                    num_sentences))
  used = (rows.role != roles.PAD).any(-1)
  return jax.tree.map(lambda x: x[used], rows)


@x64
def dataset_rows(spec: DataSpec, seed: int, num_sentences: int) -> tuple[Tokens, Stream]:
  """A finite dataset of N sentences packed into rows of C tokens: (Tokens [R, C], stream).

  Sentence packing keeps every sentence (the last row is padded); stream packing drops
  the remainder past the last full row. Bayes bits are those of stream order.
  """
  stream = generate_stream(spec, seed, num_sentences)
  n_tok, C = len(stream.tokens.token), spec.context_length
  if spec.packing == "sentence":
    rows = pack_all_sentences(spec, stream.tokens, n_tok, num_sentences)
  else:
    num_rows = n_tok // C
    rows = jax.tree.map(lambda x: x[:num_rows * C].reshape(num_rows, -1), stream.tokens)
  if rows.token.shape[0] < 1:
    raise ValueError(f"config.data.num_sentences={num_sentences}: fewer tokens than one row "
                     f"of config.data.context_length={C}")
  return rows, stream


def epoch_order(key: jax.Array, epoch, num_rows: int, batch_size: int) -> jax.Array:
  """Rows visited in epoch `epoch`, in order: a permutation keyed by (key, epoch), cut to
  whole batches (the last R mod B rows of the permutation are left out)."""
  perm = jax.random.permutation(jax.random.fold_in(key, epoch), num_rows)
  return perm[:(num_rows // batch_size) * batch_size]


@functools.partial(jax.jit, static_argnums=(0, 8))
def _sequence_bits(spec, world, entity_N, template_N, synonym_NxF, attribute_N, value_N,
                   length_N, capacity):
  """Bayes bits [N, L_max] of the given sentences read in the given order, from nothing."""
  raw = RawSentences(
      index_N=jnp.arange(entity_N.shape[0], dtype=jnp.int32), entity_N=entity_N,
      is_new_N=rank_within_groups(entity_N) == 0, template_N=template_N,
      synonym_NxF=synonym_NxF, attribute_N=attribute_N, value_N=value_N, length_N=length_N)
  _, sentences = count_history(spec, init_stream(spec, capacity), raw)
  rendered, _ = render(spec, world, sentences, bayes_code_bits(spec, world, sentences))
  return rendered.bayes_bits


@x64
def bayes_bits_in_order(spec: DataSpec, stream: Stream, rows: Tokens, order_R) -> np.ndarray:
  """Bayes bits of every token of sentence-packed `rows` when the rows are read in the
  order `order_R` (rows left out get 0): float64 [R, C].

  The Bayes code is a code of a sequence: reading the dataset's sentences in another order
  prices them with other counts (the total over all sentences is order-free, since every
  part is exchangeable, but the per-step curve is not). This is the code of exactly the
  sequence the model trains on in its first epoch.
  """
  rows = jax.tree.map(np.asarray, rows)
  order_R = np.asarray(order_R)
  sent_RxC = rows.sentence[order_R]
  flat = sent_RxC.reshape(-1)
  seq = flat[(flat >= 0) & np.concatenate([[True], flat[1:] != flat[:-1]])]
  s = jax.tree.map(np.asarray, stream.sentences)
  bits_NxL = np.asarray(_sequence_bits(spec, stream.world, s.entity_N[seq], s.template_N[seq],
                                       s.synonym_NxF[seq], s.attribute_N[seq], s.value_N[seq],
                                       s.length_N[seq], len(s.index_N)))
  new_pos = np.full(len(s.index_N), -1, np.int64)
  new_pos[seq] = np.arange(len(seq))
  C = sent_RxC.shape[1]
  col = np.arange(C)[None, :]
  starts = (col == 0) | np.concatenate(
      [np.ones((len(order_R), 1), bool), sent_RxC[:, 1:] != sent_RxC[:, :-1]], 1)
  within = col - np.maximum.accumulate(np.where(starts, col, 0), axis=1)
  real = sent_RxC >= 0
  out = np.zeros(rows.token.shape, np.float64)
  out[order_R] = np.where(real, bits_NxL[new_pos[np.maximum(sent_RxC, 0)],
                                         np.minimum(within, bits_NxL.shape[1] - 1)], 0.0)
  return out


def dataset_batch(rows: Tokens, key: jax.Array, step: jax.Array, batch_size: int) -> Tokens:
  """Batch `step` of an epoch loop over the rows, reshuffled every epoch.

  Epoch e visits the rows in `epoch_order(key, e)`, B rows per step. Bayes bits are kept
  in epoch 0 only (the rows should hold `bayes_bits_in_order` of epoch 0's order): the
  Bayes code of data already seen is not a stream code.
  """
  num_rows = rows.token.shape[0]
  per_epoch = num_rows // batch_size
  epoch, pos = step // per_epoch, step % per_epoch
  order = epoch_order(key, epoch, num_rows, batch_size)
  idx = jax.lax.dynamic_slice(order, (pos * batch_size,), (batch_size,))
  batch = jax.tree.map(lambda x: jnp.asarray(x)[idx], rows)
  return batch._replace(bayes_bits=jnp.where(epoch == 0, batch.bayes_bits, 0.0))


def grow_batch_state(spec: DataSpec, state: BatchState, batch_size: int,
                     num_batches: int, max_entities: int | None = None) -> BatchState:
  """`state` with room for `num_batches` more batches of `batch_size` rows (fine-tuning).

  Stream arrays are zero-padded to the larger capacity (their semantics is unchanged:
  counts of entities not yet created are 0) and the unserved tokens move into a buffer
  sized for the new batch size. The continued stream is the same as if the capacity
  had been large from the start. `max_entities` caps the entity ids the stream may
  create (beyond it the generator flags an overflow instead).
  """
  with jax.enable_x64(True):
    stream = state.stream
    capacity = int(stream.crp.index) + batch_capacity(spec, batch_size, num_batches)
    entities = spec.max_entities(capacity)
    if max_entities is not None:
      if int(stream.crp.num_entities) > max_entities:
        raise ValueError(f"the stream already holds {int(stream.crp.num_entities)} entities, "
                         f"more than the cap {max_entities}")
      entities = min(entities, max_entities)

    def pad(x, n):
      if n <= x.shape[0]:   # cutting: only never-created entities' zero counts go
        return x[:n]
      return jnp.concatenate([x, jnp.zeros((n - x.shape[0],) + x.shape[1:], x.dtype)])

    stream = stream._replace(
        crp=stream.crp._replace(repeats_C=pad(stream.crp.repeats_C, capacity)),
        entity_counts_E=pad(stream.entity_counts_E, entities),
        fact_counts_ExA=pad(stream.fact_counts_ExA, entities))
    fresh = batch_init(spec, batch_size, 1).buffer
    fill = int(state.fill)
    if fill > fresh.token.shape[0]:
      raise ValueError(f"cannot grow a batch state holding {fill} unserved tokens into a "
                       f"buffer of {fresh.token.shape[0]}")
    buffer = jax.tree.map(lambda new, old: new.at[:fill].set(old[:fill]), fresh, state.buffer)
    return BatchState(stream, buffer, jnp.asarray(fill, jnp.int32))
