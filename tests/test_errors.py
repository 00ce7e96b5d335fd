"""Bad inputs to the main job: one line naming the field, exit status 2, no traceback,
within seconds (before compiling), and the workdir stays free for the corrected command."""

import json
import os
import subprocess
import sys
import time

import pytest

from configs.sweep import get_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (overrides, the field the error must name)
BAD = [
    (["--config.train.batch_size=0"], "config.train.batch_size"),
    (["--config.model.widths=(16,20)"], "config.model.widths"),
    (["--config.eval_every=0"], "config.eval_every"),
    (["--config.checkpoint_every=-1"], "config.checkpoint_every"),
    (["--config.probe.per_bin=0"], "config.probe.per_bin"),
    (["--config.probe.confident=1.5"], "config.probe.confident"),
    (["--config.ksf.sample_batches=0"], "config.ksf.sample_batches"),
    (["--config.ksf.precisions=()"], "config.ksf.precisions"),
    (["--config.data.num_sentences=3"], "config.data.num_sentences"),
    (["--config.data.context_length=4"], "config.data.context_length"),
    (["--config.model.dtype=float8"], "config.model.dtype"),
]
MAX_SECONDS = 60   # import + validation only; a compile of the sweep alone takes longer


def _start(workdir, *overrides, config="configs/sweep.py:tiny"):
  cmd = [sys.executable, "-m", "kcompress.main", f"--config={config}",
         f"--workdir={workdir}", *overrides]
  return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)


def _check_one_line(proc, field, started):
  out, err = proc.communicate(timeout=300)
  elapsed = time.time() - started
  lines = [l for l in err.splitlines() if l.strip()]
  assert proc.returncode == 2, (out, err)
  assert "Traceback" not in err and "Traceback" not in out
  assert lines and field in lines[-1] and lines[-1].startswith("error: "), err
  assert len(lines) == 1, err
  assert elapsed < MAX_SECONDS


def test_bad_config_fields_fail_in_one_line(tmp_path):
  started = time.time()
  procs = []
  for k, (overrides, field) in enumerate(BAD):   # a few at a time: 2 cores
    procs.append((_start(str(tmp_path / f"w{k}"), *overrides), field))
    if len(procs) == 4 or k == len(BAD) - 1:
      for proc, f in procs:
        _check_one_line(proc, f, started)
      procs, started = [], time.time()
  for k in range(len(BAD)):   # nothing written: the corrected command may use the workdir
    assert not os.path.exists(tmp_path / f"w{k}" / "config.json")


def test_corrected_command_runs_in_the_same_workdir(tmp_path):
  workdir = str(tmp_path / "w")
  _check_one_line(_start(workdir, "--config.train.batch_size=0"), "config.train.batch_size",
                  time.time())
  proc = _start(workdir, "--config.train.num_steps=2", "--config.eval_every=2")
  out, err = proc.communicate(timeout=600)
  assert proc.returncode == 0, (out, err)
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["train"]["batch_size"] == get_config("tiny").train.batch_size


def test_finetune_from_a_run_without_checkpoints(tmp_path):
  pre = tmp_path / "pre"
  pre.mkdir()
  with open(pre / "config.json", "w") as f:
    f.write(get_config("tiny").to_json())
  workdir = str(tmp_path / "ft")
  _check_one_line(_start(workdir, f"--config.init_from={pre}", config="configs/finetune.py:tiny"),
                  "config.init_from", time.time())
  assert not os.path.exists(os.path.join(workdir, "config.json"))
