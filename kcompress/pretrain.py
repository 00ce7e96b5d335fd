"""Pretraining: the sweep trained from scratch on the stream (or on a finite dataset).

`job(config, setup)` describes the run for the loop (`kcompress.train.run`):

- stream mode (`config.data.num_sentences = 0`): batches are the next rows of one
  infinite Syntax-Knowledge stream. The generator state is sized for the steps left
  (its shapes, not its sentences, depend on the run length) and grows when a resumed
  run is extended. After the run, baselines of exactly the tokens trained on.
- finite mode (N > 0 sentences): the dataset's rows are visited in a fresh permutation
  every epoch; the data state is the step counter alone.
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from kcompress import data, hallucination, metrics
from kcompress.data import price, roles, source, stats as data_stats
from kcompress.errors import UserError
from kcompress.job import DataPipe, Job, model_batch


def stream_overflow(batch_state) -> jax.Array:
  """The generator's overflow flag (a device scalar) of a stream batch state."""
  return batch_state.stream.crp.overflow


def _stream_job(config, setup) -> Job:
  spec, batch_size = setup.spec, config.train.batch_size
  data.check_name_space(spec, source.batch_capacity(spec, batch_size, config.train.num_steps))
  # Captured arrays stay host numpy (jit constants), so the data step runs wherever its
  # state lives: one device, or replicated over a mesh.
  world = source.host_world(spec, config.seed)

  @jax.jit
  def stream_step(state):
    state, batch = source.next_batch(spec, jax.tree.map(jnp.asarray, world), state, batch_size)
    return state, model_batch(batch), source.bayes_bits_by_role(batch)

  def data_like(host):
    capacity = None if host is None else host.get("data_capacity")
    return source.x64(source.batch_init)(spec, batch_size, config.train.num_steps, capacity)

  def fit_data(state, steps_done, num_steps):
    """Room for the steps left: the stream grows (zero-padded counts) when extended."""
    with jax.enable_x64(True):
      capacity = int(state.stream.crp.repeats_C.shape[0])
      needed = int(state.stream.crp.index) + source.batch_capacity(
          spec, batch_size, max(num_steps - steps_done, 0))
      if needed > capacity:
        data.check_name_space(spec, needed)
        state = source.grow_batch_state(spec, jax.device_get(state), batch_size,
                                        num_steps - steps_done)
        capacity = int(state.stream.crp.repeats_C.shape[0])
    return state, capacity

  served = source.x64(jax.jit(
      lambda s: price.served_state(spec, jax.tree.map(jnp.asarray, world), s)))

  def seen_counts(state, steps_done):
    del steps_done
    with jax.enable_x64(True):
      return jax.device_get(served(state))

  return Job(config=config, setup=setup, pipe=DataPipe(data_like(None), source.x64(stream_step),
                                                        world),
             init_states=setup.init_state, data_like=data_like, fit_data=fit_data,
             seen_counts=seen_counts, overflow=stream_overflow,
             next_sentences=hallucination.make_next_sentences(spec, world),
             finish=lambda workdir, host: (
                 finish_stream(spec, config, workdir, host["tokens_seen"]),
                 write_samples(workdir, setup, world, data_like, seen_counts)))


def _baselines_current(workdir: str, num_tokens: int) -> bool:
  path = os.path.join(workdir, "compressors.json")
  if not os.path.exists(path):
    return False
  with open(path) as f:
    return json.load(f).get("num_tokens") == num_tokens


def _dataset_job(config, setup) -> Job:
  spec, batch_size = setup.spec, config.train.batch_size
  world = source.host_world(spec, config.seed)
  rows, stream = source.dataset_rows(spec, config.seed, config.data.num_sentences)
  num_rows = rows.token.shape[0]
  if num_rows < batch_size:
    raise UserError(f"config.data.num_sentences={config.data.num_sentences}: the dataset has "
                    f"{num_rows} rows, fewer than config.train.batch_size={batch_size}")
  with jax.enable_x64(True):
    key = np.asarray(jax.random.fold_in(jax.random.PRNGKey(config.seed), 1))
    if spec.packing == "sentence":   # epoch 0 is priced in the order it is read
      order = source.epoch_order(key, 0, num_rows, batch_size)
      rows = rows._replace(bayes_bits=source.bayes_bits_in_order(spec, stream, rows, order))
  steps_per_epoch = num_rows // batch_size

  @jax.jit
  def finite_step(state):
    batch = source.dataset_batch(rows, key, state["step"], batch_size)
    return {"step": state["step"] + 1}, model_batch(batch), source.bayes_bits_by_role(batch)

  empty = jax.tree.map(np.zeros_like, stream.state)

  @jax.jit
  def count_rows(served_R):
    masked = jax.tree.map(jnp.asarray, rows)
    masked = masked._replace(role=jnp.where(served_R[:, None], masked.role, roles.PAD))
    counts, _ = price.price_rows(spec, jax.tree.map(jnp.asarray, world),
                                 jax.tree.map(jnp.asarray, empty), masked)
    # The dataset's entity process: fresh-entity probes lie beyond all of its entities.
    return counts._replace(crp=jax.tree.map(jnp.asarray, stream.state.crp))
  count_rows = source.x64(count_rows)

  def seen_counts(state, steps_done):
    """Counts of the rows of the batches trained on (every epoch so far)."""
    served = np.zeros(num_rows, bool)
    with jax.enable_x64(True):
      for epoch in range(steps_done // steps_per_epoch + 1):
        done = min(steps_done - epoch * steps_per_epoch, steps_per_epoch) * batch_size
        served[np.asarray(source.epoch_order(key, epoch, num_rows, batch_size))[:done]] = True
      return jax.device_get(count_rows(served))

  # The next prompts of a finite dataset: the stream it was cut from, continued.
  after = jax.jit(lambda st, num: hallucination.draw_after(spec, jax.tree.map(jnp.asarray, world),
                                                           st, num), static_argnums=1)
  grown = _with_room(stream.state, spec)

  init = {"step": jnp.zeros((), jnp.int32)}   # a tree, as orbax saves trees
  return Job(config=config, setup=setup,
             pipe=DataPipe(init, source.x64(finite_step), world, steps_per_epoch),
             init_states=setup.init_state, data_like=lambda host: init,
             fit_data=lambda state, done, steps: (state, None), seen_counts=seen_counts,
             overflow=lambda state: False,
             next_sentences=source.x64(lambda state, num: jax.device_get(after(grown, num))))


def _with_room(stream_state, spec: data.DataSpec):
  """A dataset's final generator state with entity room for as many new entities again
  (counts of entities not yet created are 0), so that draws after it never overflow."""
  extra = min(stream_state.entity_counts_E.shape[0], spec.name_space
              - stream_state.entity_counts_E.shape[0])
  pad = lambda x: np.concatenate([np.asarray(x), np.zeros((extra,) + x.shape[1:], x.dtype)])
  return stream_state._replace(entity_counts_E=pad(stream_state.entity_counts_E),
                               fact_counts_ExA=pad(stream_state.fact_counts_ExA))


def job(config, setup) -> Job:
  """The pretraining run of `config` (validated by `setup`)."""
  return _dataset_job(config, setup) if config.data.num_sentences > 0 else _stream_job(
      config, setup)


def finish_stream(spec: data.DataSpec, config, workdir: str, num_tokens: int) -> None:
  """After a stream run: its baselines (`write_stream_baselines`), the reference learners
  priced on its batches (WORKDIR/reference_learners.json, `kcompress.reference`) and, when
  config.laws.replicates > 0, the Bayes code's data law of its data spec
  (WORKDIR/bayes_laws.json, `kcompress.data.laws`; kept when already measured at the same
  sizes)."""
  from kcompress import reference
  from kcompress.data import laws
  write_stream_baselines(spec, config, workdir, num_tokens)
  reference.write_for_workdir(workdir)
  replicates, sentences = (int(config.get("laws", {}).get(k, 0) or 0)
                           for k in ("replicates", "sentences"))
  if replicates > 0 and not laws.is_current(workdir, replicates, sentences):
    laws.write(laws.bayes_laws(config, replicates, sentences),
               os.path.join(workdir, "bayes_laws.json"))


def write_stream_baselines(spec: data.DataSpec, config, workdir: str, num_tokens: int) -> None:
  """Baselines of exactly the tokens the run trained on, from the regenerated stream.

  WORKDIR/compressors.json: classical compressors' bits. WORKDIR/oracle_ksf.json: the
  oracle structure function of the sentences that started inside those tokens
  (`kcompress.analysis.oracle`). WORKDIR/stream_stats.json: their Heaps curve and counts
  of counts beside independent PYCRP replicates (`kcompress.data.stats.stream_stats`).
  The training batches serve a prefix of the one-shot stream (tested), so the stream is
  regenerated here rather than kept. Skipped when they exist for `num_tokens` already.
  """
  from kcompress import compressors
  from kcompress.analysis import oracle
  if _baselines_current(workdir, num_tokens):   # a finished run resumed again
    return
  num_sentences = num_tokens // spec.min_sentence_length + 1
  stream = data.generate_stream(spec, config.seed, num_sentences)
  tokens = stream.tokens.token[:num_tokens]
  used = int(np.searchsorted(np.cumsum(stream.sentences.length_N), num_tokens, side="left")) + 1
  metrics.write_json(os.path.join(workdir, "oracle_ksf.json"),
                     oracle.oracle_ksf_of_stream(spec, stream, used))
  stats = data_stats.stream_stats(spec.alpha, spec.beta, stream.sentences.entity_N[:used],
                                  stream.sentences.is_new_N[:used])
  metrics.write_json(os.path.join(workdir, "stream_stats.json"), stats)
  metrics.write_json(os.path.join(workdir, "compressors.json"),   # last: marks them done
                     {"num_tokens": int(num_tokens),
                      "bits": compressors.compressed_bits(tokens, spec.vocab_size)})


SAMPLES_PER_WIDTH = 3   # sentences of each width's first seed in WORKDIR/samples.jsonl


def write_samples(workdir: str, setup, world, data_like, seen_counts) -> None:
  """WORKDIR/samples.jsonl: SAMPLES_PER_WIDTH sentences written by each width's first seed at
  the last checkpoint, marked against the world (`kcompress.sampling`; the report shows
  them). Skipped when they exist for that step already, and in multi-process runs."""
  from kcompress import checkpoint, sampling
  if jax.process_count() > 1:   # orbax managers wait for every process; finish runs on one
    return                      # (`python -m kcompress.sample` afterwards, one process)
  step = checkpoint.steps(workdir)[-1]
  path = os.path.join(workdir, "samples.jsonl")
  if os.path.exists(path):
    with open(path) as f:
      first = f.readline()
    if first and json.loads(first).get("step") == step:
      return
  mngr = checkpoint.manager(workdir, create=False)
  try:
    states, data_state, _ = checkpoint.restore(mngr, step, jax.eval_shape(setup.init_state),
                                               data_like)
  finally:
    mngr.close()
  seen = seen_counts(data_state, step)
  rows = []
  for width in sorted({w for w, _ in setup.models}):
    i = next(k for k, (w, _) in enumerate(setup.models) if w == width)
    for r in sampling.model_sentences(setup, states, i, setup.spec, world, seen,
                                      SAMPLES_PER_WIDTH, seed=0):
      rows.append({"step": step, "width": width, "seed": setup.models[i][1], **r})
  with open(path + ".tmp", "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
  os.replace(path + ".tmp", path)
