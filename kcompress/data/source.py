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
from kcompress.data.spec import DataSpec
from kcompress.data.stream import Sentences, StreamState, generate_sentences, init_stream
from kcompress.data.tokens import Tokens, pack, render
from kcompress.data.world import World, draw_world


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


def batch_init(spec: DataSpec, batch_size: int, num_batches: int) -> BatchState:
  size = batch_size * spec.context_length + chunk_sentences(spec, batch_size) * spec.max_sentence_length
  zeros = Tokens(*(jnp.zeros((size,), dt) for dt in
                   (jnp.int32,) * 5 + (bool, bool, jnp.float64)))
  return BatchState(init_stream(spec, batch_capacity(spec, batch_size, num_batches)), zeros,
                    jnp.zeros((), jnp.int32))


def next_batch(spec: DataSpec, world: World, state: BatchState,
               batch_size: int) -> tuple[BatchState, Tokens]:
  """The next B rows of C consecutive stream tokens. Pure; jit with static spec, batch_size."""
  need = batch_size * spec.context_length
  size = state.buffer.token.shape[0]
  chunk = chunk_sentences(spec, batch_size)

  def refill(st: BatchState) -> BatchState:
    stream, sentences = generate_sentences(spec, world, st.stream, chunk)
    rendered, valid = render(spec, world, sentences, bayes_code_bits(spec, world, sentences))
    buffer = pack(rendered, valid, sentences.length_N, size, start=st.fill, into=st.buffer)
    return BatchState(stream, buffer, st.fill + sentences.length_N.sum(dtype=jnp.int32))

  state = jax.lax.cond(state.fill < need, refill, lambda st: st, state)
  batch = jax.tree.map(lambda x: x[:need].reshape(batch_size, spec.context_length), state.buffer)
  rest = jax.tree.map(lambda x: jnp.concatenate([x[need:], jnp.zeros((need,), x.dtype)]),
                      state.buffer)
  return BatchState(state.stream, rest, state.fill - need), batch


def bayes_bits_by_role(batch: Tokens) -> jax.Array:
  """Bayes bits of a batch summed by token role: float64 [NUM_ROLES]."""
  onehot = jax.nn.one_hot(batch.role.reshape(-1), roles.NUM_ROLES, dtype=jnp.float64)
  return batch.bayes_bits.reshape(-1) @ onehot


# ----------------------------------------------------------- finite dataset mode


@x64
def dataset_rows(spec: DataSpec, seed: int, num_sentences: int) -> Tokens:
  """A finite dataset of N sentences packed into rows of C tokens: Tokens [R, C] (numpy).

  The remainder past the last full row is dropped.
  """
  stream = generate_stream(spec, seed, num_sentences)
  rows = len(stream.tokens.token) // spec.context_length
  if rows < 1:
    raise ValueError(f"config.data.num_sentences={num_sentences}: fewer tokens than one row "
                     f"of config.data.context_length={spec.context_length}")
  return jax.tree.map(lambda x: x[:rows * spec.context_length].reshape(rows, -1), stream.tokens)


def dataset_batch(rows: Tokens, key: jax.Array, step: jax.Array, batch_size: int) -> Tokens:
  """Batch `step` of an epoch loop over the rows, reshuffled every epoch.

  Epoch e visits the rows in the order of a permutation keyed by (key, e), B rows per
  step, dropping the last R mod B. Bayes bits are kept in epoch 0 only: the Bayes
  code of data already seen is not a stream code.
  """
  num_rows = rows.token.shape[0]
  per_epoch = num_rows // batch_size
  epoch, pos = step // per_epoch, step % per_epoch
  perm = jax.random.permutation(jax.random.fold_in(key, epoch), num_rows)
  idx = jax.lax.dynamic_slice(perm, (pos * batch_size,), (batch_size,))
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
