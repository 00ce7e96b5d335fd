"""Runs Gekhman et al. (2024)'s design (`kcompress.gekhman`) from a pretrained sweep, in one
command:

  python -m kcompress.main --config=configs/paper.py:finetune [--workdir=W]

`run_design(config, workdir)` checks the config and the pretrained run (UserError, before
anything is written), writes WORKDIR/config.json, categorises every pretrained model's
knowledge (SliCK: greedy and sampled answers to `variants` prompts per fact) and writes
WORKDIR/design.json (once: a resumed design reuses it), runs every arm as a fine-tuning
run in WORKDIR/arm-<share> and WORKDIR/arm-control (each checkpoints and resumes like any
run), then writes the design's report (`kcompress.analysis.report`: WORKDIR/report/).
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from kcompress import finetune, gekhman, probes as probes_lib, setup as setup_lib, sweep, train
from kcompress.analysis.claims_rule import model_name
from kcompress.analysis.design_files import arm_dir
from kcompress.data import price, source

PROBE_CHUNK = 512     # prompts per compiled SliCK probe call (the last chunk is padded)


def arm_config(config, arm: str, design_file: str):
  """The fine-tuning config of one arm: the design's config with `finetune.arm` set."""
  c = config.copy_and_resolve_references()
  with c.unlocked():
    c.finetune.arm = arm
    c.finetune.design_file = design_file
  return c


def _probe_outputs(step_fn, states, pset: probes_lib.ProbeSet, keys) -> dict[str, np.ndarray]:
  """`keys` of the probe outputs [M, P] of every model, PROBE_CHUNK prompts per call."""
  size = len(pset.kind_P)
  out = {k: [] for k in keys}
  for lo in range(0, size, PROBE_CHUNK):
    part = probes_lib.ProbeSet(*(x[lo:lo + PROBE_CHUNK] for x in pset))
    real = len(part.kind_P)
    part = probes_lib.ProbeSet(*(np.concatenate([x, np.repeat(x[:1], PROBE_CHUNK - real, 0)])
                                 for x in part))
    got = jax.device_get(step_fn(states, part))
    for k in keys:
      out[k].append(np.asarray(got[k])[:, :real])
  return {k: np.concatenate(v, 1) for k, v in out.items()}


def measure_slick(config, setup, states, step_fn, entity_F, attribute_F):
  """(category codes, P0, mean probability of the truth at the sampling temperature), each
  [M, F]: SliCK of every model on the given facts."""
  ft, spec = config.finetune, setup.spec
  X, F = int(ft.variants), len(entity_F)
  world = source.host_world(spec, config.seed)
  syntax = gekhman.prompt_variants(spec, world, attribute_F, X, int(ft.seed))
  pset = probes_lib.make_probes(spec, world, np.repeat(entity_F, X), np.repeat(attribute_F, X),
                                np.zeros(F * X), np.zeros(F * X), syntax=syntax)
  out = _probe_outputs(step_fn, states, pset, ("correct", "p_true_T"))
  M = out["correct"].shape[0]
  greedy = out["correct"].reshape(M, F, X)
  p_t = out["p_true_T"].reshape(M, F, X)
  cats = np.stack([gekhman.slick_categories(greedy[m], p_t[m], int(ft.samples), (int(ft.seed), m))
                   for m in range(M)])
  return cats, greedy.mean(-1), p_t.mean(-1)


def _candidates(spec, world, batch_state, count: int) -> tuple[np.ndarray, np.ndarray]:
  """The `count` most-stated facts (entity, attribute) of the sentences pretraining served."""
  served = source.x64(jax.jit(lambda s: price.served_state(
      spec, jax.tree.map(jnp.asarray, world), s)))(batch_state)
  counts = np.asarray(jax.device_get(served.fact_counts_ExA))
  order = np.argsort(-counts.ravel(), kind="stable")
  order = order[counts.ravel()[order] > 0][:count]
  return np.divmod(order, spec.num_attributes)


def make_design(config) -> dict:
  """The design file's contents (`kcompress.gekhman`), from the pretrained checkpoint."""
  ft = config.finetune
  N, Nh, seed = int(ft.set_size), int(ft.heldout_size), int(ft.seed)
  setup = setup_lib.make_setup(config, use_mesh=False)
  spec = setup.spec
  world = source.host_world(spec, config.seed)
  states, data_state, step = finetune.restore_pretrained(config, setup)
  batch_state = data_state.batch if isinstance(data_state, finetune.FinetuneState) else data_state
  cand_e, cand_a = _candidates(spec, world, batch_state, int(ft.candidates))
  unk_e, unk_a = gekhman.unknown_facts(spec, N, seed)
  step_fn = sweep.make_probe_step(setup.layout, spec, config.probe.confident)
  cat_c, p0_c, ps_c = measure_slick(config, setup, states, step_fn, cand_e, cand_a)
  cat_u, _, _ = measure_slick(config, setup, states, step_fn, unk_e, unk_a)
  pool, held = gekhman.split_known(gekhman.rank_known(cat_c, p0_c, ps_c), N, Nh, seed)
  t, syn = gekhman.example_syntax(spec, world, np.concatenate([cand_a[pool], unk_a]), seed)
  example = lambda e, a, sl: {"entity": e.tolist(), "attribute": a.tolist(),
                              "template": t[sl].tolist(), "synonyms": syn[sl].tolist()}
  codes = {"known": cat_c[:, pool], "heldout": cat_c[:, held], "unknown": cat_u}
  models = [model_name(k) for k in setup.models]
  return {
      "init_from": config.init_from, "init_step": int(step), "models": models,
      "unknown_shares": [float(s) for s in ft.unknown_shares], "seed": seed,
      "candidates": int(len(cand_e)),
      "known": example(cand_e[pool], cand_a[pool], slice(0, N)),
      "unknown": example(unk_e, unk_a, slice(N, 2 * N)),
      "heldout": {"entity": cand_e[held].tolist(), "attribute": cand_a[held].tolist()},
      "category_codes": {part: {m: c[i].tolist() for i, m in enumerate(models)}
                         for part, c in codes.items()},
      "categories": {m: {part: {name: int(np.sum(c[i] == j))
                                for j, name in enumerate(gekhman.CATEGORIES)}
                         for part, c in codes.items()} for i, m in enumerate(models)},
  }


def check(config, workdir: str) -> None:
  """Everything checked before the design writes anything (UserError naming the field)."""
  gekhman.check_design_config(config)
  setup_lib.validate(config)
  finetune.pretrained_config(config)
  finetune.init_checkpoint(config)
  setup_lib.check_resumable(workdir, config)


def run_design(config, workdir: str) -> dict:
  """Runs (or resumes) the whole design in `workdir`; returns the design report's summary."""
  from kcompress.analysis import report
  check(config, workdir)
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json(indent=2))
  path = os.path.join(workdir, gekhman.DESIGN_FILE)
  if not os.path.exists(path):
    print("design: SliCK categories of the pretrained models' knowledge", flush=True)
    gekhman.write_design(path, make_design(config))
  for arm in gekhman.arm_names(config.finetune.unknown_shares):
    print(f"design: arm {arm}", flush=True)
    train.run(arm_config(config, arm, path), arm_dir(workdir, arm))
  return report.write_report(workdir)
