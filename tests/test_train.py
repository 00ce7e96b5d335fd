"""The main job end to end on `:tiny`: metrics, resume, signals, non-finite models, bad input."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from configs.sweep import get_config
from kcompress import metrics, step as step_lib, train
from kcompress.data import roles

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIELDS = {"step", "width", "seed", "params", "tokens_seen", "lr", "loss_bits", "step_bits",
          "preq_bits", "bayes_bits", "frozen", "frozen_step", "elapsed_s"}
FIELDS |= {f"{p}_{r}" for p in ("bits", "bayes", "preq_bits", "bayes_bits")
           for r in roles.ROLE_NAMES}


def _main(workdir, *overrides, wait=True):
  cmd = [sys.executable, "-m", "kcompress.main", "--config=configs/sweep.py:tiny",
         f"--workdir={workdir}", *overrides]
  proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
  if wait:
    out, _ = proc.communicate(timeout=600)
    return proc.returncode, out
  return proc


def _comparable(rows):
  return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("tiny"))
  code, out = _main(workdir, "--config.train.num_steps=60")
  assert code == 0, out
  return workdir, metrics.read_rows(os.path.join(workdir, "metrics.jsonl")), out


def test_metrics_fields_and_cumulative_bits(tiny_run):
  workdir, rows, out = tiny_run
  cfg = get_config("tiny")
  models = [(w, s) for w in cfg.model.widths for s in cfg.sweep.seeds]
  assert len(rows) == 60 * len(models)
  assert {(r["step"], r["width"], r["seed"]) for r in rows} == {
      (t, w, s) for t in range(1, 61) for w, s in models}
  for r in rows:
    assert FIELDS <= set(r)
  for w, s in models:
    mine = sorted((r for r in rows if (r["width"], r["seed"]) == (w, s)), key=lambda r: r["step"])
    np.testing.assert_allclose(np.cumsum([r["step_bits"] for r in mine]),
                               [r["preq_bits"] for r in mine], rtol=1e-9)
    last = mine[-1]
    by_role = sum(last[f"preq_bits_{n}"] for n in roles.ROLE_NAMES)
    assert abs(by_role - last["preq_bits"]) < 1e-6 * last["preq_bits"]
    # tokens_seen counts stream tokens (row padding excluded): the per-role counts summed.
    assert last["tokens_seen"] == sum(r[f"tokens_{n}"] for r in mine for n in roles.ROLE_NAMES)
    # A row's padding is shorter than the longest sentence (else that sentence would fit).
    longest = cfg.data.name_length + cfg.data.max_fillers + 2
    slots = 60 * cfg.train.batch_size * cfg.data.context_length
    assert 1 - (longest - 1) / cfg.data.context_length < last["tokens_seen"] / slots < 1
    # A model's code never beats the Bayes floor by much over a whole stream; it is well above
    # it this early.
    assert last["preq_bits"] > last["bayes_bits"]
  assert os.path.exists(os.path.join(workdir, "config.json"))
  assert "ratio" in out
  # Probes: one row per (eval step, model) with knowledge bins and hallucination kinds.
  probe_rows = metrics.read_rows(os.path.join(workdir, "probes.jsonl"))
  assert {(r["step"], r["width"]) for r in probe_rows} == {
      (t, w) for t in (20, 40, 60) for w, _ in models}
  for r in probe_rows:
    assert set(r["hallucination"]) == {"fresh", "unrevealed"}
    assert "1" in r["knowledge"] and 0 <= r["knowledge"]["1"]["accuracy"] <= 1
    assert r["bayes_hallucination"]["kl"] == 0.0


def test_resume_after_sigkill_matches_uninterrupted(tiny_run, tmp_path):
  reference_dir, reference, _ = tiny_run
  workdir = str(tmp_path / "killed")
  proc = _main(workdir, "--config.train.num_steps=60", wait=False)
  ckpt = os.path.join(workdir, "checkpoints", "20")
  deadline = time.time() + 300
  while not os.path.exists(ckpt) and time.time() < deadline and proc.poll() is None:
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert proc.returncode == -signal.SIGKILL
  code, out = _main(workdir, "--config.train.num_steps=60")
  assert code == 0, out
  assert "resuming" in out
  rows = metrics.read_rows(os.path.join(workdir, "metrics.jsonl"))
  assert _comparable(rows) == _comparable(reference)
  assert (metrics.read_rows(os.path.join(workdir, "probes.jsonl")) ==
          metrics.read_rows(os.path.join(reference_dir, "probes.jsonl")))


def test_sigterm_leaves_checkpoint_at_current_step(tmp_path):
  workdir = str(tmp_path / "term")
  proc = _main(workdir, "--config.train.num_steps=5000", "--config.checkpoint_every=5000",
               "--config.log_every=7", wait=False)
  path = os.path.join(workdir, "metrics.jsonl")
  deadline = time.time() + 300
  while time.time() < deadline and proc.poll() is None and len(metrics.read_rows(path)) < 20:
    time.sleep(0.05)
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode == 128 + signal.SIGTERM, out
  steps = [int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit()]
  last_row = max(r["step"] for r in metrics.read_rows(path))
  assert steps == [last_row] and last_row < 5000


def test_overrides_and_misspelled_key(tmp_path):
  code, out = _main(str(tmp_path / "o"), "--config.model.widths=(8,24)",
                    "--config.train.num_steps=3")
  assert code == 0, out
  rows = metrics.read_rows(str(tmp_path / "o" / "metrics.jsonl"))
  assert sorted({r["width"] for r in rows}) == [8, 24]
  code, out = _main(str(tmp_path / "m"), "--config.model.widht=3")
  assert code != 0 and "widht" in out


def test_nonfinite_model_flagged_and_others_train(tmp_path, monkeypatch, capsys):
  real_init = step_lib.init_sweep

  def poisoned(*args, **kwargs):
    state = real_init(*args, **kwargs)
    if int(state.width[0]) != 16:
      return state
    bad = state.params["unembed"].at[0, 0, 0].set(np.nan)
    return state.replace(params={**state.params, "unembed": bad})

  monkeypatch.setattr(step_lib, "init_sweep", poisoned)
  cfg = get_config("tiny")
  cfg.train.num_steps = 30
  train.run(cfg, str(tmp_path))
  rows = metrics.read_rows(str(tmp_path / "metrics.jsonl"))
  first = [r for r in rows if r["width"] == 16]
  other = [r for r in rows if r["width"] == 32]
  assert all(r["frozen"] and r["frozen_step"] == 0 for r in first)
  assert not any(r["frozen"] for r in other)
  assert other[-1]["loss_bits"] < other[0]["loss_bits"] - 1.0
  assert "non-finite loss: width=16 seed=0 frozen at step 0" in capsys.readouterr().out


def test_bad_configs_fail_before_compiling(tmp_path, monkeypatch):
  cfg = get_config("tiny")
  cfg.model.widths = (16, 20)
  with pytest.raises(ValueError, match="config.model.widths"):
    train.validate(cfg)
  cfg = get_config("tiny")
  cfg.optim.lr_scaling = "sqrt"
  with pytest.raises(ValueError, match="config.optim.lr_scaling"):
    train.validate(cfg)
  cfg = get_config("tiny")
  monkeypatch.setattr(train.jax, "device_count", lambda: 3)
  with pytest.raises(ValueError, match="config.train.batch_size"):
    train.validate(cfg)
  monkeypatch.undo()
  # A workdir holding a different config: the error lists the fields that differ.
  cfg = get_config("tiny")
  with open(tmp_path / "config.json", "w") as f:
    f.write(cfg.to_json())
  cfg.data.alpha = 0.7
  cfg.model.depth = 2
  cfg.train.num_steps = 99          # run length may change on resume
  with pytest.raises(ValueError, match=r"data.alpha.*model.depth|model.depth.*data.alpha"):
    train.check_workdir(str(tmp_path), cfg)


def test_entity_overflow_stops_the_run_at_its_step(tmp_path, monkeypatch):
  """A stream that runs out of names stops at the step whose batch overflowed, naming the
  fields to raise; no row of that step (clipped entity ids, log2(0) name bits) is logged.
  The early check (2 E[K_n] names) is switched off so the run reaches the overflow."""
  cfg = get_config("tiny")
  cfg.data.name_alphabet = 6
  cfg.data.name_length = 2          # 36 names; a :tiny batch holds ~15 sentences
  cfg.eval_every = 1000
  monkeypatch.setattr(train.data, "check_name_space", lambda spec, n: None)
  workdir = str(tmp_path / "overflow")
  with pytest.raises(RuntimeError, match=r"step (\d+): .*config.data.name_alphabet or "
                                         r"config.data.name_length") as err:
    train.run(cfg, workdir)
  step = int(err.value.args[0].split(":")[0].split()[1])
  rows = metrics.read_rows(os.path.join(workdir, "metrics.jsonl"))
  assert 1 < step < cfg.train.num_steps   # the first batch fits: rows before it are logged
  assert {r["step"] for r in rows} == set(range(1, step))
  assert all(np.isfinite(r["loss_bits"]) and np.isfinite(r["bayes_bits"]) for r in rows)
