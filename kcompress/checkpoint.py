"""Orbax checkpoints of a run: train state, generator state and host-side totals.

Layout: WORKDIR/checkpoints/<step>/{train,data,host}. Saves are atomic (orbax
finalises a step directory only when complete), so a run killed mid-save resumes
from the previous complete step. A step that exists but does not restore (an item
removed or corrupted) is reported, moved to WORKDIR/checkpoints_damaged/<step>, and
the next older step is used (`restore_newest_intact`). A step the caller finds unusable
from its host dict alone (`usable`: e.g. its rows are not all on file) is skipped the same
way but left in place: the caller decides (`kcompress.resume`). The newest MAX_TO_KEEP
steps are kept, so older ones remain to resume from when newer ones cannot be used.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Callable

import jax
import orbax.checkpoint as ocp
from absl import logging

ITEMS = ("train", "data", "host")
MAX_TO_KEEP = 3


def manager(workdir: str, max_to_keep: int = MAX_TO_KEEP,
            create: bool = True) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create,
                                         enable_async_checkpointing=False)
  return ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, "checkpoints")),
                               options=options, item_names=ITEMS)


def steps(workdir: str) -> list[int]:
  """Checkpointed steps, ascending (none: [])."""
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    return []
  mngr = manager(workdir, create=False)
  try:
    return sorted(mngr.all_steps())
  finally:
    mngr.close()


def save(mngr: ocp.CheckpointManager, step: int, train: Any, data: Any, host: dict) -> None:
  """Saves (and waits for) one checkpoint. `data` may hold float64 arrays."""
  with jax.enable_x64(True):
    mngr.save(step, args=ocp.args.Composite(
        train=ocp.args.StandardSave(train), data=ocp.args.StandardSave(data),
        host=ocp.args.JsonSave(host)), force=True)
    mngr.wait_until_finished()


def _abstract(tree):
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def restore_host(mngr: ocp.CheckpointManager, step: int) -> dict:
  """The host-side dict of checkpoint `step` (cheap: no arrays are read)."""
  return mngr.restore(step, args=ocp.args.Composite(host=ocp.args.JsonRestore())).host


def restore(mngr: ocp.CheckpointManager, step: int, train_like: Any,
            data_like: Any | Callable[[dict], Any]):
  """(train, data, host) of `step`, restored with the dtypes and shapes of the templates.
  `data_like` may be a function of the checkpoint's host dict (shapes recorded there)."""
  with jax.enable_x64(True):
    host = restore_host(mngr, step)
    if callable(data_like):
      data_like = data_like(host)
    out = mngr.restore(step, args=ocp.args.Composite(
        train=ocp.args.StandardRestore(_abstract(train_like)),
        data=ocp.args.StandardRestore(_abstract(data_like))))
  return out.train, out.data, host


def set_aside(workdir: str, step: int, folder: str = "checkpoints_damaged") -> str:
  """Moves checkpoints/<step> to WORKDIR/<folder>/<step> (a free name); returns where."""
  src = os.path.join(workdir, "checkpoints", str(step))
  dst_dir = os.path.join(workdir, folder)
  os.makedirs(dst_dir, exist_ok=True)
  dst, k = os.path.join(dst_dir, str(step)), 1
  while os.path.exists(dst):
    dst, k = os.path.join(dst_dir, f"{step}.{k}"), k + 1
  shutil.move(src, dst)
  return dst


def restore_newest_intact(workdir: str, train_like: Any, data_like: Callable[[dict], Any],
                          usable: Callable[[int, dict], str | None] = lambda step, host: None,
                          say: Callable[[str], None] = lambda s: print(s, flush=True)):
  """(found, skipped): found = (step, train, data, host) of the newest checkpoint that
  restores and is `usable` (None: no such checkpoint); skipped = [(step, reason)] of the
  newer steps `usable(step, host)` refused, newest first, left in place.

  Each damaged newer step gets one WARNING line (via `say`) and is moved to
  WORKDIR/checkpoints_damaged/ (process 0), so later saves and resumes never see it.
  """
  damaged, skipped = [], []
  found = None
  for step in reversed(steps(workdir)):
    mngr = manager(workdir, create=False)
    try:
      with jax.enable_x64(True):
        host = restore_host(mngr, step)
      reason = usable(step, host)
      if reason is not None:
        skipped.append((step, reason))
        continue
      train, data, host = restore(mngr, step, train_like, data_like)
      found = (step, train, data, host)
    except Exception as e:   # noqa: BLE001 - any failure to read a step means damage
      logging.exception("checkpoint %d of %s does not restore", step, workdir)
      reason = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
      damaged.append((step, reason))
    finally:
      mngr.close()
    if found:
      break
  for step, reason in damaged:
    where = set_aside(workdir, step) if jax.process_index() == 0 else "(left in place)"
    older = (f"resuming from step {found[0]}" if found else "no intact checkpoint"
             + ("" if skipped else ": starting over"))
    say(f"WARNING checkpoint {os.path.join(workdir, 'checkpoints', str(step))} is damaged "
        f"({reason}); moved to {where}; {older}")
  return found, skipped
