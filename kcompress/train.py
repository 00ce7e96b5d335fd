"""The training loop: one compiled step trains a whole sweep of widths on one stream.

`run(config, workdir)` validates the config, resumes from the latest checkpoint in
`workdir` if there is one, trains every model of the sweep on the same batches,
and appends one metrics row per (step, model) to WORKDIR/metrics.jsonl:

  step, width, seed, params, tokens_seen (stream tokens trained on so far; row padding
  excluded), lr, loss_bits (bits/token of this step's batch, measured BEFORE the update),
  bits_<role> (bits/token by role), bayes_<role> (the Bayes code's bits/token of the same
  batch's tokens of that role), tokens_<role> (the batch's tokens of that role), epoch
  (finite-dataset mode: the pass over the dataset, from 0), step_bits
  (total bits of this batch), preq_bits and preq_bits_<role> (cumulative prequential
  code, bits), bayes_bits and bayes_bits_<role> (cumulative Bayes code of the same
  tokens, bits), frozen, frozen_step, elapsed_s.

Roles: name, syntax, value, end. All code lengths are in bits.

At every `eval_every` step, WORKDIR/probes.jsonl gets one row per model (finite-dataset mode:
about the facts of the whole dataset, so evaluate after the first epoch)
(`kcompress.probes`): knowledge accuracy, bits of the true value and stored knowledge bits
per occurrence bin, capacity (stored bits over all revealed facts), hallucination figures
on fresh entities and unrevealed facts beside the Bayes predictor's, and the stream's facts
(`kcompress.data.stats.fact_singletons`: revealed, singletons, singleton_fraction,
missing_mass). At every `eval_every` step (both modes), WORKDIR/ksf.jsonl gets one row per
model (`kcompress.two_part`): data_bits (the model's code of the run's data x, bits,
estimated on `config.ksf.sample_batches` batches), quantised = [{precision,
complexity_bits, data_bits}] (two-part codes with quantised parameters), preq_bits,
seen_data_bits and prequential_complexity_bits (= preq_bits - seen_data_bits).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import os
import signal
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from kcompress import checkpoint, metrics, model as model_lib, probes, step as step_lib, sweep
from kcompress import mesh as mesh_lib, two_part
from kcompress import data
from kcompress.data import price, roles, source, stats as data_stats
from kcompress.data.spec import BOS

# Fields a run may change when it resumes (full dotted names).
# Fields added after runs existed, with the value those runs had (they resume as they ran).
ADDED_FIELDS = {"data.packing": "stream"}
_IGNORED_FOR_RESUME = ("train.num_steps", "log_every", "eval_every", "checkpoint_every",
                       "mesh.model", "mesh.data")


# ------------------------------------------------------------------ validation


def sweep_models(config) -> list[tuple[int, int]]:
  """(width, seed) of every model of the sweep, width-major."""
  return list(itertools.product(tuple(config.model.widths), tuple(config.sweep.seeds)))


def validate(config) -> None:
  """Fails before any compilation, naming the offending field."""
  widths = tuple(config.model.widths)
  if not widths or any(not isinstance(w, int) or w <= 0 for w in widths):
    raise ValueError(f"config.model.widths={widths!r}: need positive integers")
  if list(widths) != sorted(set(widths)):
    raise ValueError(f"config.model.widths={widths!r}: must be distinct and ascending")
  bad = [w for w in widths if w % config.model.head_dim]
  if bad:
    raise ValueError(f"config.model.widths={widths!r}: widths {bad} are not divisible by "
                     f"config.model.head_dim={config.model.head_dim}")
  if not tuple(config.sweep.seeds):
    raise ValueError("config.sweep.seeds is empty")
  if config.optim.lr_scaling not in step_lib.LR_SCALINGS:
    raise ValueError(f"config.optim.lr_scaling={config.optim.lr_scaling!r}: choose one of "
                     f"{step_lib.LR_SCALINGS}")
  _, data_axis = mesh_lib.mesh_shape(mesh_config(config), jax.device_count())
  if config.train.batch_size % data_axis:
    raise ValueError(f"config.train.batch_size={config.train.batch_size} is not divisible by "
                     f"the mesh's data axis ({data_axis} devices; config.mesh)")
  if config.train.num_steps < 1:
    raise ValueError(f"config.train.num_steps={config.train.num_steps}: must be >= 1")
  if config.ksf.sample_batches < 1:
    raise ValueError(f"config.ksf.sample_batches={config.ksf.sample_batches}: must be >= 1")
  precisions = tuple(config.ksf.precisions)
  if not precisions or any(not isinstance(p, int) or not -8 <= p <= 24 for p in precisions):
    raise ValueError(f"config.ksf.precisions={precisions!r}: need integers in [-8, 24]")
  for field in ("log_every", "checkpoint_every", "eval_every"):
    if config[field] < 1:
      raise ValueError(f"config.{field}={config[field]}: must be >= 1")


def flatten(d: dict, prefix: str = "") -> dict:
  """Nested config dict -> {"section.key": value} (tuples as lists, as JSON has them)."""
  out = {}
  for k, v in d.items():
    key = f"{prefix}{k}"
    if isinstance(v, dict):
      out.update(flatten(v, key + "."))
    else:
      out[key] = list(v) if isinstance(v, (list, tuple)) else v
  return out


def check_workdir(workdir: str, config) -> None:
  """A workdir may only be resumed by the same config (run length and cadences may change)."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  with open(path) as f:
    old = {**ADDED_FIELDS, **flatten(json.load(f))}
  new = flatten(json.loads(config.to_json()))
  differ = sorted(k for k in set(old) | set(new)
                  if old.get(k) != new.get(k) and k not in _IGNORED_FOR_RESUME)
  if differ:
    detail = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in differ)
    raise ValueError(f"workdir {workdir} holds a run of a different config; fields that "
                     f"differ: {detail}")


def due(step: int, every: int, last: int) -> bool:
  """Is `step` (1-based count of updates done) a log/eval/checkpoint step? The last always is."""
  return step % every == 0 or step == last


@dataclasses.dataclass(frozen=True)
class Setup:
  """The static parts of a run, all fixed by its config: data spec, models, layout."""
  config: Any
  spec: data.DataSpec
  models: tuple[tuple[int, int], ...]   # (width, seed), width-major
  layout: sweep.Layout
  param_counts: tuple[int, ...]         # unpadded parameters per model
  optimizer: Any
  mesh: Any = None                      # jax.sharding.Mesh, or None (one device, no placement)

  @property
  def widths_M(self) -> np.ndarray:
    return np.array([w for w, _ in self.models], np.int32)

  @property
  def seeds_M(self) -> np.ndarray:
    return np.array([s for _, s in self.models], np.int32)

  def init_state(self) -> list:
    """Freshly initialised train states (one per bucket, leading model axis)."""
    return sweep.init(self.layout, self.config.optim, self.optimizer, self.widths_M, self.seeds_M)

  def model_config(self, i: int) -> model_lib.ModelConfig:
    """The (padded) ModelConfig of the bucket holding model i."""
    return next(cfg for cfg, idx in self.layout.buckets if i in idx)


def mesh_config(config):
  """config.mesh, or a 1 x all-devices data mesh for configs written before it existed."""
  return config.get("mesh") or ml_collections.ConfigDict({"model": 1, "data": -1})


def make_setup(config, use_mesh: bool = True) -> Setup:
  """`use_mesh=False`: no device mesh (host tools reading a workdir on one device)."""
  validate(config)
  spec = data.data_spec(config.data)
  models = tuple(sweep_models(config))
  mesh = mesh_lib.make_mesh(mesh_config(config)) if use_mesh else None
  model_axis = mesh.shape["model"] if mesh is not None else 1
  layout = sweep.make_layout(config.model, spec.vocab_size, spec.context_length, models,
                             model_axis)
  counts = tuple(model_lib.param_count(layout.buckets[0][0], int(w)) for w, _ in models)
  optimizer = step_lib.make_optimizer(config.optim, config.train.num_steps)
  return Setup(config, spec, models, layout, counts, optimizer, mesh)


# ------------------------------------------------------------------------ data


def model_batch(tokens: data.Tokens) -> dict[str, jax.Array]:
  """Rows of C stream tokens -> model inputs ([BOS, row[:-1]]), targets (row), roles."""
  inputs = jnp.concatenate([jnp.full_like(tokens.token[:, :1], BOS), tokens.token[:, :-1]], 1)
  return {"inputs_BxL": inputs, "targets_BxL": tokens.token, "roles_BxL": tokens.role}


@dataclasses.dataclass(frozen=True)
class DataPipe:
  """The on-device data step of a run: `step(data_state) -> (data_state, batch, bayes_R)`."""
  init: Any
  step: Any
  world: Any = None          # the stream's World (host numpy)
  dataset_stream: Any = None  # finite dataset: its StreamState (counts over the whole
                              # dataset), which the probes ask about; None for a stream
  steps_per_epoch: int | None = None   # finite dataset: steps of one epoch


def make_data_pipe(spec: data.DataSpec, config) -> DataPipe:
  batch_size, num_steps = config.train.batch_size, config.train.num_steps
  # Captured arrays stay host numpy (jit constants), so the data step runs wherever its
  # state lives: one device, or replicated over a mesh.
  world = source.host_world(spec, config.seed)
  if config.data.num_sentences > 0:
    rows, stream = source.dataset_rows(spec, config.seed, config.data.num_sentences)
    if rows.token.shape[0] < batch_size:
      raise ValueError(f"config.data.num_sentences={config.data.num_sentences}: the dataset has "
                       f"{rows.token.shape[0]} rows, fewer than config.train.batch_size")
    with jax.enable_x64(True):
      key = np.asarray(jax.random.fold_in(jax.random.PRNGKey(config.seed), 1))
      if spec.packing == "sentence":   # epoch 0 is priced in the order it is read
        order = source.epoch_order(key, 0, rows.token.shape[0], batch_size)
        rows = rows._replace(bayes_bits=source.bayes_bits_in_order(spec, stream, rows, order))

    @jax.jit
    def finite_step(state):
      batch = source.dataset_batch(rows, key, state["step"], batch_size)
      return {"step": state["step"] + 1}, model_batch(batch), source.bayes_bits_by_role(batch)

    init = {"step": jnp.zeros((), jnp.int32)}   # a tree, as orbax saves trees
    return DataPipe(init, source.x64(finite_step), world, stream.state,
                    rows.token.shape[0] // batch_size)

  @jax.jit
  def stream_step(state):
    state, batch = source.next_batch(spec, jax.tree.map(jnp.asarray, world), state, batch_size)
    return state, model_batch(batch), source.bayes_bits_by_role(batch)

  init = source.x64(source.batch_init)(spec, batch_size, num_steps)
  return DataPipe(init, source.x64(stream_step), world)


def initial(setup: Setup):
  """(initial train states, DataPipe, fine-tuning Plan or None) of a run before any step."""
  from kcompress import finetune
  config = setup.config
  if not finetune.is_finetune(config):
    return setup.init_state(), make_data_pipe(setup.spec, config), None
  states, batch_state, _ = finetune.load_start(config, setup)
  world = source.host_world(setup.spec, config.seed)
  pipe, plan = finetune.make_pipe(setup.spec, config, world, batch_state)
  return states, pipe, plan


def write_stream_baselines(spec: data.DataSpec, config, workdir: str, num_tokens: int) -> None:
  """Baselines of exactly the tokens the run trained on, from the regenerated stream.

  WORKDIR/compressors.json: classical compressors' bits. WORKDIR/oracle_ksf.json: the
  oracle structure function of the sentences that started inside those tokens
  (`kcompress.analysis.oracle`). WORKDIR/stream_stats.json: their Heaps curve and counts
  of counts beside independent PYCRP replicates (`kcompress.data.stats.stream_stats`).
  The training batches serve a prefix of the one-shot stream (tested), so the stream is
  regenerated here rather than kept.
  """
  from kcompress import compressors
  from kcompress.analysis import oracle
  num_sentences = num_tokens // spec.min_sentence_length + 1
  stream = data.generate_stream(spec, config.seed, num_sentences)
  tokens = stream.tokens.token[:num_tokens]
  with open(os.path.join(workdir, "compressors.json"), "w") as f:
    json.dump({"num_tokens": int(num_tokens),
               "bits": compressors.compressed_bits(tokens, spec.vocab_size)}, f)
  used = int(np.searchsorted(np.cumsum(stream.sentences.length_N), num_tokens, side="left")) + 1
  with open(os.path.join(workdir, "oracle_ksf.json"), "w") as f:
    json.dump(oracle.oracle_ksf_of_stream(spec, stream, used), f)
  stats = data_stats.stream_stats(spec.alpha, spec.beta, stream.sentences.entity_N[:used],
                                  stream.sentences.is_new_N[:used])
  with open(os.path.join(workdir, "stream_stats.json"), "w") as f:
    json.dump(stats, f)


def stream_overflow(data_state) -> jax.Array | bool:
  """The generator's overflow flag (a device scalar) of a stream or fine-tuning data state;
  False for a finite dataset (no entity process runs)."""
  batch_state = getattr(data_state, "batch", data_state)
  return batch_state.stream.crp.overflow if hasattr(batch_state, "stream") else False


# ------------------------------------------------------------------------ loop


class _Stop:
  """Turns SIGTERM/SIGINT into a flag the loop checks after each step."""

  def __init__(self):
    self.signal = None
    self._old = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      self._old[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    self.signal = signum

  def __exit__(self, *exc):
    for sig, old in self._old.items():
      signal.signal(sig, old)


def _rows(step: int, models, param_counts, m: dict, bayes_r, host: dict,
          elapsed: float) -> list[dict]:
  """Metrics rows of one step (host numpy inputs); updates the cumulative totals in `host`
  (bits by role, and `tokens_seen`: stream tokens trained on, row padding excluded)."""
  bits_mr = np.asarray(m["bits_by_role"], np.float64)
  toks_mr = np.asarray(m["tokens_by_role"], np.float64)
  host["tokens_seen"] = tokens_seen = int(host.get("tokens_seen", 0) + toks_mr[0].sum())
  preq = np.asarray(host["preq_bits_by_role"]) + bits_mr
  bayes = np.asarray(host["bayes_bits_by_role"]) + np.asarray(bayes_r, np.float64)
  host["preq_bits_by_role"], host["bayes_bits_by_role"] = preq.tolist(), bayes.tolist()
  rows = []
  for i, (width, seed) in enumerate(models):
    row = dict(step=step, width=width, seed=seed, params=param_counts[i],
               tokens_seen=tokens_seen, lr=float(m["lr"][i]),
               loss_bits=float(bits_mr[i].sum() / max(toks_mr[i].sum(), 1)),
               step_bits=float(bits_mr[i].sum()))
    for r, name in enumerate(roles.ROLE_NAMES):
      row[f"bits_{name}"] = float(bits_mr[i, r] / toks_mr[i, r]) if toks_mr[i, r] else None
      row[f"bayes_{name}"] = float(bayes_r[r] / toks_mr[i, r]) if toks_mr[i, r] else None
      row[f"tokens_{name}"] = int(toks_mr[i, r])
    row["preq_bits"] = float(preq[i].sum())
    row.update({f"preq_bits_{n}": float(preq[i, r]) for r, n in enumerate(roles.ROLE_NAMES)})
    row["bayes_bits"] = float(bayes.sum())
    row.update({f"bayes_bits_{n}": float(bayes[r]) for r, n in enumerate(roles.ROLE_NAMES)})
    row.update(frozen=bool(m["frozen"][i]), frozen_step=int(m["frozen_step"][i]),
               elapsed_s=round(elapsed, 3))
    rows.append(row)
  return rows


def run(config, workdir: str) -> dict:
  """Trains the sweep of `config` in `workdir` (resuming if possible). Returns final rows."""
  from kcompress import finetune
  if finetune.is_finetune(config):
    config = finetune.resolve(config)
  setup = make_setup(config)
  spec = setup.spec
  num_steps, batch_size = config.train.num_steps, config.train.batch_size
  tokens_per_step = batch_size * spec.context_length
  if config.data.num_sentences <= 0:
    capacity = source.batch_capacity(spec, batch_size, num_steps)
    data.check_name_space(spec, capacity)
  check_workdir(workdir, config)
  os.makedirs(workdir, exist_ok=True)
  is_writer = jax.process_index() == 0
  if jax.process_count() > 1:   # every process has read the old config.json before it changes
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices("kcompress: workdir checked")
  if is_writer:
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json(indent=2))

  models, layout, param_counts = setup.models, setup.layout, setup.param_counts
  optimizer = setup.optimizer
  mesh = setup.mesh
  real_state, pipe, plan = initial(setup)
  sweep_step = sweep.make_step(layout, optimizer, config.optim, num_steps, mesh)
  with jax.enable_x64(True):   # the generator state lives replicated on the mesh
    data_state = mesh_lib.put(pipe.init, mesh_lib.replicated(mesh))
  real_state = mesh_lib.put(real_state, mesh_lib.replicated(mesh))
  host = dict(preq_bits_by_role=np.zeros((len(models), roles.NUM_ROLES)).tolist(),
              bayes_bits_by_role=np.zeros(roles.NUM_ROLES).tolist(), elapsed_s=0.0,
              tokens_seen=0)

  mngr = checkpoint.manager(workdir)
  metrics_path = os.path.join(workdir, "metrics.jsonl")
  start = mngr.latest_step() or 0
  if start:
    real_state, data_state, host = checkpoint.restore(mngr, start, real_state, data_state)
    logging.info("resumed from step %d", start)
    print(f"resuming {workdir} from step {start}", flush=True)
  probes_path = os.path.join(workdir, "probes.jsonl")
  ksf_path = os.path.join(workdir, "ksf.jsonl")
  if is_writer:
    # A fine-tuning run also evaluates before its first step (rows of step 0).
    keep = start if start or plan is None else -1
    metrics.truncate_after(metrics_path, start)
    metrics.truncate_after(probes_path, keep)
    metrics.truncate_after(ksf_path, keep)
  writer = metrics.Writer(metrics_path, enabled=is_writer)
  probe_writer = metrics.Writer(probes_path, enabled=is_writer and pipe.world is not None)
  state = sweep.place(layout, real_state, mesh)
  del real_state
  probe_step = sweep.make_probe_step(layout, spec, config.probe.confident, mesh)
  if pipe.world is not None:
    served_counts = source.x64(jax.jit(functools.partial(
        price.served_state, spec, jax.tree.map(jnp.asarray, pipe.world))))
  bayes_halluc = probes.bayes_hallucination(spec, config.probe.confident)
  ksf_writer = metrics.Writer(ksf_path, enabled=is_writer)
  ksf_sample = two_part.sample_batches(pipe, num_steps, config.ksf.sample_batches)
  scorers = [two_part.make_scorer(cfg) for cfg, _ in layout.buckets]
  # Stream tokens of the run's data x, estimated like its data bits: from the sample.
  data_tokens = int(round(float(np.mean(step_lib.is_real(ksf_sample[1]["roles_BxL"]).sum(
      (1, 2)))) * num_steps))

  def evaluate_two_part(step_done: int):
    """Two-part code points of every model after `step_done` updates (ksf.jsonl)."""
    real = jax.device_get(sweep.unplace(layout, state, mesh))
    points = two_part.two_part_points(setup, real, ksf_sample, config.ksf.precisions, scorers)
    preq = np.asarray(host["preq_bits_by_role"]).sum(-1)
    rows = two_part.ksf_rows(step_done, num_steps, ksf_sample[0], points, preq)
    ksf_writer.write([dict(step=step_done, width=w, seed=s, params=param_counts[i],
                           tokens_seen=host["tokens_seen"],
                           data_tokens=data_tokens,
                           sample_batches=len(ksf_sample[0]), preq_bits=float(preq[i]), **row)
                      for i, ((w, s), row) in enumerate(zip(models, rows))])

  def evaluate(step_done: int):
    """Knowledge and hallucination probes of every model after `step_done` updates."""
    if pipe.dataset_stream is not None:   # every fact of the dataset, seen once per epoch
      stream = pipe.dataset_stream
    else:   # the stream's sentences served so far (the generator runs ahead of training)
      batch_state = data_state if plan is None else data_state.batch
      with jax.enable_x64(True):
        stream = jax.device_get(batch_state.stream if spec.packing == "stream" else
                                served_counts(batch_state))
    pset = probes.build_probes(spec, pipe.world, stream, config.probe.seed + step_done,
                               config.probe.per_bin, config.probe.num_bins, config.probe.num_fresh)
    if plan is not None:
      pset = probes.concat_probes(pset, finetune.injected_probes(
          spec, pipe.world, plan, step_done, config.probe.seed + step_done))
    outs = jax.device_get(probe_step(state, pset))
    facts = data_stats.fact_singletons(stream.fact_counts_ExA)
    rows = []
    for i, (width, seed) in enumerate(models):
      mine = {k: np.asarray(v[i]) for k, v in outs.items()}
      rows.append(dict(step=step_done, width=width, seed=seed, params=param_counts[i],
                       tokens_seen=host["tokens_seen"],
                       **probes.summarise(mine, pset, config.probe.num_bins),
                       bayes_hallucination=bayes_halluc, facts=facts))
    probe_writer.write(rows)

  def save(step_done: int):
    checkpoint.save(mngr, step_done, sweep.unplace(layout, state, mesh), data_state, host)

  t0 = time.perf_counter() - host["elapsed_s"]
  t_log, step_log = time.perf_counter(), start
  frozen_seen = set()
  last_rows: list[dict] = []
  pending = None

  def finish(p):
    step_done, m, bayes_r, overflow = p
    m, bayes_r, overflow = jax.device_get((m, bayes_r, overflow))
    if overflow:   # this step's batch holds clipped entity ids: stop before logging it
      raise RuntimeError(
          f"step {step_done}: the stream created more entities than it has room for (the "
          f"name space of {spec.name_space} names, or the ids below injected entities); raise "
          f"config.data.name_alphabet or config.data.name_length")
    rows = _rows(step_done, models, param_counts, m, bayes_r, host, time.perf_counter() - t0)
    if pipe.steps_per_epoch:   # finite dataset: which pass over it (Bayes bits in epoch 0 only)
      for r in rows:
        r["epoch"] = (step_done - 1) // pipe.steps_per_epoch
    for r in rows:
      if r["frozen"] and (r["width"], r["seed"]) not in frozen_seen:
        frozen_seen.add((r["width"], r["seed"]))
        logging.warning("non-finite loss: model width=%d seed=%d frozen at step %d",
                        r["width"], r["seed"], r["frozen_step"])
        print(f"WARNING non-finite loss: width={r['width']} seed={r['seed']} frozen at step "
              f"{r['frozen_step']}", flush=True)
    writer.write(rows)
    return rows

  if plan is not None and start == 0:   # fine-tuning: measure the pretrained models first
    evaluate_two_part(0)
    evaluate(0)
  with _Stop() as stop:
    for t in range(start, num_steps):
      data_state, batch, bayes_r = pipe.step(data_state)
      state, m = sweep_step(state, batch)
      if pending is not None:     # step t is dispatched; now fetch step t-1
        last_rows = finish(pending)
      pending = (t + 1, m, bayes_r, stream_overflow(data_state))
      step_done = t + 1
      if due(step_done, config.log_every, num_steps) or stop.signal:
        last_rows = finish(pending)
        pending = None
        now = time.perf_counter()
        rate = (step_done - step_log) * tokens_per_step / max(now - t_log, 1e-9)
        eta = (num_steps - step_done) * tokens_per_step / max(rate, 1e-9)
        print(f"step {step_done}/{num_steps}  {rate:,.0f} tok/s  loss bits/token "
              f"w{last_rows[0]['width']}={last_rows[0]['loss_bits']:.3f} "
              f"w{last_rows[-1]['width']}={last_rows[-1]['loss_bits']:.3f}  "
              f"ETA {eta:.0f}s", flush=True)
        t_log, step_log = now, step_done
      if due(step_done, config.eval_every, num_steps):
        if pending is not None:   # the two-part rows need this step's prequential totals
          last_rows = finish(pending)
          pending = None
        evaluate_two_part(step_done)
        if pipe.world is not None:
          evaluate(step_done)
      if due(step_done, config.checkpoint_every, num_steps) or stop.signal:
        if pending is not None:
          last_rows = finish(pending)
          pending = None
        host["elapsed_s"] = time.perf_counter() - t0
        save(step_done)
      if stop.signal:
        print(f"signal {stop.signal}: checkpoint saved at step {step_done}; exiting", flush=True)
        for w in (writer, probe_writer, ksf_writer):
          w.close()
        raise SystemExit(128 + stop.signal)
  if pending is not None:
    last_rows = finish(pending)
  for w in (writer, probe_writer, ksf_writer):
    w.close()
  mngr.close()
  if start >= num_steps:
    last_rows = [r for r in metrics.read_rows(metrics_path) if r["step"] == num_steps]
  if is_writer and config.data.num_sentences <= 0 and plan is None:
    write_stream_baselines(spec, config, workdir, host["tokens_seen"])
  return {"rows": last_rows, "workdir": workdir}
