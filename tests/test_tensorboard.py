"""TensorBoard event files of a run (kcompress.tensorboard_log), read back and compared
with the JSON lines they come from, value by value."""

import glob
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from tensorboardX.proto import event_pb2

from kcompress import metrics, tensorboard_log
from kcompress.errors import UserError

ROLES = ("name", "syntax", "value", "end")
BINS = ("1", "2-3", "4-7", "8-15", "16+")
MODELS = ((16, 0), (32, 0), (32, 1))


# ----------------------------------------------------------------- rows like a real run's


def metrics_row(step, width, seed):
  rng = np.random.default_rng([step, width, seed])
  row = {"step": step, "width": width, "seed": seed, "params": 1000 * width,
         "tokens_seen": 120 * step, "lr": 1e-3 * min(1.0, step / 4), "loss_bits": 9 - step / 7,
         "step_bits": float(rng.uniform(900, 1200))}
  for role in ROLES:
    row[f"bits_{role}"] = float(rng.uniform(1, 10))
    row[f"bayes_{role}"] = 0.0 if role == "end" else float(rng.uniform(1, 6))
    row[f"tokens_{role}"] = int(rng.integers(10, 50))
  row["preq_bits"] = 1100.0 * step
  row["bayes_bits"] = 380.0 * step
  for role in ROLES:
    row[f"preq_bits_{role}"] = float(rng.uniform(100, 400)) * step
    row[f"bayes_bits_{role}"] = 0.0 if role == "end" else float(rng.uniform(80, 200)) * step
  row.update(epoch=None if step < 3 else step // 3, frozen=step > 4,
             frozen_step=5 if step > 4 else -1, elapsed_s=14.4 + 0.01 * step, note="text")
  return row


def probes_row(step, width, seed):
  rng = np.random.default_rng([step, width, seed, 1])
  fig = lambda: {k: float(rng.uniform()) for k in ("top1", "entropy", "kl", "confident")}
  return {"step": step, "width": width, "seed": seed, "params": 1000 * width,
          "tokens_seen": 120 * step,
          "knowledge": {b: {"n": 8, "accuracy": float(rng.uniform()),
                            "bits": float(rng.uniform(0, 9)), "facts": 62.0,
                            "stored_bits": float(rng.uniform(0, 50)),
                            "fact_entropy_bits": 372.0} for b in BINS},
          "hallucination": {"fresh": fig(), "unrevealed": fig()},
          "capacity": {"facts": 145.0, "stored_bits": float(rng.uniform(0, 100)),
                       "fact_entropy_bits": 870.0},
          "bayes_hallucination": fig(),
          "facts": {"revealed": 145, "singletons": 100, "occurrences": 271,
                    "singleton_fraction": 0.69, "missing_mass": 0.37}}


def ksf_row(step, width, seed):
  rng = np.random.default_rng([step, width, seed, 2])
  return {"step": step, "width": width, "seed": seed, "params": 1000 * width,
          "tokens_seen": 120 * step, "data_tokens": 4455, "sample_batches": 8,
          "preq_bits": float(rng.uniform(1e4, 2e4)), "data_bits": float(rng.uniform(2e4, 3e4)),
          "seen_data_bits": float(rng.uniform(1e4, 2e4)),
          "prequential_complexity_bits": float(rng.uniform(1e3, 5e3)),
          "quantised": [{"precision": p, "complexity_bits": float(rng.integers(5e3, 3e5)),
                         "data_bits": float(rng.uniform(2e4, 4e4))} for p in (-2, 0, 2, 4)]}


def rows_of(kind, steps):
  make = {"metrics": metrics_row, "probes": probes_row, "ksf": ksf_row}[kind]
  return [make(s, w, seed) for s in steps for w, seed in MODELS]


# ------------------------------------------- what each row should become (the spec, again)


def expected(kind, row):
  """{tag: value} a row must give, written out independently of the module."""
  num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
  out = {}
  if kind == "metrics":
    out["loss/bits"] = row["loss_bits"]
    out["loss/step_bits"] = row["step_bits"]
    out["lr"], out["tokens_seen"] = row["lr"], row["tokens_seen"]
    out["time/elapsed_s"] = row["elapsed_s"]
    out["other/frozen_step"] = row["frozen_step"]
    if row.get("epoch") is not None:
      out["epoch"] = row["epoch"]
    out["code/preq_bits"], out["code/bayes_bits"] = row["preq_bits"], row["bayes_bits"]
    out["code/preq_over_bayes"] = row["preq_bits"] / row["bayes_bits"]
    for role in ROLES:
      out[f"loss/bits_{role}"] = row[f"bits_{role}"]
      out[f"bayes/bits_{role}"] = row[f"bayes_{role}"]
      out[f"tokens/{role}"] = row[f"tokens_{role}"]
      out[f"code/preq_bits_{role}"] = row[f"preq_bits_{role}"]
      out[f"code/bayes_bits_{role}"] = row[f"bayes_bits_{role}"]
      if row[f"bayes_bits_{role}"] > 0:
        out[f"code/preq_over_bayes_{role}"] = row[f"preq_bits_{role}"] / row[f"bayes_bits_{role}"]
    if "tokens_entity" in row:   # the entity-choice part of the name role (first name tokens)
      for f, tag in (("bits_entity", "loss/bits_entity"), ("bayes_entity", "bayes/bits_entity"),
                     ("tokens_entity", "tokens/entity")):
        if num(row[f]):
          out[tag] = row[f]
  elif kind == "probes":
    for b, figs in row["knowledge"].items():
      b = b.replace("+", "plus")
      out[f"accuracy/occ_{b}"] = figs["accuracy"]
      out[f"value_bits/occ_{b}"] = figs["bits"]
      out[f"stored_bits/occ_{b}"] = figs["stored_bits"]
      for f, x in figs.items():   # n, facts, entropy, capacity parts: under knowledge/
        if f not in ("accuracy", "bits", "stored_bits"):
          out[f"knowledge/{f}_occ_{b}"] = x
    for kind_, figs in row["hallucination"].items():
      out.update({f"hallucination/{f}_{kind_}": v for f, v in figs.items()})
    out.update({f"hallucination/{f}_bayes": v for f, v in row["bayes_hallucination"].items()})
    out.update({f"capacity/{f}": v for f, v in row["capacity"].items()})
    out.update({f"facts/{f}": v for f, v in row["facts"].items()})
    out.update({f"other/sampled/{f}": v for f, v in (row.get("sampled") or {}).items()
                if num(v)})
  else:
    for f in ("data_tokens", "sample_batches", "preq_bits", "data_bits", "seen_data_bits",
              "prequential_complexity_bits"):
      out[f"two_part/{f}"] = row[f]
    totals = []
    for q in row["quantised"]:
      p = f"two_part/p{q['precision']}"
      out[f"{p}/complexity_bits"] = q["complexity_bits"]
      out[f"{p}/data_bits"] = q["data_bits"]
      out[f"{p}/total_bits"] = q["complexity_bits"] + q["data_bits"]
      totals.append(q["complexity_bits"] + q["data_bits"])
    out["two_part/best_total_bits"] = min(totals)
  assert all(num(v) for v in out.values())
  return out


def expected_events(rows_by_kind):
  """{(model dir, step, tag): value} of all rows."""
  out = {}
  for kind, rows in rows_by_kind.items():
    for r in rows:
      for tag, v in expected(kind, r).items():
        key = (f"w{r['width']}_s{r['seed']}", r["step"], tag)
        assert key not in out, key
        out[key] = v
  return out


# --------------------------------------------------------- reading event files back


def read_records(path):
  """The records of a TFRecord file (length, masked crc, data, masked crc)."""
  with open(path, "rb") as f:
    data = f.read()
  pos, out = 0, []
  while pos < len(data):
    (n,) = struct.unpack("<Q", data[pos:pos + 8])
    out.append(data[pos + 12:pos + 12 + n])
    pos += 12 + n + 4
  assert pos == len(data), path
  return out


def read_events(workdir):
  """{(model dir, step, tag): value} of every scalar under WORKDIR/tb (no duplicates)."""
  out = {}
  for path in sorted(glob.glob(os.path.join(workdir, "tb", "*", "events.out.tfevents.*"))):
    model = os.path.basename(os.path.dirname(path))
    for record in read_records(path):
      event = event_pb2.Event.FromString(record)
      if event.HasField("file_version"):
        continue
      for value in event.summary.value:
        key = (model, event.step, value.tag)
        assert key not in out, key
        out[key] = value.simple_value
  return out


def assert_events_equal(got, want):
  assert sorted(got) == sorted(want)
  for key, v in want.items():
    # simple_value is a float32: the JSON value rounded to float32, exactly.
    assert got[key] == np.float32(v), (key, got[key], v)


# ----------------------------------------------------------------------------- tests


def test_rows_become_the_same_scalars(tmp_path):
  workdir = str(tmp_path)
  rows = {kind: rows_of(kind, range(1, 7) if kind == "metrics" else (3, 6))
          for kind in ("metrics", "probes", "ksf")}
  with tensorboard_log.EventWriter(workdir) as w:
    for step in range(1, 7):            # as the loop calls it: every step, evals between
      w.write_metrics([r for r in rows["metrics"] if r["step"] == step])
      if step % 3 == 0:
        w.write_probes([r for r in rows["probes"] if r["step"] == step])
        w.write_ksf([r for r in rows["ksf"] if r["step"] == step])
  assert sorted(os.listdir(tmp_path / "tb")) == ["w16_s0", "w32_s0", "w32_s1"]
  got = read_events(workdir)
  assert_events_equal(got, expected_events(rows))
  for tag in ("loss/bits", "loss/bits_value", "bayes/bits_value", "code/preq_bits",
              "code/bayes_bits", "code/preq_over_bayes", "lr", "tokens_seen",
              "accuracy/occ_16plus", "hallucination/confident_fresh", "capacity/stored_bits",
              "two_part/data_bits", "two_part/p-2/complexity_bits", "two_part/p-2/data_bits"):
    assert ("w32_s1", 6, tag) in got, tag


def test_disabled_writer_writes_nothing(tmp_path):
  with tensorboard_log.EventWriter(str(tmp_path), enabled=False) as w:
    w.write_metrics(rows_of("metrics", (1,)))
    w.write_probes(rows_of("probes", (1,)))
  assert not (tmp_path / "tb").exists()


def _write_jsonl(path, rows):
  with open(path, "w") as f:
    f.write("".join(json.dumps(r) + "\n" for r in rows))


def test_rebuild_after_a_resume_matches_the_json_lines(tmp_path):
  workdir = str(tmp_path)
  files = {kind: os.path.join(workdir, f"{kind}.jsonl") for kind in ("metrics", "probes", "ksf")}
  rows = {"metrics": rows_of("metrics", range(1, 11)), "probes": rows_of("probes", (4, 8)),
          "ksf": rows_of("ksf", (4, 8))}
  # A run wrote to step 10 (JSON lines and events), then resumes from its step-5 checkpoint.
  with tensorboard_log.EventWriter(workdir) as w:
    for kind, path in files.items():
      _write_jsonl(path, rows[kind])
      getattr(w, f"write_{kind}")(rows[kind])
  kept = {kind: metrics.truncate_after(path, 5) for kind, path in files.items()}
  counts = tensorboard_log.rebuild(workdir, kept)     # the rows the loop just kept
  assert counts == {"metrics": 15, "probes": 3, "ksf": 3}
  assert_events_equal(read_events(workdir), expected_events(kept))
  assert tensorboard_log.rebuild(workdir) == counts    # the same, read from the files
  assert_events_equal(read_events(workdir), expected_events(kept))
  # ... and trains on to step 8 (likely in the same second as the rebuild: the new
  # event files must not overwrite the rebuilt ones).
  with tensorboard_log.EventWriter(workdir) as w:
    more = [r for r in rows["metrics"] if 5 < r["step"] <= 8]
    w.write_metrics(more)
  assert len(glob.glob(os.path.join(workdir, "tb", "w16_s0", "events.*"))) == 2
  kept["metrics"] += more
  assert_events_equal(read_events(workdir), expected_events(kept))


def test_cli_rebuilds_an_old_run(tmp_path):
  workdir = str(tmp_path / "run")
  os.makedirs(workdir)
  rows = {"metrics": rows_of("metrics", range(1, 4)), "probes": rows_of("probes", (2,)),
          "ksf": []}
  for kind, r in rows.items():
    if r:
      _write_jsonl(os.path.join(workdir, f"{kind}.jsonl"), r)
  run = lambda *a: subprocess.run([sys.executable, "-m", "kcompress.tensorboard_log", *a],
                                  capture_output=True, text=True, timeout=60)
  out = run(f"--workdir={workdir}")
  assert out.returncode == 0, out.stderr
  assert "3 models" in out.stdout
  assert_events_equal(read_events(workdir), expected_events(rows))
  bad = run(f"--workdir={tmp_path / 'missing'}")
  assert bad.returncode == 2 and "Traceback" not in bad.stderr
  assert bad.stderr.strip().splitlines()[-1].startswith("error: --workdir=")


def test_a_real_run_s_rows(tmp_path, tiny_workdir):
  """Real rows (the shared finished :tiny run), copied: every scalar field lands in its tag."""
  for kind in ("metrics", "probes", "ksf"):
    rows = metrics.read_rows(os.path.join(tiny_workdir, f"{kind}.jsonl"))
    assert rows, kind
    _write_jsonl(tmp_path / f"{kind}.jsonl", rows)
  tensorboard_log.rebuild(str(tmp_path))
  got = read_events(str(tmp_path))
  r = metrics.read_rows(str(tmp_path / "ksf.jsonl"))[-1]
  model = f"w{r['width']}_s{r['seed']}"
  assert got[(model, r["step"], "two_part/data_bits")] == np.float32(r["data_bits"])
  for q in r["quantised"]:
    assert got[(model, r["step"], f"two_part/p{q['precision']}/complexity_bits")] == \
        np.float32(q["complexity_bits"])
  p = metrics.read_rows(str(tmp_path / "probes.jsonl"))[-1]
  for b, figs in p["knowledge"].items():
    assert got[(model, p["step"], f"accuracy/occ_{b.replace('+', 'plus')}")] == \
        np.float32(figs["accuracy"])
  m = metrics.read_rows(str(tmp_path / "metrics.jsonl"))[-1]
  model = f"w{m['width']}_s{m['seed']}"
  assert got[(model, m["step"], "loss/bits")] == np.float32(m["loss_bits"])
  assert got[(model, m["step"], "code/preq_over_bayes")] == \
      np.float32(m["preq_bits"] / m["bayes_bits"])


def test_rebuild_refuses_a_corrupt_file_and_keeps_the_events(tmp_path):
  workdir = str(tmp_path)
  rows = rows_of("metrics", range(1, 4))
  _write_jsonl(tmp_path / "metrics.jsonl", rows)
  tensorboard_log.rebuild(workdir)
  before = read_events(workdir)
  with open(tmp_path / "metrics.jsonl", "a") as f:
    f.write("{not json\n" + json.dumps(metrics_row(4, 16, 0)) + "\n")
  with pytest.raises(UserError, match=r"metrics.jsonl:10: corrupt JSON line"):
    tensorboard_log.rebuild(workdir)
  assert read_events(workdir) == before
