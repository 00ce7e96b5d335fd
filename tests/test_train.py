"""The main job end to end on `:tiny`: metrics, resume, signals, non-finite models, bad input,
one run per workdir, rows against checkpoints, a file-size limit.

CI time: tests that only read a finished run share `tiny_run` (60 steps, the CLI) or copy
it; in-process runs keep the learning-rate horizon of 60 steps (`schedule_steps=60`) where
the test does not depend on it, so they reuse its compiled step (persistent cache)."""

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

import jax.numpy as jnp
import numpy as np
import pytest

from configs.sweep import get_config
from kcompress import checkpoint, metrics, pretrain, resume, setup as setup_lib
from kcompress import step as step_lib, train, workdir_lock
from kcompress.data import roles
from kcompress.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIELDS = {"step", "width", "seed", "params", "tokens_seen", "lr", "loss_bits", "step_bits",
          "preq_bits", "bayes_bits", "frozen", "frozen_step", "elapsed_s"}
FIELDS |= {f"{p}_{r}" for p in ("bits", "bayes", "preq_bits", "bayes_bits")
           for r in roles.ROLE_NAMES}


def _main(workdir, *overrides, wait=True, preexec_fn=None):
  cmd = [sys.executable, "-m", "kcompress.main", "--config=configs/sweep.py:tiny",
         f"--workdir={workdir}", *overrides]
  proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, preexec_fn=preexec_fn)
  if wait:
    out, _ = proc.communicate(timeout=600)
    return proc.returncode, out
  return proc


def _comparable(rows):
  return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]


def _wait_for(path, proc, seconds=300):
  deadline = time.time() + seconds
  while not os.path.exists(path) and time.time() < deadline and proc.poll() is None:
    time.sleep(0.05)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  """A 60-step :tiny run by the CLI, and a second run of the same command started on its
  workdir while it holds its lock: {returncode, out, seconds} of that second run."""
  workdir = str(tmp_path_factory.mktemp("tiny"))
  first = _main(workdir, "--config.train.num_steps=60", wait=False)
  _wait_for(workdir_lock.lock_path(workdir), first)
  started = time.time()
  code, second_out = _main(workdir, "--config.train.num_steps=60")
  second = {"returncode": code, "out": second_out, "seconds": time.time() - started}
  out, _ = first.communicate(timeout=600)
  assert first.returncode == 0, out
  rows = metrics.read_rows(os.path.join(workdir, "metrics.jsonl"))
  return workdir, rows, out, {**second, "first_pid": first.pid}


def test_metrics_fields_and_cumulative_bits(tiny_run):
  workdir, rows, out, _ = tiny_run
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
  reference_dir, reference, _, _ = tiny_run
  workdir = str(tmp_path / "killed")
  proc = _main(workdir, "--config.train.num_steps=60", wait=False)
  ckpt = os.path.join(workdir, "checkpoints", "20")
  deadline = time.time() + 300
  while not os.path.exists(ckpt) and time.time() < deadline and proc.poll() is None:
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert proc.returncode == -signal.SIGKILL
  assert os.path.exists(workdir_lock.lock_path(workdir))   # SIGKILL left the lock behind
  code, out = _main(workdir, "--config.train.num_steps=60")
  assert code == 0, out
  assert "resuming" in out
  takeovers = [l for l in out.splitlines() if l.startswith("WARNING took over the lock")]
  assert len(takeovers) == 1 and f"process {proc.pid} is gone" in takeovers[0], out
  rows = metrics.read_rows(os.path.join(workdir, "metrics.jsonl"))
  assert _comparable(rows) == _comparable(reference)
  assert (metrics.read_rows(os.path.join(workdir, "probes.jsonl")) ==
          metrics.read_rows(os.path.join(reference_dir, "probes.jsonl")))


def test_sigterm_leaves_checkpoint_at_current_step(tmp_path):
  workdir = str(tmp_path / "term")
  proc = _main(workdir, "--config.train.num_steps=5000", "--config.checkpoint_every=5000",
               "--config.log_every=7", "--config.train.schedule_steps=60", wait=False)
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


def test_busy_workdir_second_run_exits_at_once_in_one_line(tiny_run):
  """The second run on tiny_run's workdir (started while the first held its lock): status
  2 within seconds, one line naming the holder, nothing touched; the first run ended with
  every row (test_metrics_fields_and_cumulative_bits)."""
  workdir, _, _, second = tiny_run
  lines = [l for l in second["out"].splitlines() if l.strip()]
  assert second["returncode"] == 2, second["out"]
  assert len(lines) == 1 and lines[0].startswith("error: workdir "), lines
  assert f"in use by pid {second['first_pid']} on host" in lines[0]
  assert second["seconds"] < 60   # import and the lock check only (~3 s alone)
  with open(os.path.join(workdir, "log.txt")) as f:
    assert f.read().count("devices: ") == 1   # the second run never reached the log file
  assert not os.path.exists(workdir_lock.lock_path(workdir))   # released at the end


def test_impossible_sweep_refused_then_corrected_command_runs(tmp_path):
  """widths=(100000,) on this CPU: one line naming the memory it needs, status 2, within
  60 s, no config.json; the corrected command (here also checking that overrides of
  tuples take effect) then runs in the same workdir. A misspelled key is refused."""
  workdir = str(tmp_path / "o")
  started = time.time()
  code, out = _main(workdir, "--config.model.widths=(100000,)")
  lines = [l for l in out.splitlines() if l.strip()]
  assert code == 2, out
  assert time.time() - started < 60
  assert lines[-1].startswith("error: ") and "needs ~" in lines[-1], out
  assert "GiB per device, the device has" in lines[-1] and "Traceback" not in out
  assert len(lines) == 2   # the start line, then the error
  assert not os.path.exists(os.path.join(workdir, "config.json"))
  code, out = _main(workdir, "--config.model.widths=(8,)", "--config.train.num_steps=3")
  assert code == 0, out
  rows = metrics.read_rows(str(tmp_path / "o" / "metrics.jsonl"))
  assert {r["width"] for r in rows} == {8}   # one model of width 8: the smallest compile
  code, out = _main(str(tmp_path / "m"), "--config.model.widht=3")
  assert code != 0 and "widht" in out


def test_nonfinite_model_flagged_and_others_train(tmp_path, monkeypatch, capsys):
  real_init = step_lib.init_sweep

  def poisoned(*args, **kwargs):   # traceable: the run's end evaluates init shapes abstractly
    state = real_init(*args, **kwargs)
    unembed = state.params["unembed"]
    bad = jnp.where(state.width[0] == 16, unembed.at[0, 0, 0].set(np.nan), unembed)
    return state.replace(params={**state.params, "unembed": bad})

  monkeypatch.setattr(step_lib, "init_sweep", poisoned)
  cfg = get_config("tiny")
  cfg.train.num_steps = 30
  cfg.train.schedule_steps = 60
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
    setup_lib.validate(cfg)
  cfg = get_config("tiny")
  cfg.optim.lr_scaling = "sqrt"
  with pytest.raises(ValueError, match="config.optim.lr_scaling"):
    setup_lib.validate(cfg)
  cfg = get_config("tiny")
  monkeypatch.setattr(setup_lib.jax, "device_count", lambda: 3)
  with pytest.raises(ValueError, match="config.train.batch_size"):
    setup_lib.validate(cfg)
  monkeypatch.undo()
  # A workdir holding a different config: the error lists the fields that differ.
  cfg = get_config("tiny")
  with open(tmp_path / "config.json", "w") as f:
    f.write(cfg.to_json())
  cfg.data.alpha = 0.7
  cfg.model.depth = 2
  cfg.train.num_steps = 99          # run length may change on resume
  with pytest.raises(ValueError, match=r"data.alpha.*model.depth|model.depth.*data.alpha"):
    setup_lib.check_resumable(str(tmp_path), cfg)


def test_entity_overflow_stops_the_run_at_its_step(tmp_path, monkeypatch):
  """A stream that runs out of names stops at the step whose batch overflowed, naming the
  fields to raise; no row of that step (clipped entity ids, log2(0) name bits) is logged.
  The early check (2 E[K_n] names) is switched off so the run reaches the overflow."""
  cfg = get_config("tiny")
  cfg.data.name_alphabet = 6
  cfg.data.name_length = 2          # 36 names; a :tiny batch holds ~15 sentences
  cfg.eval_every = 1000
  monkeypatch.setattr(pretrain.data, "check_name_space", lambda spec, n: None)
  workdir = str(tmp_path / "overflow")
  with pytest.raises(RuntimeError, match=r"step (\d+): .*config.data.name_alphabet or "
                                         r"config.data.name_length") as err:
    train.run(cfg, workdir)
  step = int(err.value.args[0].split(":")[0].split()[1])
  rows = metrics.read_rows(os.path.join(workdir, "metrics.jsonl"))
  assert 1 < step < cfg.train.num_steps   # the first batch fits: rows before it are logged
  assert {r["step"] for r in rows} == set(range(1, step))
  assert all(np.isfinite(r["loss_bits"]) and np.isfinite(r["bayes_bits"]) for r in rows)


# ------------------------------------------------- pinned numbers, timing, TensorBoard


def _close(got, want, path="", rtol=1e-5):
  """Recursive comparison: floats to `rtol`, everything else exactly."""
  if isinstance(want, dict):
    assert set(got) == set(want), path
    for k in want:
      _close(got[k], want[k], f"{path}.{k}", rtol)
  elif isinstance(want, list):
    assert len(got) == len(want), path
    for k, (g, w) in enumerate(zip(got, want)):
      _close(g, w, f"{path}[{k}]", rtol)
  elif isinstance(want, float):
    assert got == pytest.approx(want, rel=rtol, abs=1e-9), path
  else:
    assert got == want, path


def test_final_numbers_match_the_pinned_run(tiny_run):
  """The :tiny run's final metrics, two-part and probe rows equal those recorded with the
  code before the loop, flax-model and placement changes (tests/data/tiny_pinned.json)."""
  workdir, rows, _, _ = tiny_run
  with open(os.path.join(ROOT, "tests", "data", "tiny_pinned.json")) as f:
    pinned = json.load(f)
  final = lambda name: [r for r in metrics.read_rows(os.path.join(workdir, f"{name}.jsonl"))
                        if r["step"] == 60]
  _close([{k: v for k, v in r.items() if k in pinned["metrics"][0]} for r in final("metrics")],
         pinned["metrics"])
  _close(final("ksf"), pinned["ksf"])
  _close(final("probes"), pinned["probes"])


def test_timing_split_sums_to_the_wall_time(tiny_run):
  workdir, _, out, _ = tiny_run
  with open(os.path.join(workdir, "timing.json")) as f:
    timing = json.load(f)
  assert {"setup", "train", "two_part", "probes", "checkpoint", "finish"} <= set(
      timing["seconds"])
  assert abs(sum(timing["seconds"].values()) - timing["wall_s"]) <= 0.05 * timing["wall_s"]
  assert "time: setup" in out


def test_tensorboard_holds_the_metrics_values(tiny_run):
  from test_tensorboard import expected_events, read_events
  workdir, rows, _, _ = tiny_run
  want = expected_events({k: metrics.read_rows(os.path.join(workdir, f"{k}.jsonl"))
                          for k in ("metrics", "probes", "ksf")})
  got = read_events(workdir)
  assert sorted(got) == sorted(want)
  for key, v in want.items():
    assert got[key] == np.float32(v), key


def test_terminal_shows_only_the_tools_lines(tiny_run):
  workdir, _, out, _ = tiny_run
  assert not [l for l in out.splitlines() if l[:1] in "IWE" and l[1:5].isdigit()]  # absl lines
  assert not re.search(r"\d\.\d{5,}", out)   # no raw floats (headline numbers are rounded)
  with open(os.path.join(workdir, "log.txt")) as f:
    assert "checkpoint" in f.read().lower()   # the libraries' INFO lines went here


# ------------------------------------------------- extending, shrinking, damaged checkpoints


def _tiny(num_steps, **train):
  cfg = get_config("tiny")
  cfg.train.num_steps = num_steps
  for k, v in train.items():
    cfg.train[k] = v
  return cfg


@pytest.fixture(scope="module")
def first_leg(tmp_path_factory):
  """40 steps of a run whose schedule is planned for 60 (checkpoints at 20 and 40)."""
  workdir = str(tmp_path_factory.mktemp("leg") / "run")
  train.run(_tiny(40, schedule_steps=60), workdir)
  return workdir


def _copy(src, dst):
  shutil.copytree(src, dst, ignore=shutil.ignore_patterns("report"))
  return str(dst)


def _one_row_per_step_and_model(rows, num_steps):
  keys = [(r["step"], r["width"], r["seed"]) for r in rows]
  assert len(keys) == len(set(keys))
  assert {k[0] for k in keys} == set(range(1, num_steps + 1))
  assert len(keys) == num_steps * 2


def test_extending_in_two_legs_equals_one_run(first_leg, tiny_run, tmp_path):
  """40 steps planned for 60, then extended to 60 = one 60-step run (the schedule's horizon
  is the same 60 steps, the stream is the same stream)."""
  workdir = _copy(first_leg, tmp_path / "two_legs")
  train.run(_tiny(60), workdir)
  reference_dir, reference, _, _ = tiny_run
  rows = metrics.read_rows(os.path.join(workdir, "metrics.jsonl"))
  _one_row_per_step_and_model(rows, 60)
  assert _comparable(rows) == _comparable(reference)
  read = lambda d, k: metrics.read_rows(os.path.join(d, f"{k}.jsonl"))
  assert read(workdir, "probes") == read(reference_dir, "probes")
  # Two-part rows of x = the run's 60 steps agree once the run is 60 steps long.
  final = lambda d: [r for r in read(d, "ksf") if r["step"] == 60]
  assert final(workdir) == final(reference_dir)


def test_extending_past_the_schedule_keeps_its_final_lr(tiny_run, tmp_path):
  """Default rule: the horizon is the first start's num_steps (tiny_run: 60, schedule_steps
  0); later steps run at the final learning rate of the schedule."""
  workdir = _copy(tiny_run[0], tmp_path / "run")
  train.run(_tiny(70), workdir)
  rows = metrics.read_rows(os.path.join(workdir, "metrics.jsonl"))
  _one_row_per_step_and_model(rows, 70)
  cfg = get_config("tiny")
  schedule = step_lib.lr_schedule(cfg.optim, 60)
  for r in rows:
    scale = step_lib.lr_for_width(cfg.optim, np.array([r["width"]]))[0]   # peak lr of the width
    # The lr logged at step t is the one used for update t (schedule at t - 1).
    assert r["lr"] == pytest.approx(scale * float(schedule(r["step"] - 1)), rel=1e-6)
  assert {r["lr"] for r in rows if r["step"] > 60 and r["width"] == 16} == {
      next(r["lr"] for r in rows if r["step"] == 61 and r["width"] == 16)}


def test_damaged_latest_checkpoint_resume_from_the_previous(first_leg, tiny_run, tmp_path,
                                                           capsys):
  """checkpoints/40 lost an item: the run says so, resumes from step 20 and, shortened to
  20 steps, ends there with the rows of the one 60-step-schedule run."""
  workdir = _copy(first_leg, tmp_path / "damaged")
  shutil.rmtree(os.path.join(workdir, "checkpoints", "40", "train"))
  train.run(_tiny(20), workdir)
  out = capsys.readouterr().out
  warnings = [l for l in out.splitlines() if l.startswith("WARNING checkpoint")]
  assert len(warnings) == 1 and os.path.join("checkpoints", "40") in warnings[0]
  assert f"resuming {workdir} from step 20" in out
  rows = metrics.read_rows(os.path.join(workdir, "metrics.jsonl"))
  _one_row_per_step_and_model(rows, 20)
  assert _comparable(rows) == _comparable([r for r in tiny_run[1] if r["step"] <= 20])
  for k in ("probes", "ksf"):
    assert max(r["step"] for r in metrics.read_rows(os.path.join(workdir, f"{k}.jsonl"))) == 20
  # Shrinking below the latest intact checkpoint is refused, naming the field.
  with pytest.raises(UserError, match="config.train.num_steps=10"):
    train.run(_tiny(10), workdir)


def test_every_checkpoint_damaged_starts_over(first_leg, tmp_path, capsys):
  workdir = _copy(first_leg, tmp_path / "all_damaged")
  for step in ("20", "40"):
    shutil.rmtree(os.path.join(workdir, "checkpoints", step, "host"))
  train.run(_tiny(3, schedule_steps=60), workdir)
  out = capsys.readouterr().out
  assert sum(l.startswith("WARNING checkpoint") for l in out.splitlines()) == 2
  assert "starting over" in out and "resuming" not in out
  rows = metrics.read_rows(os.path.join(workdir, "metrics.jsonl"))
  _one_row_per_step_and_model(rows, 3)


# ------------------------------------------------------------------ JSON lines on resume


def test_corrupt_middle_line_refuses_and_changes_nothing(first_leg, tmp_path):
  workdir = _copy(first_leg, tmp_path / "corrupt")
  path = os.path.join(workdir, "metrics.jsonl")
  with open(path) as f:
    lines = f.readlines()
  lines[4] = lines[4][:30] + "\n"
  with open(path, "w") as f:
    f.writelines(lines)
  with open(path, "rb") as f:
    before = f.read()
  proc = subprocess.run([sys.executable, "-m", "kcompress.main", "--config=configs/sweep.py:tiny",
                         f"--workdir={workdir}", "--config.train.num_steps=40"],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr
  assert f"{path}:5" in proc.stderr and "Traceback" not in proc.stderr
  with open(path, "rb") as f:
    assert f.read() == before


def test_torn_last_line_is_dropped_on_resume_and_in_analysis(first_leg, tmp_path, capsys):
  from kcompress.analysis import load
  workdir = _copy(first_leg, tmp_path / "torn")
  path = os.path.join(workdir, "metrics.jsonl")
  with open(path, "a") as f:
    f.write('{"step": 41, "wid')
  run = load.load_run(workdir)
  assert "dropped a torn last line" in capsys.readouterr().out
  assert max(r["step"] for rows in run["models"].values() for r in rows) == 40
  train.run(_tiny(40, schedule_steps=60), workdir)   # finished: nothing to train
  assert "dropped a torn last line" in capsys.readouterr().out
  rows = metrics.read_rows(path)
  _one_row_per_step_and_model(rows, 40)


# ------------------------------------------------------- rows against checkpoints, full disks


def _rows_agree_with_checkpoints(workdir):
  """Every checkpoint's rows are on file (`kcompress.resume`'s rule)."""
  rows = resume.read_rows(workdir)
  models = [(w, s) for w in get_config("tiny").model.widths for s in (0,)]
  mngr = checkpoint.manager(workdir, create=False)
  try:
    for step in checkpoint.steps(workdir):
      assert resume.rows_gap(rows, step, checkpoint.restore_host(mngr, step), models) is None
  finally:
    mngr.close()


def test_rows_cut_behind_the_checkpoints_resume_from_an_older_one(tiny_run, tmp_path, capsys):
  """metrics.jsonl lost its tail (rows end at step 30 beside checkpoints 20, 40, 60): the
  rerun resumes from 20, saying so in one line, and ends with the uninterrupted run's rows,
  rows and checkpoints agreeing."""
  reference_dir, reference, _, _ = tiny_run
  workdir = _copy(reference_dir, tmp_path / "cut")
  path = os.path.join(workdir, "metrics.jsonl")
  metrics.truncate_after(path, 30)
  train.run(_tiny(60), workdir)
  said = [l for l in capsys.readouterr().out.splitlines() if l.startswith("resuming")]
  assert said == [f"resuming {workdir} from step 20, not 60: metrics.jsonl rows are complete "
                  f"up to step 30 only (checkpoints 40, 60 moved to "
                  f"{os.path.join(workdir, resume.AHEAD_FOLDER)})"]
  assert _comparable(metrics.read_rows(path)) == _comparable(reference)
  for k in ("probes", "ksf"):
    assert (metrics.read_rows(os.path.join(workdir, f"{k}.jsonl"))
            == metrics.read_rows(os.path.join(reference_dir, f"{k}.jsonl")))
  assert checkpoint.steps(workdir) == [20, 40, 60]
  _rows_agree_with_checkpoints(workdir)


def test_rows_removed_after_a_run_refuse_then_start_over_as_told(first_leg, tiny_run, tmp_path):
  """metrics.jsonl removed after a run (checkpoints 20, 40): no checkpoint is at or below
  its rows, so the rerun refuses in one line naming the gap and how to start over, and
  changes nothing; done as told, the run ends with every row (the uninterrupted run's),
  rows and checkpoints agreeing."""
  workdir = _copy(first_leg, tmp_path / "removed")
  os.remove(os.path.join(workdir, "metrics.jsonl"))
  with open(os.path.join(workdir, "probes.jsonl")) as f:
    probes_before = f.read()
  with pytest.raises(UserError) as err:
    train.run(_tiny(40, schedule_steps=60), workdir)
  message = str(err.value)
  assert "\n" not in message and "complete up to step 0 only" in message
  assert "behind every checkpoint (steps 20, 40)" in message
  ckpts = os.path.join(workdir, "checkpoints")
  assert f"move {ckpts} aside" in message
  assert checkpoint.steps(workdir) == [20, 40]
  with open(os.path.join(workdir, "probes.jsonl")) as f:
    assert f.read() == probes_before
  shutil.move(ckpts, ckpts + ".old")
  train.run(_tiny(40, schedule_steps=60), workdir)
  rows = metrics.read_rows(os.path.join(workdir, "metrics.jsonl"))
  assert _comparable(rows) == _comparable([r for r in tiny_run[1] if r["step"] <= 40])
  assert checkpoint.steps(workdir) == [20, 40]
  _rows_agree_with_checkpoints(workdir)


def _file_size_limit(kib: int):
  return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (kib * 1024, resource.RLIM_INFINITY))


def test_file_size_limit_stops_at_the_first_failed_write(tiny_run, tmp_path):
  """ulimit -f 80 (KiB; a :tiny checkpoint holds a ~330 KB array file, so the save at step
  20 fails): at most 5 lines on the terminal, one error naming the cause, status 2; the
  rows written stay valid; rerun without the limit, the run ends equal to the
  uninterrupted one."""
  reference_dir, reference, _, _ = tiny_run
  workdir = str(tmp_path / "limited")
  code, out = _main(workdir, "--config.train.num_steps=60", preexec_fn=_file_size_limit(80))
  lines = [l for l in out.splitlines() if l.strip()]
  assert code == 2 and len(lines) <= 5 and "Traceback" not in out, out
  errors = [l for l in lines if l.startswith("error: ")]
  assert len(errors) == 1 and "file too large (a file-size limit: ulimit -f)" in errors[0]
  assert errors[0] == lines[-1]
  rows = metrics.read_rows(os.path.join(workdir, "metrics.jsonl"))   # no torn line
  done = max(r["step"] for r in rows)
  assert done < 60 and len(rows) == 2 * done and checkpoint.steps(workdir) == []
  train.run(_tiny(60), workdir)
  assert _comparable(metrics.read_rows(os.path.join(workdir, "metrics.jsonl"))) == (
      _comparable(reference))
  for k in ("probes", "ksf"):
    assert (metrics.read_rows(os.path.join(workdir, f"{k}.jsonl"))
            == metrics.read_rows(os.path.join(reference_dir, f"{k}.jsonl")))


def test_finite_dataset_codes_compare_the_same_tokens(tmp_path):
  """Over several epochs the prequential and Bayes totals both cover the first pass (the
  code of the dataset); later epochs are training loss only. x of the two-part rows is the
  dataset. Extending the run continues the epochs."""
  cfg = _tiny(10)
  cfg.data.num_sentences = 60
  cfg.eval_every = 10
  cfg.checkpoint_every = 5
  workdir = str(tmp_path / "finite")
  train.run(cfg, workdir)
  cfg.train.num_steps = 14
  train.run(cfg, workdir)
  rows = [r for r in metrics.read_rows(os.path.join(workdir, "metrics.jsonl")) if r["width"] == 16]
  _one_row_per_step_and_model(metrics.read_rows(os.path.join(workdir, "metrics.jsonl")), 14)
  first = [r for r in rows if r["epoch"] == 0]
  later = [r for r in rows if r["epoch"] > 0]
  assert first and len({r["epoch"] for r in later}) >= 2
  epoch_bits = sum(r["step_bits"] for r in first)
  assert all(r["preq_bits"] == pytest.approx(epoch_bits, rel=1e-9) for r in later)
  assert len({r["bayes_bits"] for r in later}) == 1 and later[0]["bayes_bits"] > 0
  # Epoch 0's batches hold every dataset row but the R mod B left over: its tokens are x.
  epoch_tokens = sum(r[f"tokens_{n}"] for r in first for n in roles.ROLE_NAMES)
  ksf = metrics.read_rows(os.path.join(workdir, "ksf.jsonl"))
  assert {r["step"] for r in ksf} == {10, 14}
  for r in ksf:
    assert r["data_tokens"] == epoch_tokens
    assert r["preq_bits"] == pytest.approx(epoch_bits if r["width"] == 16 else r["preq_bits"])


def test_bfloat16_prequential_bits_are_float32s(tiny_run, tmp_path):
  """The same 20 steps (schedule of the 60-step run) with bfloat16 matmuls: the
  prequential total stays within u = 2^-8 (bfloat16's unit roundoff) of float32's.
  Rounding the matmul inputs moves each token's bits by O(u) relative (float32
  accumulation, float32 softmax and losses); summed over ~2,000 tokens these errors
  average out, so u on the total is a generous bound (measured: ~2e-5)."""
  cfg = _tiny(20, schedule_steps=60)
  cfg.model.dtype = "bfloat16"
  result = train.run(cfg, str(tmp_path / "bf16"))
  float32 = {r["width"]: r["preq_bits"] for r in tiny_run[1] if r["step"] == 20}
  for r in result["rows"]:
    assert abs(r["preq_bits"] / float32[r["width"]] - 1) < 2.0 ** -8
  assert any(r["preq_bits"] != float32[r["width"]] for r in result["rows"])   # bf16 ran
  with open(tmp_path / "bf16" / "config.json") as f:
    assert json.load(f)["model"]["dtype"] == "bfloat16"
