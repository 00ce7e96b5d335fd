"""Metrics as JSON lines, one object per (step, model), appended by process 0.

On resume, rows past the restored step (and a torn last line) are dropped by an
atomic rewrite, so the final file holds exactly one row per (step, model).
"""

from __future__ import annotations

import json
import os


def read_rows(path: str) -> list[dict]:
  """Every complete JSON row of a metrics file (a torn last line is skipped)."""
  rows = []
  if not os.path.exists(path):
    return rows
  with open(path) as f:
    for line in f:
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:
        break
  return rows


def truncate_after(path: str, step: int) -> list[dict]:
  """Keeps rows with row['step'] <= step; returns them."""
  rows = [r for r in read_rows(path) if r["step"] <= step]
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    for r in rows:
      f.write(json.dumps(r) + "\n")
  os.replace(tmp, path)
  return rows


class Writer:
  """Appends rows; flushes on every write so a crash loses at most a partial line."""

  def __init__(self, path: str, enabled: bool = True):
    self.path, self.enabled = path, enabled
    self._f = open(path, "a") if enabled else None

  def write(self, rows: list[dict]) -> None:
    if self._f is None:
      return
    self._f.write("".join(json.dumps(r) + "\n" for r in rows))
    self._f.flush()

  def close(self) -> None:
    if self._f is not None:
      self._f.close()
