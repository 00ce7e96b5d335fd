"""Runs a job (pretraining or fine-tuning) of a sweep in a workdir: one compiled step trains
every model of the sweep on the same batches.

`run(config, workdir)` validates the config, builds the job (`kcompress.pretrain` or
`kcompress.finetune`), resumes from the newest intact checkpoint in `workdir` if there is
one, and runs the generic loop (`kcompress.loop`) with four periodic actions: log (a
progress line), two-part codes and probes (every `eval_every`), checkpoint. Outputs:

WORKDIR/metrics.jsonl, one row per (step, model): step, width, seed, params, tokens_seen
(stream tokens trained on so far; row padding excluded), lr, loss_bits (bits/token of
this step's batch, measured BEFORE the update), bits_<role> (bits/token by role),
bayes_<role> (the Bayes code's bits/token of the same batch's tokens of that role),
tokens_<role> (the batch's tokens of that role), bits_entity / bayes_entity / tokens_entity
(the same on the first name token of each sentence, where the Bayes code's entity-choice
bits sit: a part of the name role whose limit is the entity entropy, not 0), step_bits (total bits of this batch),
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

Roles: name, syntax, value, end. All code lengths are in bits.

Run length: `train.num_steps` may grow or shrink (down to the latest checkpoint) when a
pretraining run resumes. The learning-rate schedule's horizon is fixed when the run
starts: `train.schedule_steps`, or 0 = the num_steps of the first start; steps past it
run at the schedule's final value. So a run extended from 40 to 60 steps equals a run
started with num_steps=60, schedule_steps=40.
"""

from __future__ import annotations

import json
import os
import time

import jax
import numpy as np

from kcompress import checkpoint, evals, finetune, loop, metrics, mesh as mesh_lib, pretrain
from kcompress import model as model_lib, setup as setup_lib, sweep, tensorboard_log
from kcompress.data import roles
from kcompress.errors import UserError
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


def _fresh_host(job: Job, num_models: int) -> dict:
  return dict(preq_bits_by_role=np.zeros((num_models, roles.NUM_ROLES)).tolist(),
              bayes_bits_by_role=np.zeros(roles.NUM_ROLES).tolist(), elapsed_s=0.0,
              tokens_seen=0, schedule_steps=int(job.config.train.get("schedule_steps", 0)
                                                or job.config.train.num_steps),
              started_num_steps=int(job.config.train.num_steps))


def _restore(job: Job, workdir: str, train_like):
  """(start, train, data, host) from the newest intact checkpoint, or a fresh start."""
  found = checkpoint.restore_newest_intact(workdir, train_like, job.data_like)
  if found is None:
    return 0, train_like, job.data_like(None), _fresh_host(job, len(job.setup.models))
  start, train_state, data_state, host = found
  num_steps = job.config.train.num_steps
  if num_steps < start:
    raise UserError(f"config.train.num_steps={num_steps}: below the latest checkpoint (step "
                    f"{start}) of {workdir}; a run may shrink down to it, no further")
  if job.fixed_length and num_steps != host.get("started_num_steps", num_steps):
    raise UserError(f"config.train.num_steps={num_steps}: this fine-tuning run was planned for "
                    f"{host['started_num_steps']} steps (its injected rows are placed over "
                    f"them); resume it with that length")
  host.setdefault("schedule_steps", host.get("started_num_steps", num_steps))
  asked = int(job.config.train.get("schedule_steps", 0))
  if asked and asked != host["schedule_steps"]:
    raise UserError(f"config.train.schedule_steps={asked}: this run's schedule was planned for "
                    f"{host['schedule_steps']} steps when it started; resume with 0 or that value")
  return start, train_state, data_state, host


def _say(line: str) -> None:
  print(line, flush=True)


def run(config, workdir: str) -> dict:
  """Trains the sweep of `config` in `workdir` (resuming if possible). Returns final rows."""
  timer = loop.Timer()
  t_start = time.perf_counter()
  with timer.phase("setup"):
    config = resolved_config(config)
    setup = setup_lib.make_setup(config)
    setup_lib.check_resumable(workdir, config)
    job = describe(config, setup)
    num_steps = config.train.num_steps
    is_writer = jax.process_index() == 0
    start, real_state, data_state, host = _restore(job, workdir, job.init_states())
    data_state, host["data_capacity"] = job.fit_data(data_state, start, num_steps)
    paths = {k: os.path.join(workdir, f"{k}.jsonl") for k in ("metrics", "probes", "ksf")}
    if is_writer:   # rows past the checkpoint go (a fresh fine-tuning run keeps none); a
      # corrupt line stops the run here, naming file and line, with nothing changed
      kept = {k: metrics.truncate_after(path, start if start or k == "metrics"
                                        or not job.eval_at_start else -1)
              for k, path in paths.items()}
    # Only now, with every check and the restore passed, does the workdir take this config.
    if jax.process_count() > 1:   # every process has read the old config.json first
      from jax.experimental import multihost_utils
      multihost_utils.sync_global_devices("kcompress: workdir checked")
    os.makedirs(workdir, exist_ok=True)
    if is_writer:
      with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(config.to_json(indent=2))
      tensorboard_log.rebuild(workdir, kept)
    if start:
      _say(f"resuming {workdir} from step {start}")
    writers = {k: metrics.Writer(p, enabled=is_writer) for k, p in paths.items()}
    mngr = checkpoint.manager(workdir)
    events = tensorboard_log.EventWriter(workdir, enabled=is_writer)

    mesh, layout = setup.mesh, setup.layout
    with jax.enable_x64(True):   # the generator state lives replicated on the mesh
      data_state = mesh_lib.put(data_state, mesh_lib.replicated(mesh))
    states = sweep.place(layout, mesh_lib.put(real_state, mesh_lib.replicated(mesh)), mesh)
    del real_state
    sweep_step = sweep.make_step(layout, setup.optimizer, config.optim, host["schedule_steps"],
                                 mesh)
    two_part_eval = evals.TwoPartEval(job, num_steps)
    probe_eval = evals.ProbeEval(job) if job.pipe.world is not None else None

  tokens_per_step = config.train.batch_size * setup.spec.context_length
  spe = job.pipe.steps_per_epoch
  t0 = time.perf_counter() - host["elapsed_s"]
  progress = {"time": 0.0, "step": start}   # train seconds and step at the last log line
  frozen_seen: set = set()
  last_rows: list[dict] = []

  def step_fn(s):
    states, data_state = s
    data_state, batch, bayes_r = job.pipe.step(data_state)
    states, m = sweep_step(states, batch)
    return (states, data_state), (m, bayes_r, job.overflow(data_state))

  def record(step_done: int, outputs) -> None:
    m, bayes_r, overflow = jax.device_get(outputs)
    if overflow:   # this step's batch holds clipped entity ids: stop before logging it
      raise RuntimeError(
          f"step {step_done}: the stream created more entities than it has room for (the "
          f"name space of {setup.spec.name_space} names, or the ids below injected entities); "
          f"raise config.data.name_alphabet or config.data.name_length")
    epoch = (step_done - 1) // spe if spe else None
    rows = metric_rows(step_done, setup, m, bayes_r, host, time.perf_counter() - t0, epoch)
    for r in rows:
      if r["frozen"] and (r["width"], r["seed"]) not in frozen_seen:
        frozen_seen.add((r["width"], r["seed"]))
        _say(f"WARNING non-finite loss: width={r['width']} seed={r['seed']} frozen at step "
             f"{r['frozen_step']}")
    writers["metrics"].write(rows)
    events.write_metrics(rows)
    last_rows[:] = rows

  def log(step_done: int, state) -> None:
    """Progress: the training rate (evaluations excluded) and the ETA of the training."""
    now = timer.seconds.get("train", 0.0)
    rate = (step_done - progress["step"]) * tokens_per_step / max(now - progress["time"], 1e-9)
    eta = (num_steps - step_done) * tokens_per_step / max(rate, 1e-9)
    first, last = last_rows[0], last_rows[-1]
    _say(f"step {step_done}/{num_steps}  {rate:,.0f} tok/s  loss bits/token "
         f"w{first['width']}={first['loss_bits']:.3f} w{last['width']}={last['loss_bits']:.3f}"
         f"  ETA {eta:.0f}s")
    progress.update(time=now, step=step_done)

  def two_part(step_done: int, state) -> None:
    preq = np.asarray(host["preq_bits_by_role"]).sum(-1)
    rows = two_part_eval(step_done, state[0], preq, host["tokens_seen"])
    writers["ksf"].write(rows)
    events.write_ksf(rows)
    per_token = ", ".join(f"w{r['width']}={r['data_bits'] / max(r['data_tokens'], 1):.3f}"
                          for r in rows)
    _say(f"eval {step_done}: data bits/token of x under each model: {per_token}")

  def probe(step_done: int, state) -> None:
    rows = probe_eval(step_done, state[0], state[1], host["tokens_seen"])
    writers["probes"].write(rows)
    events.write_probes(rows)

  def save(step_done: int, state) -> None:
    host["elapsed_s"] = time.perf_counter() - t0
    checkpoint.save(mngr, step_done, sweep.unplace(layout, state[0], mesh), state[1], host)

  actions = [loop.Periodic("log", config.log_every, log, on_signal=True),
             loop.Periodic("two_part", config.eval_every, two_part, at_start=job.eval_at_start)]
  if probe_eval is not None:
    actions.append(loop.Periodic("probes", config.eval_every, probe,
                                 at_start=job.eval_at_start))
  actions.append(loop.Periodic("checkpoint", config.checkpoint_every, save, on_signal=True))

  def close() -> None:
    for w in writers.values():
      w.close()
    events.close()
    mngr.close()

  try:
    loop.run_loop((states, data_state), step_fn, start, num_steps, record, actions, timer)
  except loop.Stopped as stop:
    close()
    _say(f"signal {stop.signum}: checkpoint saved at step {stop.step}; exiting")
    raise SystemExit(128 + stop.signum) from None
  except BaseException:
    close()
    raise
  close()
  if not last_rows:   # nothing left to train: the final rows are on file
    last_rows = [r for r in metrics.read_rows(paths["metrics"]) if r["step"] == num_steps]
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
