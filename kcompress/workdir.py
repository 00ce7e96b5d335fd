"""Reading a finished (or running) sweep back from its workdir: config, train and data state.

A kcompress workdir holds `config.json` (the resolved config) and orbax checkpoints
under `checkpoints/<step>/` (`kcompress.checkpoint`). `restore(workdir)` rebuilds the
run's job from the config and restores one checkpoint into it, so tools (compression,
fine-tuning, analysis of parameters) see exactly the trained models.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import ml_collections

from kcompress import checkpoint, setup as setup_lib, train
from kcompress.errors import UserError


class Restored(NamedTuple):
  config: ml_collections.ConfigDict
  setup: setup_lib.Setup
  states: list          # one TrainState per bucket (leading model axis)
  data_state: Any       # the generator state after `step` batches
  host: dict            # host-side totals (cumulative prequential bits, ...)
  step: int
  pipe: Any             # kcompress.job.DataPipe of the run (its world, its data step)


def restore(workdir: str, step: int | None = None) -> Restored:
  """The run's state at checkpoint `step` (default: the latest)."""
  config = setup_lib.read_config(workdir)
  setup = setup_lib.make_setup(config, use_mesh=False)
  steps = checkpoint.steps(workdir)
  if not steps:
    raise UserError(f"{workdir} has no checkpoints (checkpoints/<step>/)")
  step = steps[-1] if step is None else int(step)
  if step not in steps:
    raise UserError(f"--step={step}: {workdir} has no checkpoint of that step; it has {steps}")
  job = train.describe(config, setup)
  mngr = checkpoint.manager(workdir, create=False)
  try:
    states, data_state, host = checkpoint.restore(mngr, step, setup.init_state(), job.data_like)
  finally:
    mngr.close()
  return Restored(config, setup, states, data_state, host, step, job.pipe)


def model_params(restored: Restored, i: int):
  """(padded ModelConfig, params, width) of model i of the sweep (index into setup.models)."""
  import jax
  for b, (cfg, idx) in enumerate(restored.setup.layout.buckets):
    if i in idx:
      j = idx.index(i)
      state = restored.states[b]
      return cfg, jax.tree.map(lambda x: x[j], state.params), int(state.width[j])
  raise IndexError(f"model {i} not in a sweep of {restored.setup.layout.num_models} models")
