"""Orbax checkpoints of a run: train state, generator state and host-side totals.

Layout: WORKDIR/checkpoints/<step>/{train,data,host}. Saves are atomic (orbax
finalises a step directory only when complete), so a run killed mid-save
resumes from the previous complete step.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


def manager(workdir: str, max_to_keep: int = 3, create: bool = True) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create,
                                         enable_async_checkpointing=False)
  return ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, "checkpoints")),
                               options=options, item_names=("train", "data", "host"))


def save(mngr: ocp.CheckpointManager, step: int, train: Any, data: Any, host: dict) -> None:
  """Saves (and waits for) one checkpoint. `data` may hold float64 arrays."""
  with jax.enable_x64(True):
    mngr.save(step, args=ocp.args.Composite(
        train=ocp.args.StandardSave(train), data=ocp.args.StandardSave(data),
        host=ocp.args.JsonSave(host)), force=True)
    mngr.wait_until_finished()


def restore(mngr: ocp.CheckpointManager, step: int, train_like: Any, data_like: Any):
  """(train, data, host) of `step`, restored with the dtypes and shapes of the templates."""
  abstract = lambda tree: jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)
  with jax.enable_x64(True):
    out = mngr.restore(step, args=ocp.args.Composite(
        train=ocp.args.StandardRestore(abstract(train_like)),
        data=ocp.args.StandardRestore(abstract(data_like)), host=ocp.args.JsonRestore()))
  return out.train, out.data, out.host
