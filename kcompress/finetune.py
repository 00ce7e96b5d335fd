"""Fine-tuning a pretrained sweep: injected new knowledge mixed with replayed stream data.

A fine-tuning config is a sweep config plus `init_from` (a pretrained workdir) and a
`finetune` section (`configs/finetune.py`). `job(config, setup)` describes the run for
the loop (`kcompress.train.run`), which does the rest as for pretraining (checkpoints,
resume, metrics, probes, two-part codes); this module supplies what differs:

- the start: every model's parameters and optimizer state from the pretrained
  checkpoint (`init_step`, 0 = latest), the update counter reset to 0 (the
  fine-tuning lr schedule starts afresh), the peak lr from the fine-tuning config; the
  stream continues where pretraining stopped;
- the batches: each step has R = round(replay_fraction * B) replay rows (the
  continued stream) and B - R injected-row slots. The injected material
  (`kcompress.data.inject`: `entities_per_count` new entities per repetition count,
  occurrences shuffled) is cut into rows placed at evenly spaced slots over the run;
  slots left over get replay rows too. `train.num_steps = 0` sizes the run to the
  injected material exactly;
- the probes: injected entities' facts by deliveries so far, beside the usual ones.

An arm of Gekhman et al.'s design (`config.finetune.arm` set by `kcompress.design`) is a
fine-tuning run whose injected material is its fixed set of fact sentences for
`config.finetune.epochs` epochs (`arm_injection`, `kcompress.gekhman`), no replay, probed
on the design's held-out facts and on the set's own examples.

With sentence packing (the default), every batch is priced as the models read it
(`kcompress.data.price`): the Bayes code of its sentences, replayed and injected, in row
order, after everything read before (pretraining and fine-tuning so far); replayed rows
are the stream's next rows, none drawn and dropped. With stream packing, injected tokens
carry 0 Bayes bits (the Bayes columns then cover the replayed stream only).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from kcompress import checkpoint, gekhman, hallucination, pretrain, probes as probes_lib
from kcompress import setup as setup_lib
from kcompress import step as step_lib
from kcompress.data import inject, price, source
from kcompress.data.spec import DataSpec
from kcompress.errors import UserError
from kcompress.job import DataPipe, Job, model_batch

COMPATIBLE_SECTIONS = ("seed", "data", "model", "sweep")


def is_finetune(config) -> bool:
  return bool(config.get("init_from"))


def check_compatible(config, pretrained) -> None:
  """The fine-tuning config must describe the pretrained run's data, models and seeds."""
  section = lambda c: {k: json.loads(c.to_json())[k] for k in COMPATIBLE_SECTIONS}
  old, new = section(pretrained), section(config)
  differ = setup_lib.config_diff(old, new)
  if differ:
    old_f = {**setup_lib.ADDED_FIELDS, **setup_lib.flatten(old)}
    new_f = {**setup_lib.ADDED_FIELDS, **setup_lib.flatten(new)}
    detail = ", ".join(f"config.{k}: {old_f.get(k)!r} (pretrained) vs {new_f.get(k)!r}"
                       for k in differ)
    raise UserError(f"config.init_from={config.init_from}: incompatible with this config; "
                    f"{detail}")


def pretrained_config(config):
  """The config of the run `config.init_from` names (checked compatible)."""
  try:
    pre = setup_lib.read_config(config.init_from)
  except UserError as e:
    raise UserError(f"config.init_from={config.init_from!r}: {e}") from None
  check_compatible(config, pre)
  return pre


class Plan(NamedTuple):
  injection: inject.Injection
  slots_TxB: np.ndarray   # int32 injected row index at (step, batch row), -1 = replay row
  replay_rows: int        # R: replay rows in every batch


def make_plan(spec: DataSpec, world, config, num_steps: int | None = None) -> Plan:
  """Where every injected row goes. `num_steps` None: config.train.num_steps (0 = auto)."""
  ft = config.finetune
  if not 0.0 <= ft.replay_fraction <= 1.0:
    raise UserError(f"config.finetune.replay_fraction={ft.replay_fraction}: must be in [0, 1]")
  if any(int(r) < 1 for r in ft.repetitions) or ft.entities_per_count < 0:
    raise UserError(f"config.finetune.repetitions={tuple(ft.repetitions)!r} and "
                     f"entities_per_count={ft.entities_per_count}: need counts >= 1, entities >= 0")
  batch = config.train.batch_size
  replay = int(round(ft.replay_fraction * batch))
  if gekhman.is_arm(config):
    injection = arm_injection(spec, world, ft)
  else:
    injection = inject.plan_injection(spec, world, tuple(ft.repetitions), ft.entities_per_count,
                                      ft.seed)
  num_rows = injection.rows.token.shape[0]
  per_step = batch - replay
  if num_rows and per_step == 0:
    raise UserError(f"config.finetune.replay_fraction={ft.replay_fraction}: no batch row is "
                     f"left for the {num_rows} rows of injected entities")
  steps = config.train.num_steps if num_steps is None else num_steps
  if steps <= 0:
    if not num_rows:
      raise UserError("config.train.num_steps=0 sizes the run to the injected material, but "
                       "config.finetune injects nothing; set config.train.num_steps")
    steps = -(-num_rows // per_step)
  if num_rows > steps * per_step:
    raise UserError(f"config.train.num_steps={steps}: {steps} x {per_step} injected-row slots "
                     f"hold fewer than the {num_rows} injected rows; raise num_steps or "
                     f"lower config.finetune.replay_fraction (0 sizes the run automatically)")
  slots = np.full((steps, batch), -1, np.int32)
  if num_rows:
    pos = (np.arange(num_rows) * (steps * per_step)) // num_rows
    slots[pos // per_step, replay + pos % per_step] = np.arange(num_rows)
  return Plan(injection, slots, replay)


def arm_injection(spec: DataSpec, world, ft) -> inject.Injection:
  """The fine-tuning set of one arm of a Gekhman design (`kcompress.gekhman`): its examples'
  sentences for `ft.epochs` epochs; the design's new entities are the injected ones."""
  design = gekhman.read_design(ft.design_file)
  ex = gekhman.arm_examples(design, ft.arm)
  return inject.plan_fact_set(spec, world, ex["entity"], ex["attribute"], ex["template"],
                              ex["synonyms"], np.asarray(design["unknown"]["entity"]),
                              int(ft.epochs), int(ft.seed))


def init_checkpoint(config) -> int:
  """The step of `config.init_from` fine-tuning starts from (`init_step`, 0 = the latest)."""
  available = checkpoint.steps(config.init_from)
  step = int(config.get("init_step") or 0) or (available[-1] if available else None)
  if step not in available:
    raise UserError(f"config.init_from={config.init_from!r}: no checkpoint of step "
                    f"{step or 'latest'} (it has {available or 'none'})")
  return step


def resolve(config):
  """A copy of the config with train.num_steps fixed (the auto length resolved)."""
  from kcompress import data
  if gekhman.is_design(config) and not gekhman.is_arm(config):
    raise UserError("config.finetune.unknown_shares: a Gekhman design is several fine-tuning "
                    "runs; start it with `python -m kcompress.main` (kcompress.design)")
  pretrained_config(config)
  init_checkpoint(config)
  if config.train.num_steps > 0:
    return config
  spec = data.data_spec(config.data)
  plan = make_plan(spec, source.host_world(spec, config.seed), config)
  resolved = config.copy_and_resolve_references()
  with resolved.unlocked():
    resolved.train.num_steps = int(plan.slots_TxB.shape[0])
  return resolved


def check_name_space(spec: DataSpec, plan: Plan, batch_state) -> None:
  """The continued stream must leave the injected ids alone: its entity arrays stop below
  them (an overflow is flagged and the run stops), and we ask for room for twice the
  expected number of its entities, as for pretraining."""
  from kcompress import theory
  sentences = int(batch_state.stream.crp.index) + source.batch_capacity(
      spec, plan.slots_TxB.shape[1], plan.slots_TxB.shape[0])
  first = first_injected_id(plan)
  first = spec.name_space if first is None else first
  expected = theory.expected_num_entities(spec.alpha, spec.beta, sentences)
  if 2 * expected > first:
    raise UserError(f"config.data: the name space ({spec.name_space} names) is too small for "
                     f"{len(plan.injection.entity_J)} injected entities beside a stream of up to "
                     f"{sentences} sentences (E[K_n] = {expected:.0f}); raise name_alphabet or "
                     f"name_length")


def first_injected_id(plan: Plan) -> int | None:
  """The lowest injected entity id (injected ids sit at the top of the name space)."""
  return int(plan.injection.entity_J.min()) if len(plan.injection.entity_J) else None


def restore_pretrained(config, setup):
  """(train states, data state, step) of the checkpoint fine-tuning starts from."""
  pre_config = pretrained_config(config)
  step = init_checkpoint(config)
  pre_setup = setup_lib.make_setup(pre_config, use_mesh=False)
  pre_job = job(pre_config, pre_setup) if is_finetune(pre_config) else pretrain.job(
      pre_config, pre_setup)
  mngr = checkpoint.manager(config.init_from, create=False)
  try:
    states, data_state, _ = checkpoint.restore(mngr, step, pre_setup.init_state(),
                                               pre_job.data_like)
  finally:
    mngr.close()
  return states, data_state, step


class FinetuneState(NamedTuple):
  batch: source.BatchState
  step: jax.Array   # int32 fine-tuning steps done
  priced: Any       # StreamState: counts of every sentence the models have read
                    # (pretraining, replay and injected; injected entities after the
                    # stream's), which price the next batch (`kcompress.data.price`)


def job(config, setup) -> Job:
  """The fine-tuning run of `config` (train.num_steps resolved: `resolve`)."""
  spec = setup.spec
  pre_states, pre_data, _ = restore_pretrained(config, setup)
  start_batch_state = pre_data.batch if isinstance(pre_data, FinetuneState) else pre_data
  lrs = step_lib.lr_for_width(config.optim, setup.widths_M)
  states = [state.replace(step=jnp.zeros_like(state.step),
                          lr_scale=jnp.asarray(lrs[list(idx)], state.lr_scale.dtype))
            for (_, idx), state in zip(setup.layout.buckets, pre_states)]
  world = source.host_world(spec, config.seed)
  plan = make_plan(spec, world, config)
  pipe = _make_pipe(spec, config, world, plan, start_batch_state)
  served = source.x64(jax.jit(
      lambda s: price.served_state(spec, jax.tree.map(jnp.asarray, world), s.batch)))

  def seen_counts(state, steps_done):
    del steps_done
    with jax.enable_x64(True):
      return jax.device_get(served(state))

  next_sentences = hallucination.make_next_sentences(spec, world)
  return Job(config=config, setup=setup, pipe=pipe, init_states=lambda: states,
             data_like=lambda host: pipe.init, fit_data=lambda state, done, steps: (state, None),
             seen_counts=seen_counts,
             next_sentences=lambda state, num: next_sentences(state.batch, num),
             overflow=lambda state: pretrain.stream_overflow(state.batch),
             extra_probes=_extra_probes(spec, world, plan, config),
             eval_at_start=True, fixed_length=True)


def _make_pipe(spec: DataSpec, config, world, plan: Plan, start_batch_state) -> DataPipe:
  """DataPipe of a fine-tuning run: init (continued stream, step 0) and the mixing step."""
  batch_size, num_steps = config.train.batch_size, config.train.num_steps
  grown = source.grow_batch_state(spec, start_batch_state, batch_size, num_steps,
                                  first_injected_id(plan))
  check_name_space(spec, plan, grown)
  rows, slots = plan.injection.rows, plan.slots_TxB   # host numpy: jit constants
  num_stream_entities = grown.stream.entity_counts_E.shape[0]
  first = first_injected_id(plan)
  first = spec.name_space if first is None else first

  def entity_slot(e):   # injected ids sit at the top of the name space
    return jnp.where(e >= first, num_stream_entities + e - first, e)

  with jax.enable_x64(True):
    priced = price.served_state(spec, jax.tree.map(jnp.asarray, world), grown)
    extra = len(plan.injection.entity_J)
    pad = lambda x: jnp.concatenate([x, jnp.zeros((extra,) + x.shape[1:], x.dtype)])
    priced = priced._replace(
        crp=priced.crp._replace(repeats_C=jnp.zeros((1,), jnp.int32)),   # never draws
        entity_counts_E=pad(priced.entity_counts_E), fact_counts_ExA=pad(priced.fact_counts_ExA))
    init = FinetuneState(grown, jnp.zeros((), jnp.int32), priced)

  sentence_packing = spec.packing == "sentence"

  @jax.jit
  def step(state: FinetuneState):
    slot_B = jnp.asarray(slots)[jnp.minimum(state.step, slots.shape[0] - 1)]
    is_replay = slot_B < 0
    # Sentence packing: the stream gives exactly as many rows as this step replays, so no
    # stream sentence is drawn and then dropped (its Bayes bits would vanish while later
    # ones stay conditioned on it). Stream packing: rows under injected slots are dropped.
    batch_state, replay = source.next_batch(
        spec, jax.tree.map(jnp.asarray, world), state.batch, batch_size,
        rows_used=is_replay.sum() if sentence_packing else None)
    if sentence_packing:   # replay row k goes to the k-th replay slot
      rank = jnp.clip(jnp.cumsum(is_replay) - 1, 0, batch_size - 1)
      replay = jax.tree.map(lambda x: x[rank], replay)
    safe = jnp.maximum(slot_B, 0)
    mixed = jax.tree.map(
        lambda r, inj: jnp.where(is_replay.reshape((-1,) + (1,) * (r.ndim - 1)), r,
                                 jnp.asarray(inj)[safe] if inj.shape[0] else r), replay, rows)
    priced = state.priced
    if sentence_packing:   # price the batch as read: after everything before it
      priced, bits = price.price_rows(spec, jax.tree.map(jnp.asarray, world), priced, mixed,
                                      entity_slot)
      mixed = mixed._replace(bayes_bits=bits)
    return (FinetuneState(batch_state, state.step + 1, priced), model_batch(mixed),
            source.bayes_bits_by_role(mixed))

  return DataPipe(init, source.x64(step), world)


def _extra_probes(spec: DataSpec, world, plan: Plan, config):
  """(steps_done, seed) -> the injected entities' probes, or a design arm's held-out and
  set probes (the same at every eval)."""
  if gekhman.is_arm(config):
    fixed = gekhman.arm_probes(spec, world, gekhman.read_design(config.finetune.design_file),
                               config.finetune.arm)
    return lambda steps_done, seed: fixed
  return lambda steps_done, seed: injected_probes(spec, world, plan, steps_done, seed)


def delivered_rows(plan: Plan, steps_done: int) -> int:
  """Injected rows delivered after `steps_done` steps (rows go out in order)."""
  return int((plan.slots_TxB[:steps_done] >= 0).sum())


def injected_probes(spec: DataSpec, world, plan: Plan, steps_done: int,
                    seed: int) -> probes_lib.ProbeSet:
  """One probe per injected entity delivered at least once: a fact its delivered sentences
  revealed; count = its deliveries so far. Padded to J probes (kind -1)."""
  inj = plan.injection
  done = inj.row_N < delivered_rows(plan, steps_done)
  rng = np.random.default_rng(seed)
  J = len(inj.entity_J)
  ent, attr, kind, count = np.zeros(J, np.int32), np.zeros(J, np.int32), np.full(J, -1), np.zeros(J)
  for j, k in enumerate(inj.entity_J):
    mine = done & (inj.entity_N == k)
    if mine.any():
      ent[j], attr[j] = k, rng.choice(np.unique(inj.attribute_N[mine]))
      kind[j], count[j] = probes_lib.INJECTED, mine.sum()
  return probes_lib.make_probes(spec, world, ent, attr, kind, count)
