"""Reading a finished (or running) sweep back from its workdir: config, train and data state.

A kcompress workdir holds `config.json` (the resolved config) and orbax checkpoints
under `checkpoints/<step>/` (`kcompress.checkpoint`). `restore(workdir)` rebuilds the
run's static setup from the config and restores one checkpoint into it, so tools
(compression, fine-tuning, analysis of parameters) see exactly the trained models.
"""

from __future__ import annotations

import json
import os
from typing import Any, NamedTuple

import ml_collections

from kcompress import checkpoint


class Restored(NamedTuple):
  config: ml_collections.ConfigDict
  setup: Any            # kcompress.train.Setup
  states: list          # one TrainState per bucket (leading model axis)
  data_state: Any       # the generator state after `step` batches
  host: dict            # host-side totals (cumulative prequential bits, ...)
  step: int
  pipe: Any             # kcompress.train.DataPipe of the run (its world, its data step)


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The resolved config of a run; a clear error if `workdir` is not a kcompress workdir."""
  path = os.path.join(workdir, "config.json")
  if not os.path.isdir(workdir):
    raise FileNotFoundError(f"{workdir}: no such directory")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{workdir} is not a kcompress workdir: it has no config.json")
  with open(path) as f:
    raw = json.load(f)
  return _tupled(ml_collections.ConfigDict(raw))


def _tupled(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """JSON turned tuples into lists; configs hold tuples (hashable, as in configs/*.py)."""
  for k, v in cfg.items():
    if isinstance(v, ml_collections.ConfigDict):
      _tupled(v)
    elif isinstance(v, list):
      cfg[k] = tuple(v)
  return cfg


def checkpoint_steps(workdir: str) -> list[int]:
  mngr = checkpoint.manager(workdir, create=False)
  try:
    return sorted(mngr.all_steps())
  finally:
    mngr.close()


def restore(workdir: str, step: int | None = None) -> Restored:
  """The run's state at checkpoint `step` (default: the latest)."""
  from kcompress import train   # train imports this module's users; keep the import lazy
  config = read_config(workdir)
  setup = train.make_setup(config, use_mesh=False)
  steps = checkpoint_steps(workdir)
  if not steps:
    raise FileNotFoundError(f"{workdir} has no checkpoints (checkpoints/<step>/)")
  step = steps[-1] if step is None else int(step)
  if step not in steps:
    raise ValueError(f"{workdir} has no checkpoint of step {step}; it has {steps}")
  init_states, pipe, _ = train.initial(setup)
  mngr = checkpoint.manager(workdir, create=False)
  try:
    states, data_state, host = checkpoint.restore(mngr, step, init_states, pipe.init)
  finally:
    mngr.close()
  return Restored(config, setup, states, data_state, host, step, pipe)


def model_params(restored: Restored, i: int):
  """(padded ModelConfig, params, width) of model i of the sweep (index into setup.models)."""
  import jax
  for b, (cfg, idx) in enumerate(restored.setup.layout.buckets):
    if i in idx:
      j = idx.index(i)
      state = restored.states[b]
      return cfg, jax.tree.map(lambda x: x[j], state.params), int(state.width[j])
  raise IndexError(f"model {i} not in a sweep of {restored.setup.layout.num_models} models")
