"""Metrics as JSON lines, one object per (step, model), appended by process 0.

Every reader goes through `read_rows`, so a file reads the same way everywhere:

  * a torn LAST line (no trailing newline, or not a JSON object: what a crash in the
    middle of an append leaves) is dropped, with one warning line on the terminal;
  * a corrupt line anywhere else is an error (`UserError` naming file:line): nothing
    is guessed and nothing is changed;
  * blank lines carry nothing and are skipped.

Whole JSON files of a workdir are written by `write_json` (atomically).

On resume, `truncate_after` drops rows past the restored step (and a torn last line) by
an atomic rewrite, so the final file holds exactly one row per (step, model). It reads
through `read_rows`, so a corrupt middle line stops it before the file is touched.
"""

from __future__ import annotations

import json
import os

from absl import logging

from kcompress.errors import UserError


def write_json(path: str, obj, **dump_kwargs) -> None:
  """`obj` as JSON at `path`, atomically: a reader (the analysis of a running workdir) or a
  crash sees the old file or the new one, never a cut one."""
  with open(path + ".tmp", "w") as f:
    json.dump(obj, f, **dump_kwargs)
    f.flush()
    os.fsync(f.fileno())
  os.replace(path + ".tmp", path)


def _parse(line: bytes):
  """The row of one line, or None when it is not a JSON object."""
  try:
    row = json.loads(line.decode("utf-8"))
  except (UnicodeDecodeError, json.JSONDecodeError):
    return None
  return row if isinstance(row, dict) else None


def read_rows(path: str) -> list[dict]:
  """Every row of a JSON-lines file ([] when it does not exist).

  A torn last line is dropped with a warning; a corrupt line elsewhere raises UserError.
  """
  if not os.path.exists(path):
    return []
  with open(path, "rb") as f:
    data = f.read()
  pieces = data.split(b"\n")   # the last piece is b"" when the file ends with a newline
  last = next((i for i in reversed(range(len(pieces))) if pieces[i].strip()), -1)
  rows, offset = [], 0
  for i, piece in enumerate(pieces):
    if piece.strip():
      # A last piece without its newline is torn, even when it happens to parse.
      row = _parse(piece) if i < len(pieces) - 1 else None
      if row is None:
        if i != last:
          raise UserError(f"{path}:{i + 1}: corrupt JSON line; fix or remove it "
                          "(nothing was changed)")
        _warn_torn(path, len(data) - offset)
        break
      rows.append(row)
    offset += len(piece) + 1
  return rows


def _warn_torn(path: str, num_bytes: int) -> None:
  message = f"WARNING {path}: dropped a torn last line ({num_bytes} bytes)"
  print(message, flush=True)
  logging.warning("%s", message)


def last_step(path: str) -> int | None:
  """The largest step of a JSON-lines file's rows; None when it has none."""
  return max((r["step"] for r in read_rows(path)), default=None)


def truncate_after(path: str, step: int, rows: list[dict] | None = None) -> list[dict]:
  """Keeps rows with row['step'] <= step (atomic rewrite; a torn last line goes too) and
  returns them. `rows`: the file's rows when the caller has read them (`read_rows`). A
  corrupt middle line raises UserError and leaves the file untouched. A missing file stays
  missing."""
  if not os.path.exists(path):
    return []
  rows = [r for r in (read_rows(path) if rows is None else rows) if r["step"] <= step]
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write("".join(json.dumps(r) + "\n" for r in rows))
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)
  return rows


class Writer:
  """Appends rows, each batch of rows with one unbuffered write, so a crash loses at most a
  partial line. A failed write (disk full, a file-size limit) cuts the file back to its
  last complete row before the error propagates: the rows on file stay valid."""

  def __init__(self, path: str, enabled: bool = True):
    self.path, self.enabled = path, enabled
    self._f = open(path, "ab", buffering=0) if enabled else None

  def write(self, rows: list[dict]) -> None:
    if self._f is None:
      return
    data = "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8")
    size = self._f.seek(0, os.SEEK_END)
    try:
      view = memoryview(data)
      while view:
        view = view[self._f.write(view):]
    except OSError as e:
      self._f.truncate(size)
      raise OSError(e.errno, e.strerror, self.path) from e

  def sync(self) -> None:
    """The rows written so far reach the disk (before a checkpoint counts on them)."""
    if self._f is not None:
      os.fsync(self._f.fileno())

  def close(self) -> None:
    if self._f is not None:
      self._f.close()
      self._f = None
