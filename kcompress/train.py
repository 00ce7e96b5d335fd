"""Runs a job (pretraining or fine-tuning) of a sweep in a workdir: one compiled step trains
every model of the sweep on the same batches.

`run(config, workdir)` is a short sequence: validate the config and check that the sweep
fits the device (`kcompress.preflight`) before anything is compiled or written; hold the
workdir's lock (`kcompress.workdir_lock`: one run at a time); build the job
(`kcompress.pretrain` or `kcompress.finetune`); resume from the newest intact checkpoint
whose rows are all on file (`kcompress.resume`); run the generic loop (`kcompress.loop`)
with four periodic actions: log (a progress line), two-part codes and probes (every
`eval_every`), checkpoint. A failed write stops the run at once (no later write is
attempted; `kcompress.cli` prints it as one line). Outputs:

WORKDIR/metrics.jsonl, one row per (step, model): step, width, seed, params, tokens_seen
(stream tokens trained on so far; row padding excluded), lr, loss_bits (bits/token of
this step's batch, measured BEFORE the update), bits_<role> (bits/token by role),
bayes_<role> (the Bayes code's bits/token of the same batch's tokens of that role),
tokens_<role> (the batch's tokens of that role), bits_entity / bayes_entity / tokens_entity
(the same on the first name token of each sentence, where the Bayes code's entity-choice
bits sit: a part of the name role whose limit is the entity entropy, not 0), step_bits
(total bits of this batch),
preq_bits and preq_bits_<role> (cumulative prequential code, bits), bayes_bits and
bayes_bits_<role> (cumulative Bayes code of the same tokens, bits), frozen, frozen_step,
elapsed_s; finite-dataset mode adds epoch (the pass over the dataset, from 0) and its
preq/bayes totals cover the first epoch only: the code of the dataset (later epochs are
training loss, loss_bits).
WORKDIR/ksf.jsonl and WORKDIR/probes.jsonl: `kcompress.evals`.
WORKDIR/tb/: the same values as TensorBoard event files (`kcompress.tensorboard_log`).
WORKDIR/timing.json: this invocation's wall time split into setup, train, log,
two_part, probes, checkpoint, finish (seconds).
WORKDIR/log.txt: library logs (`kcompress.cli`).
WORKDIR/run.lock: present while a run holds the workdir (`kcompress.workdir_lock`).
WORKDIR/checkpoints_ahead_of_rows/, checkpoints_damaged/: checkpoints a resume set aside
(`kcompress.resume`, `kcompress.checkpoint`).

Roles: name, syntax, value, end. All code lengths are in bits.

Run length: `train.num_steps` may grow or shrink (down to the latest checkpoint) when a
pretraining run resumes. The learning-rate schedule's horizon is fixed when the run
starts: `train.schedule_steps`, or 0 = the num_steps of the first start; steps past it
run at the schedule's final value. So a run extended from 40 to 60 steps equals a run
started with num_steps=60, schedule_steps=40.
"""

from __future__ import annotations

import contextlib
import json
import os
import time

import jax
import numpy as np

from kcompress import checkpoint, cli, evals, finetune, loop, metrics, mesh as mesh_lib
from kcompress import pretrain, model as model_lib, preflight, resume, setup as setup_lib, sweep
from kcompress import tensorboard_log, workdir_lock
from kcompress.data import roles
from kcompress.job import Job


def describe(config, setup: setup_lib.Setup) -> Job:
  """The job of a config: fine-tuning when it has `init_from`, else pretraining."""
  if finetune.is_finetune(config):
    return finetune.job(config, setup)
  return pretrain.job(config, setup)


def resolved_config(config):
  """The config as run (and as config.json records it): `model.dtype` "auto" resolved
  for this platform, fine-tuning's automatic length resolved."""
  dtype = config.model.get("dtype", "float32")
  if dtype == "auto":
    config = config.copy_and_resolve_references()
    with config.unlocked():
      config.model.dtype = model_lib.resolve_dtype(dtype, jax.devices()[0].platform)
  return finetune.resolve(config) if finetune.is_finetune(config) else config


def metric_rows(step: int, setup: setup_lib.Setup, m: dict, bayes_r, host: dict,
                elapsed: float, epoch: int | None = None) -> list[dict]:
  """Metrics rows of one step (host numpy inputs); updates the cumulative totals in `host`
  (bits by role, and `tokens_seen`: stream tokens trained on, row padding excluded).
  `epoch` (finite dataset): the totals grow in epoch 0 only."""
  bits_mr = np.asarray(m["bits_by_role"], np.float64)
  toks_mr = np.asarray(m["tokens_by_role"], np.float64)
  host["tokens_seen"] = tokens_seen = int(host["tokens_seen"] + toks_mr[0].sum())
  preq = np.asarray(host["preq_bits_by_role"])
  bayes = np.asarray(host["bayes_bits_by_role"])
  if not epoch:
    preq = preq + bits_mr
    bayes = bayes + np.asarray(bayes_r, np.float64)[:roles.NUM_ROLES]
  host["preq_bits_by_role"], host["bayes_bits_by_role"] = preq.tolist(), bayes.tolist()
  rows = []
  for i, (width, seed) in enumerate(setup.models):
    row = dict(step=step, width=width, seed=seed, params=setup.param_counts[i],
               tokens_seen=tokens_seen, lr=float(m["lr"][i]),
               loss_bits=float(bits_mr[i].sum() / max(toks_mr[i].sum(), 1)),
               step_bits=float(bits_mr[i].sum()))
    for r, name in enumerate(roles.ROLE_NAMES):
      row[f"bits_{name}"] = float(bits_mr[i, r] / toks_mr[i, r]) if toks_mr[i, r] else None
      row[f"bayes_{name}"] = float(bayes_r[r] / toks_mr[i, r]) if toks_mr[i, r] else None
      row[f"tokens_{name}"] = int(toks_mr[i, r])
    n_ent = float(m["entity_tokens"][i])
    row["bits_entity"] = float(m["entity_bits"][i]) / n_ent if n_ent else None
    row["bayes_entity"] = float(bayes_r[roles.ENTITY_PART]) / n_ent if n_ent else None
    row["tokens_entity"] = int(n_ent)
    row["preq_bits"] = float(preq[i].sum())
    row.update({f"preq_bits_{n}": float(preq[i, r]) for r, n in enumerate(roles.ROLE_NAMES)})
    row["bayes_bits"] = float(bayes.sum())
    row.update({f"bayes_bits_{n}": float(bayes[r]) for r, n in enumerate(roles.ROLE_NAMES)})
    if epoch is not None:
      row["epoch"] = epoch
    row.update(frozen=bool(m["frozen"][i]), frozen_step=int(m["frozen_step"][i]),
               elapsed_s=round(elapsed, 3))
    rows.append(row)
  return rows


def _say(line: str) -> None:
  print(line, flush=True)


class Outputs:
  """Where a run's results go: the JSON-lines files (rows counted in host["rows_written"],
  which each checkpoint records: `kcompress.resume`), TensorBoard events, checkpoints.
  Process 0 writes; every process keeps the same counts."""

  def __init__(self, workdir: str, host: dict, is_writer: bool):
    self.host = host
    self.writers = {k: metrics.Writer(p, enabled=is_writer)
                    for k, p in resume.row_paths(workdir).items()}
    self.events = tensorboard_log.EventWriter(workdir, enabled=is_writer)
    self.mngr = checkpoint.manager(workdir)

  def write(self, kind: str, rows: list[dict]) -> None:
    self.writers[kind].write(rows)
    self.host["rows_written"][kind] += len(rows)
    getattr(self.events, f"write_{kind}")(rows)

  def save(self, step: int, train_state, data_state) -> None:
    for w in self.writers.values():   # the rows this checkpoint counts are on disk first
      w.sync()
    with cli.stderr_to_log_file():   # a failed save's library tracebacks: log.txt only
      checkpoint.save(self.mngr, step, train_state, data_state, self.host)

  def close(self, quietly: bool = False) -> None:
    """Closes every file; `quietly` after a failure: errors of closing are dropped, so the
    first failure is the one reported."""
    for close in [w.close for w in self.writers.values()] + [self.events.close, self.mngr.close]:
      with contextlib.suppress(Exception) if quietly else contextlib.nullcontext():
        close()


def _open(config, setup: setup_lib.Setup, workdir: str, is_writer: bool):
  """(job, start, (states, data_state), host) of the run in `workdir`: checks the workdir's
  config and rows, restores, drops rows past the restored step, then records the config."""
  setup_lib.check_resumable(workdir, config)
  job = describe(config, setup)
  rows = resume.read_rows(workdir)   # a corrupt middle line stops the run, nothing changed
  start, real_state, data_state, host = resume.restore(job, workdir, job.init_states(), rows,
                                                       _say, is_writer)
  data_state, host["data_capacity"] = job.fit_data(data_state, start, config.train.num_steps)
  if is_writer:
    kept = resume.truncate_rows(workdir, rows, start)
  if jax.process_count() > 1:   # every process has read the old config.json first
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices("kcompress: workdir checked")
  if is_writer:   # only now, with every check and the restore passed
    setup_lib.write_config(workdir, config)
    tensorboard_log.rebuild(workdir, kept)
  mesh = setup.mesh
  with jax.enable_x64(True):   # the generator state lives replicated on the mesh
    data_state = mesh_lib.put(data_state, mesh_lib.replicated(mesh))
  states = sweep.place(setup.layout, mesh_lib.put(real_state, mesh_lib.replicated(mesh)), mesh)
  return job, start, (states, data_state), host


class Actions:
  """The loop's step and periodic actions of a run (log, two-part codes, probes, save)."""

  def __init__(self, job: Job, out: Outputs, timer: loop.Timer, start: int):
    config, setup = job.config, job.setup
    self.job, self.setup, self.out, self.host, self.timer = job, setup, out, out.host, timer
    self.start, self.num_steps = start, config.train.num_steps
    self.sweep_step = sweep.make_step(setup.layout, setup.optimizer, config.optim,
                                      self.host["schedule_steps"], setup.mesh)
    self.two_part_eval = evals.TwoPartEval(job, self.num_steps)
    self.probe_eval = evals.ProbeEval(job) if job.pipe.world is not None else None
    self.tokens_per_step = config.train.batch_size * setup.spec.context_length
    self.t0 = time.perf_counter() - self.host["elapsed_s"]
    self.pace, self.frozen_seen, self.last_rows = loop.Pace(), set(), []

  def periodic(self) -> list[loop.Periodic]:
    config, at_start = self.job.config, self.job.eval_at_start
    actions = [loop.Periodic("log", config.log_every, self.log, on_signal=True),
               loop.Periodic("two_part", config.eval_every, self.two_part, at_start=at_start)]
    if self.probe_eval is not None:
      actions.append(loop.Periodic("probes", config.eval_every, self.probe, at_start=at_start))
    actions.append(loop.Periodic("checkpoint", config.checkpoint_every, self.save,
                                 on_signal=True))
    return actions

  def step(self, state):
    states, data_state = state
    data_state, batch, bayes_r = self.job.pipe.step(data_state)
    states, m = self.sweep_step(states, batch)
    return (states, data_state), (m, bayes_r, self.job.overflow(data_state))

  def record(self, step_done: int, outputs) -> None:
    m, bayes_r, overflow = jax.device_get(outputs)
    if step_done == self.start + 1:   # the first step (and its compilation) is done
      self.pace.start(step_done, self.timer.seconds.get("train", 0.0))
    if overflow:   # this step's batch holds clipped entity ids: stop before logging it
      raise RuntimeError(
          f"step {step_done}: the stream created more entities than it has room for (the "
          f"name space of {self.setup.spec.name_space} names, or the ids below injected "
          f"entities); raise config.data.name_alphabet or config.data.name_length")
    spe = self.job.pipe.steps_per_epoch
    epoch = (step_done - 1) // spe if spe else None
    rows = metric_rows(step_done, self.setup, m, bayes_r, self.host,
                       time.perf_counter() - self.t0, epoch)
    for r in rows:
      if r["frozen"] and (r["width"], r["seed"]) not in self.frozen_seen:
        self.frozen_seen.add((r["width"], r["seed"]))
        _say(f"WARNING non-finite loss: width={r['width']} seed={r['seed']} frozen at step "
             f"{r['frozen_step']}")
    self.out.write("metrics", rows)
    self.last_rows = rows

  def log(self, step_done: int, state) -> None:
    """Progress: the training rate (evaluations and compilation excluded) and its ETA."""
    del state
    steps_per_s = self.pace.lap(step_done, self.timer.seconds.get("train", 0.0))
    rate = (f"  {steps_per_s * self.tokens_per_step:,.0f} tok/s" if steps_per_s else "")
    eta = (f"  ETA {(self.num_steps - step_done) / steps_per_s:.0f}s" if steps_per_s else "")
    first, last = self.last_rows[0], self.last_rows[-1]
    _say(f"step {step_done}/{self.num_steps}{rate}  loss bits/token w{first['width']}="
         f"{first['loss_bits']:.3f} w{last['width']}={last['loss_bits']:.3f}{eta}")

  def two_part(self, step_done: int, state) -> None:
    preq = np.asarray(self.host["preq_bits_by_role"]).sum(-1)
    rows = self.two_part_eval(step_done, state[0], preq, self.host["tokens_seen"])
    self.out.write("ksf", rows)
    per_token = ", ".join(f"w{r['width']}={r['data_bits'] / max(r['data_tokens'], 1):.3f}"
                          for r in rows)
    _say(f"eval {step_done}: data bits/token of x under each model: {per_token}")

  def probe(self, step_done: int, state) -> None:
    self.out.write("probes", self.probe_eval(step_done, state[0], state[1],
                                             self.host["tokens_seen"]))

  def save(self, step_done: int, state) -> None:
    self.host["elapsed_s"] = time.perf_counter() - self.t0
    self.out.save(step_done, sweep.unplace(self.setup.layout, state[0], self.setup.mesh),
                  state[1])


def _train(job: Job, workdir: str, start: int, state, host: dict, timer: loop.Timer,
           is_writer: bool) -> list[dict]:
  """Runs the loop from `start`; returns the last step's metrics rows. A stop signal saves
  and exits (status 128 + signal); any failure closes the files quietly and propagates."""
  out = Outputs(workdir, host, is_writer)
  try:
    with timer.phase("setup"):
      actions = Actions(job, out, timer, start)
    loop.run_loop(state, actions.step, start, job.config.train.num_steps, actions.record,
                  actions.periodic(), timer)
  except loop.Stopped as stop:
    out.close()
    _say(f"signal {stop.signum}: checkpoint saved at step {stop.step}; exiting")
    raise SystemExit(128 + stop.signum) from None
  except BaseException:
    out.close(quietly=True)
    raise
  out.close()
  return actions.last_rows


def run(config, workdir: str) -> dict:
  """Trains the sweep of `config` in `workdir` (resuming if possible). Returns final rows."""
  timer, t_start = loop.Timer(), time.perf_counter()
  is_writer = jax.process_index() == 0
  with timer.phase("setup"):
    config = resolved_config(config)
    setup = setup_lib.make_setup(config)
    preflight.check_memory(setup, config.train.batch_size)
  with workdir_lock.hold(workdir, enabled=is_writer):
    with timer.phase("setup"):
      job, start, state, host = _open(config, setup, workdir, is_writer)
    num_steps = config.train.num_steps
    last_rows = _train(job, workdir, start, state, host, timer, is_writer)
    if not last_rows:   # nothing left to train: the final rows are on file
      last_rows = [r for r in metrics.read_rows(resume.row_paths(workdir)["metrics"])
                   if r["step"] == num_steps]
    with timer.phase("finish"):
      if is_writer and job.finish is not None:
        job.finish(workdir, host)
    wall = time.perf_counter() - t_start
    if is_writer:
      with open(os.path.join(workdir, "timing.json"), "w") as f:
        json.dump({"wall_s": wall, "steps": num_steps - start,
                   "seconds": {k: round(v, 4) for k, v in timer.seconds.items()}}, f, indent=1)
  _say("time: " + ", ".join(f"{k} {v:.1f}s" for k, v in timer.seconds.items())
       + f" (wall {wall:.1f}s)")
  return {"rows": last_rows, "workdir": workdir}
