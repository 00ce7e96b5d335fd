"""`python -m kcompress.analysis` rebuilds the report from a `:tiny` run's files alone."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from configs.sweep import get_config
from kcompress import metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = ("code_lengths.png", "bits_by_role.png", "scaling.png", "knowledge.png",
         "hallucination.png", "capacity.png", "ksf.png", "report.md", "summary.json")


def _analysis(workdir):
  return subprocess.run([sys.executable, "-m", "kcompress.analysis", f"--workdir={workdir}"],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_analysis_writes_every_file_and_is_reproducible(tiny_workdir):
  proc = _analysis(tiny_workdir)
  assert proc.returncode == 0, proc.stderr
  out = os.path.join(tiny_workdir, "report")
  for name in FILES:
    assert os.path.getsize(os.path.join(out, name)) > 0, name
  with open(os.path.join(out, "summary.json")) as f:
    first = f.read()
  summary = json.loads(first)
  cfg = get_config("tiny")
  assert sorted(m["width"] for m in summary["models"].values()) == sorted(cfg.model.widths)
  for m in summary["models"].values():
    assert set(m["final_bits_per_token"]) == {"name", "syntax", "value", "end"}
    assert m["redundancy_ratio"] > 1.0
    assert m["data_fit"] is None or m["data_fit"]["a_ci"][0] <= m["data_fit"]["a_ci"][1]
  assert summary["predicted_data_exponent"] == pytest.approx(1 - cfg.data.alpha)
  assert set(summary["compressors_bits"]) == {"gzip", "bz2", "xz", "zstd"}
  o = summary["oracle"]
  assert o["data_bits_all"] < o["data_bits_m0"]
  assert o["best_total_bits"] <= o["complexity_bits_all"] + o["data_bits_all"] + 1e-6
  t = summary["two_part"]
  hull = np.array(t["hull"])
  assert np.all(np.diff(hull[:, 0]) > 0) and np.all(np.diff(hull[:, 1]) < 0)
  totals = [q["complexity_bits"] + q["data_bits"] for r in metrics.read_rows(
      os.path.join(tiny_workdir, "ksf.jsonl")) for q in r["quantised"]]
  assert t["best"]["total_bits"] <= min(totals) + 1e-6
  assert {k.split("/")[0] for k in t["final"]} == {str(w) for w in cfg.model.widths}
  for m in t["final"].values():
    assert m["prequential_complexity_bits"] is not None
  for m in summary["models"].values():
    c = m["knowledge_capacity"]
    assert 0 <= c["stored_bits"] <= c["per_fact_clipped_bits"] <= c["fact_entropy_bits"]
    assert 0 <= c["name_stored_bits"] <= c["name_entropy_bits"]
    assert c["total_stored_bits"] == pytest.approx(c["stored_bits"] + c["name_stored_bits"])
    assert c["bits_per_param"] == pytest.approx(c["total_stored_bits"] / m["params"])
    assert set(c["by_exposure"]) == {"100", "1000"}   # None: the tiny run has no such bin
  h = summary["hallucination"]
  assert 0 < h["singleton_fraction"] <= 1 and h["alpha"] == cfg.data.alpha
  assert h["missing_mass"] <= h["singleton_fraction"] and 0 < h["missing_mass_py"] <= 1
  for m in h["models"].values():
    assert 0 <= m["bayes_error"] <= 1 and 0 <= m["error"] <= 1 and m["delta"] >= 0
    assert m["n"] == 4 * cfg.probe.num_fresh
  ids = {c["id"] for c in summary["claims"]}
  assert {"hallucination_persists", "hallucination_floor", "capacity_100",
          "capacity_1000"} <= ids
  # The analysis needs nothing but the files: a copy of the workdir without checkpoints works,
  # and a second run reproduces summary.json byte for byte.
  copy = tiny_workdir + "-files-only"
  shutil.copytree(tiny_workdir, copy, ignore=shutil.ignore_patterns("checkpoints", "report"))
  assert _analysis(copy).returncode == 0
  with open(os.path.join(copy, "report", "summary.json")) as f:
    assert f.read() == first
  with open(os.path.join(out, "report.md")) as f:
    md = f.read()
  assert all(f"]({name})" in md for name in FILES if name.endswith(".png"))
  assert "## What the models say" in md and md.count("- width ") == 3 * len(cfg.model.widths)


def test_analysis_rejects_a_non_workdir(tmp_path):
  (tmp_path / "config.json").write_text("{}")
  proc = _analysis(str(tmp_path))
  assert proc.returncode != 0


def test_bad_inputs_are_one_line_errors(tmp_path):
  """A missing workdir, or several without --out: `error: ...` on one line, exit status 2."""
  for args in ([f"--workdir={tmp_path}/missing"],
               [f"--workdir={tmp_path}", f"--workdir={tmp_path}"]):
    proc = subprocess.run([sys.executable, "-m", "kcompress.analysis", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr


def test_comparison_of_two_tiny_runs_at_different_alphas(tiny_workdir, tmp_path):
  """Two real `:tiny` runs (alpha 0.5 and 0.3): the comparison writes every documented
  file, merges both runs' claims, and a rerun reproduces its summary.json exactly."""
  from kcompress import train
  from kcompress.analysis import compare
  other = str(tmp_path / "tiny-a0.3")
  cfg = get_config("tiny")
  cfg.data.alpha = 0.3
  cfg.train.num_steps = 10
  train.run(cfg, other)
  out = str(tmp_path / "compare")
  cli = [sys.executable, "-m", "kcompress.analysis", f"--workdir={tiny_workdir}",
         f"--workdir={other}", f"--out={out}"]
  proc = subprocess.run(cli, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  for name in ("summary.json", "report.md", "exponents.png"):
    assert os.path.getsize(os.path.join(out, name)) > 0, name
  with open(os.path.join(out, "summary.json")) as f:
    first = f.read()
  summary = json.loads(first)
  assert [r["alpha"] for r in summary["runs"]] == [0.3, 0.5]
  assert {c["workdir"] for c in summary["claims"]} == {tiny_workdir, other}
  assert {c["verdict"] for c in summary["claims"]} <= {"consistent", "inconsistent",
                                                       "inconclusive"}
  with open(os.path.join(out, "report.md")) as f:
    assert "![](exponents.png)" in f.read()
  compare.compare_runs([tiny_workdir, other], out)   # the rerun, in-process
  with open(os.path.join(out, "summary.json")) as f:
    assert f.read() == first


def test_capacity_rows_judge_only_capacity_bound_levels():
  """capacity_100 / capacity_1000: stored fact + name bits over the bins at or above the level
  per parameter; judged where the bits offered there exceed twice the parameters, else
  `inconclusive: not capacity-bound`; no bin at the level: inconclusive, saying so."""
  from kcompress.analysis import claims_probes
  bin_ = lambda stored, offered: {"n": 64, "accuracy": 0.5, "stored_bits": stored,
                                  "stored_bits_se": 10.0, "fact_entropy_bits": offered,
                                  "name_stored_bits": 0.0, "name_stored_bits_se": 0.0,
                                  "name_entropy_bits": 0.0}
  row = {"step": 100, "params": 1000,
         "knowledge": {"64-127": bin_(500.0, 900.0), "128-255": bin_(600.0, 1500.0),
                       "256+": bin_(400.0, 1000.0)}}
  run = {"probes": {(32, 0): [row]}}
  by = {r["id"]: r for r in claims_probes.claims_capacity(run, (32, 0))}
  c = by["capacity_100"]   # bins 128-255 and 256+: 1000 of 2500 bits offered > 2 x 1000
  assert c["measured"] == pytest.approx(1.0) and c["verdict"] == "consistent", c
  assert "no probed occurrence bin starts at >= 1000" in by["capacity_1000"]["reason"]
  row["params"] = 2000     # 2500 bits offered < 2 x 2000 parameters
  c = claims_probes.claims_capacity(run, (32, 0))[0]
  assert c["verdict"] == "inconclusive" and "not capacity-bound" in c["reason"], c
