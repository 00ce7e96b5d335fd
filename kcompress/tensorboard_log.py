"""TensorBoard scalars of a run, written beside its JSON lines (which stay the truth).

  writer = EventWriter(workdir, enabled=is_process_0)
  writer.write_metrics(rows)      # metrics.jsonl rows, every step
  writer.write_probes(rows)       # probes.jsonl rows
  writer.write_ksf(rows)          # ksf.jsonl rows
  writer.close()

  rebuild(workdir[, rows])        # all event files again, from the three JSON-lines files
  python -m kcompress.tensorboard_log --workdir=W        # the same, for a finished run
  tensorboard --logdir W/tb

One event-file directory per model, WORKDIR/tb/w{width}_s{seed}/, so TensorBoard overlays
the models of a sweep (each is a "run" there). Every row becomes one event (step =
row["step"]) holding all its scalars; None, booleans and non-numeric fields are skipped,
and so are the fields that identify a row (step, width, seed, params; tokens_seen of
probes and ksf rows, which metrics rows already give).
Tags (<role> is name, syntax, value or end; <bin> an occurrence bin, '+' spelled 'plus'):

  metrics rows   loss/bits, loss/bits_<role>, loss/step_bits, bayes/bits_<role>,
                 code/preq_bits[_<role>], code/bayes_bits[_<role>],
                 code/preq_over_bayes[_<role>] (where the Bayes bits are > 0),
                 tokens/<role>, lr, tokens_seen, epoch, time/elapsed_s,
                 other/<field> (any other number, e.g. other/frozen_step)
  probes rows    accuracy/occ_<bin>, value_bits/occ_<bin> (bits of the true value),
                 stored_bits/occ_<bin>, knowledge/<field>_occ_<bin> (n, facts, ...),
                 capacity/<field> (stored_bits, facts, fact_entropy_bits),
                 hallucination/<field>_<fresh|unrevealed|bayes> (confident, top1, kl, ...),
                 facts/<field>, other/<field>
  ksf rows       two_part/<field> (data_bits, preq_bits, seen_data_bits,
                 prequential_complexity_bits, ...), and per quantised point of precision p:
                 two_part/p<p>/complexity_bits, two_part/p<p>/data_bits,
                 two_part/p<p>/total_bits (their sum), two_part/best_total_bits (the least
                 finite total)

Writing is synchronous and cheap (one small protobuf per row into a buffered file, through
tensorboardX's event writer); files are flushed every `flush_secs` and at close, so a
crash may lose the last seconds of events, never of JSON lines: `rebuild` after a resume
restores them. Only process 0 writes (`enabled`).
"""

from __future__ import annotations

import functools
import math
import os
import re
import shutil
import time

from kcompress import metrics
from kcompress.errors import UserError

TB_DIR = "tb"
FLUSH_SECS = 30.0
JSONL = {"metrics": "metrics.jsonl", "probes": "probes.jsonl", "ksf": "ksf.jsonl"}

_IDENTITY = ("step", "width", "seed", "params")
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-/]")


def model_dir(workdir: str, width: int, seed: int) -> str:
  """The event-file directory of one model of the sweep."""
  return os.path.join(workdir, TB_DIR, f"w{width}_s{seed}")


def _number(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool)


def _safe(label) -> str:
  return _TAG_UNSAFE.sub("_", str(label).replace("+", "plus"))


# ------------------------------------------------------------------ rows -> {tag: value}


@functools.lru_cache(maxsize=None)
def _metrics_tag(k: str) -> tuple[str | None, str | None, str | None]:
  """(tag of field k or None, and for preq_bits[_<role>]: its Bayes field, ratio tag)."""
  if k in _IDENTITY:
    return None, None, None
  if k == "loss_bits":
    tag = "loss/bits"
  elif k == "step_bits" or k.startswith("bits_"):
    tag = f"loss/{k}"
  elif k.startswith(("preq_bits", "bayes_bits")):
    tag = f"code/{k}"
  elif k.startswith("bayes_"):
    tag = f"bayes/bits_{k[len('bayes_'):]}"
  elif k.startswith("tokens_") and k != "tokens_seen":
    tag = f"tokens/{k[len('tokens_'):]}"
  elif k in ("lr", "tokens_seen", "epoch"):
    tag = k
  elif k == "elapsed_s":
    tag = "time/elapsed_s"
  else:
    tag = f"other/{k}"
  if k.startswith("preq_bits"):
    rest = k[len("preq_bits"):]
    return _safe(tag), "bayes_bits" + rest, _safe("code/preq_over_bayes" + rest)
  return _safe(tag), None, None


def metrics_scalars(row: dict) -> dict[str, float]:
  """The scalars of one metrics.jsonl row, by tag (called every step: kept cheap)."""
  out, ratios = {}, []
  for k, v in row.items():
    tag, den, ratio_tag = _metrics_tag(k)
    if tag is not None and isinstance(v, (int, float)) and not isinstance(v, bool):
      out[tag] = float(v)
      if den is not None:
        ratios.append((ratio_tag, v, row.get(den)))
  for tag, num, den in ratios:
    if isinstance(den, (int, float)) and not isinstance(den, bool) and den > 0:
      out[tag] = num / den
  return out


def probes_scalars(row: dict) -> dict[str, float]:
  """The scalars of one probes.jsonl row, by tag."""
  out = {}
  named = {"accuracy": "accuracy", "bits": "value_bits", "stored_bits": "stored_bits"}
  for k, v in row.items():
    if k in _IDENTITY or k == "tokens_seen":
      continue
    if k == "knowledge" and isinstance(v, dict):
      for b, figures in v.items():
        for f, x in (figures or {}).items():
          tag = f"{named[f]}/occ_{b}" if f in named else f"knowledge/{f}_occ_{b}"
          _put(out, tag, x)
    elif k == "hallucination" and isinstance(v, dict):
      for kind, figures in v.items():
        for f, x in (figures or {}).items():
          _put(out, f"hallucination/{f}_{kind}", x)
    elif k == "bayes_hallucination" and isinstance(v, dict):
      for f, x in v.items():
        _put(out, f"hallucination/{f}_bayes", x)
    elif k in ("capacity", "facts") and isinstance(v, dict):
      for f, x in v.items():
        _put(out, f"{k}/{f}", x)
    else:
      _put_nested(out, f"other/{k}", v)
  return out


def ksf_scalars(row: dict) -> dict[str, float]:
  """The scalars of one ksf.jsonl row (two-part codes), by tag."""
  out = {}
  for k, v in row.items():
    if k in _IDENTITY or k == "tokens_seen":
      continue
    if k == "quantised" and isinstance(v, list):
      totals = []
      for point in v:
        if not isinstance(point, dict) or not _number(point.get("precision")):
          continue
        p = f"two_part/p{point['precision']}"
        for f, x in point.items():
          if f != "precision":
            _put(out, f"{p}/{f}", x)
        c, d = point.get("complexity_bits"), point.get("data_bits")
        if _number(c) and _number(d):
          out[_safe(f"{p}/total_bits")] = float(c) + float(d)
          if math.isfinite(c + d):
            totals.append(float(c) + float(d))
      if totals:
        out["two_part/best_total_bits"] = min(totals)
    else:
      _put_nested(out, f"two_part/{k}", v)
  return out


def _put(out: dict, tag: str, v) -> None:
  if _number(v):
    out[_safe(tag)] = float(v)


def _put_nested(out: dict, tag: str, v) -> None:
  if isinstance(v, dict):
    for k, x in v.items():
      _put_nested(out, f"{tag}/{k}", x)
  else:
    _put(out, tag, v)


SCALARS = {"metrics": metrics_scalars, "probes": probes_scalars, "ksf": ksf_scalars}


# ------------------------------------------------------------------------- writing


class EventWriter:
  """Rows -> TensorBoard scalars under WORKDIR/tb/w{width}_s{seed}/ (one open event file
  per model). Does nothing when not `enabled` (processes other than 0)."""

  _opened = 0   # event files opened by this process: part of each file's unique name

  def __init__(self, workdir: str, enabled: bool = True, flush_secs: float = FLUSH_SECS):
    self.workdir, self.enabled, self.flush_secs = workdir, enabled, flush_secs
    self._files = {}            # (width, seed) -> tensorboardX EventsWriter
    self._next_flush = time.monotonic() + flush_secs
    if enabled:
      from tensorboardX.proto import event_pb2, summary_pb2
      self._Event, self._Summary = event_pb2.Event, summary_pb2.Summary

  def write_metrics(self, rows: list[dict]) -> None:
    self._write(rows, metrics_scalars)

  def write_probes(self, rows: list[dict]) -> None:
    self._write(rows, probes_scalars)

  def write_ksf(self, rows: list[dict]) -> None:
    self._write(rows, ksf_scalars)

  def _write(self, rows, scalars, walltime=None) -> None:
    if not self.enabled:
      return
    now = time.time()
    Value = self._Summary.Value
    for row in rows:
      values = scalars(row)
      if not values:
        continue
      summary = self._Summary(value=[Value(tag=t, simple_value=v) for t, v in values.items()])
      wall = now if walltime is None else walltime(row)
      self._file(row["width"], row["seed"]).write_event(
          self._Event(wall_time=wall, step=int(row["step"]), summary=summary))
    if time.monotonic() >= self._next_flush:
      self.flush()

  def _file(self, width: int, seed: int):
    f = self._files.get((width, seed))
    if f is None:
      from tensorboardX.event_file_writer import EventsWriter
      path = model_dir(self.workdir, width, seed)
      os.makedirs(path, exist_ok=True)
      # tensorboardX names a file by the second and the host and opens it with "wb":
      # a suffix unique to this process and file keeps two files of the same second apart
      # (and sorts a later file after an earlier one, as TensorBoard reads them).
      EventWriter._opened += 1
      suffix = f".{time.time_ns()}.{os.getpid()}.{EventWriter._opened}"
      f = self._files[(width, seed)] = EventsWriter(os.path.join(path, "events"), suffix)
    return f

  def flush(self) -> None:
    for f in self._files.values():
      f.flush()
    self._next_flush = time.monotonic() + self.flush_secs

  def close(self) -> None:
    for f in self._files.values():
      f.close()
    self._files.clear()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def rebuild(workdir: str, rows: dict[str, list[dict]] | None = None) -> dict[str, int]:
  """Rewrites WORKDIR/tb/ from metrics.jsonl, probes.jsonl and ksf.jsonl (process 0 only).

  `rows`: {"metrics": [...], "probes": [...], "ksf": [...]} when the caller has just read
  them (e.g. what `metrics.truncate_after` returned on resume); missing kinds are read
  from their files. Deletes the old event files first (after reading the JSON lines, so a
  corrupt file leaves them as they were). Events get wall times from the rows'
  elapsed_s, counted back from the metrics file's modification time. Returns the rows
  written per file.
  """
  rows = dict(rows or {})
  for kind, name in JSONL.items():
    if rows.get(kind) is None:
      rows[kind] = metrics.read_rows(os.path.join(workdir, name))
  elapsed = {(r["step"], r["width"], r["seed"]): r["elapsed_s"] for r in rows["metrics"]
             if _number(r.get("elapsed_s"))}
  walltime = None
  metrics_path = os.path.join(workdir, JSONL["metrics"])
  if elapsed and os.path.exists(metrics_path):
    start = os.path.getmtime(metrics_path) - max(elapsed.values())

    def walltime(row):
      return start + elapsed.get((row["step"], row["width"], row["seed"]), 0.0)

  shutil.rmtree(os.path.join(workdir, TB_DIR), ignore_errors=True)
  # In step order, as the loop writes them (each file's rows already are).
  merged = sorted(((r["step"], i, r) for i, kind in enumerate(JSONL) for r in rows[kind]),
                  key=lambda x: x[:2])
  kinds = [SCALARS[kind] for kind in JSONL]
  with EventWriter(workdir) as w:
    for _, i, r in merged:
      w._write([r], kinds[i], walltime)
  return {kind: len(rows[kind]) for kind in JSONL}


# ----------------------------------------------------------------------------- CLI


def main(argv):
  del argv
  from absl import flags
  workdir = flags.FLAGS.workdir
  if not workdir:
    raise UserError("--workdir is required: a kcompress run directory")
  if not os.path.isdir(workdir):
    raise UserError(f"--workdir={workdir}: no such directory")
  if not os.path.exists(os.path.join(workdir, JSONL["metrics"])):
    raise UserError(f"--workdir={workdir}: no metrics.jsonl; is it a kcompress workdir?")
  counts = rebuild(workdir)
  tb = os.path.join(workdir, TB_DIR)
  models = sorted(os.listdir(tb)) if os.path.isdir(tb) else []
  print(f"wrote {tb}: {len(models)} models, "
        + ", ".join(f"{n} {kind} rows" for kind, n in counts.items())
        + f"; view with: tensorboard --logdir {tb}", flush=True)


if __name__ == "__main__":
  from absl import flags as _flags

  from kcompress import cli
  _flags.DEFINE_string("workdir", None, "A kcompress run directory.")
  cli.run(main)
