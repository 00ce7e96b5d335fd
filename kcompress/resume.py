"""Where a run resumes: the newest intact checkpoint whose rows are all on file.

A checkpoint at step c is usable when the JSON-lines files hold everything the run had
written when it saved c: metrics.jsonl one row per (step, model) for every step 1..c, and
probes.jsonl / ksf.jsonl as many rows up to step c as the checkpoint's host dict counted
(`host["rows_written"]`, kept up to date by the run). Rows lost after a checkpoint (a
deleted or cut file, a second writer) then never hide behind it:

- the newest usable checkpoint is restored (`restore`); newer ones, ahead of the rows, are
  moved to WORKDIR/checkpoints_ahead_of_rows/ and one line says which step and why;
- when checkpoints exist but none is usable, a UserError names the gap and how to start
  over (nothing is changed). No checkpoint at all: a fresh start.

Rows past the step resumed from are dropped (`truncate_rows`): the run writes them again.
"""

from __future__ import annotations

import collections
import os
from typing import Callable

import numpy as np

from kcompress import checkpoint, metrics
from kcompress.data import roles
from kcompress.errors import UserError
from kcompress.job import Job

ROW_FILES = ("metrics", "probes", "ksf")
AHEAD_FOLDER = "checkpoints_ahead_of_rows"


def row_paths(workdir: str) -> dict[str, str]:
  return {k: os.path.join(workdir, f"{k}.jsonl") for k in ROW_FILES}


def read_rows(workdir: str) -> dict[str, list[dict]]:
  """The rows of the three files (a corrupt middle line: UserError, nothing changed)."""
  return {k: metrics.read_rows(p) for k, p in row_paths(workdir).items()}


def last_complete_step(rows: list[dict], models) -> int:
  """The largest t with exactly one metrics row per model for every step 1..t (0: none)."""
  per_step = collections.defaultdict(list)
  for r in rows:
    per_step[r["step"]].append((r["width"], r["seed"]))
  want = sorted(models)
  t = 0
  while sorted(per_step.get(t + 1, [])) == want:
    t += 1
  return t


def rows_gap(rows: dict[str, list[dict]], step: int, host: dict, models) -> str | None:
  """Why the rows on file lack some of what the run had written at checkpoint `step`
  (one phrase), or None when they hold all of it."""
  done = last_complete_step(rows["metrics"], models)
  if done < step:
    return f"metrics.jsonl rows are complete up to step {done} only"
  for kind, count in host.get("rows_written", {}).items():
    have = sum(r["step"] <= step for r in rows.get(kind, []))
    if have != count:
      return f"{kind}.jsonl holds {have} rows up to step {step}, the run had written {count}"
  return None


def fresh_host(job: Job) -> dict:
  """The host-side totals of a run before its first step."""
  config, num_models = job.config, len(job.setup.models)
  return dict(preq_bits_by_role=np.zeros((num_models, roles.NUM_ROLES)).tolist(),
              bayes_bits_by_role=np.zeros(roles.NUM_ROLES).tolist(), elapsed_s=0.0,
              tokens_seen=0, schedule_steps=int(config.train.get("schedule_steps", 0)
                                                or config.train.num_steps),
              started_num_steps=int(config.train.num_steps),
              rows_written={k: 0 for k in ROW_FILES})


def _check_length(job: Job, workdir: str, start: int, host: dict) -> None:
  """The run length and schedule a resumed run may ask for (UserError otherwise)."""
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


def _ahead_error(workdir: str, skipped: list) -> UserError:
  steps = ", ".join(str(s) for s, _ in reversed(skipped))
  return UserError(
      f"{workdir}: {skipped[-1][1]}, behind every checkpoint (steps {steps}), so no checkpoint "
      f"can resume the run without a hole in its rows; to start over, move "
      f"{os.path.join(workdir, 'checkpoints')} aside (or use another --workdir) and rerun")


def restore(job: Job, workdir: str, train_like, rows: dict[str, list[dict]],
            say: Callable[[str], None], is_writer: bool = True):
  """(start, train, data, host) of the newest usable checkpoint, or a fresh start when
  there is no checkpoint (module doc); `rows`: `read_rows(workdir)`."""
  models = job.setup.models
  found, skipped = checkpoint.restore_newest_intact(
      workdir, train_like, job.data_like, lambda step, host: rows_gap(rows, step, host, models),
      say)
  if found is None and skipped:
    raise _ahead_error(workdir, skipped)
  if found is None:
    return 0, train_like, job.data_like(None), fresh_host(job)
  start, train_state, data_state, host = found
  _check_length(job, workdir, start, host)
  line = f"resuming {workdir} from step {start}"
  if skipped:
    for step, _ in skipped:
      if is_writer:
        checkpoint.set_aside(workdir, step, AHEAD_FOLDER)
    line += (f", not {skipped[0][0]}: {skipped[-1][1]} (checkpoints "
             f"{', '.join(str(s) for s, _ in reversed(skipped))} moved to "
             f"{os.path.join(workdir, AHEAD_FOLDER)})")
  say(line)
  host.setdefault("rows_written", {k: sum(r["step"] <= start for r in rows[k])
                                   for k in ROW_FILES})
  return start, train_state, data_state, host


def truncate_rows(workdir: str, rows: dict[str, list[dict]], start: int
                  ) -> dict[str, list[dict]]:
  """Drops the rows past step `start` from the files (atomic rewrites) and returns the rows
  kept. A fresh start (0) keeps none, not even a fine-tuning run's step-0 evaluations
  (written again)."""
  cut = start if start else -1
  return {k: metrics.truncate_after(p, cut, rows[k]) for k, p in row_paths(workdir).items()}
