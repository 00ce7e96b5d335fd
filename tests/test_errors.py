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


def _override(cfg, flag):
  """Applies one `--config.a.b=value` flag to a config dict in-process."""
  import ast
  key, value = flag[len("--config."):].split("=", 1)
  *path, last = key.split(".")
  node = cfg
  for k in path:
    node = node[k]
  try:
    value = ast.literal_eval(value)
  except ValueError:
    pass
  node[last] = value


def test_bad_config_fields_are_user_errors_before_anything_is_written(tmp_path):
  """Every bad field raises the one-line UserError (which the entry points print as one
  line, exit status 2: the subprocess test below) and leaves the workdir without a
  config.json."""
  from kcompress import train
  from kcompress.errors import UserError
  for k, (overrides, field) in enumerate(BAD):
    cfg = get_config("tiny")
    for flag in overrides:
      _override(cfg, flag)
    workdir = str(tmp_path / f"w{k}")
    with pytest.raises(UserError) as err:
      train.run(cfg, workdir)
    message = str(err.value)
    assert field in message and "\n" not in message, message
    assert not os.path.exists(os.path.join(workdir, "config.json"))
  # The corrected config then runs in the same workdir (here: the bad batch size's).
  cfg = get_config("tiny")
  cfg.train.num_steps = 2
  train.run(cfg, str(tmp_path / "w0"))
  with open(tmp_path / "w0" / "config.json") as f:
    assert json.load(f)["train"]["batch_size"] == cfg.train.batch_size


def test_bad_config_fields_fail_in_one_line(tmp_path):
  """The command line: one line on stderr naming the field, status 2, no traceback,
  before compiling (a few kinds of field, side by side)."""
  started = time.time()
  procs = [(_start(str(tmp_path / f"w{k}"), *overrides), field)
           for k, (overrides, field) in enumerate(BAD) if k in (0, 1, 8, 9)]
  for proc, field in procs:
    _check_one_line(proc, field, started)


def test_finetune_from_a_run_without_checkpoints(tmp_path):
  pre = tmp_path / "pre"
  pre.mkdir()
  with open(pre / "config.json", "w") as f:
    f.write(get_config("tiny").to_json())
  workdir = str(tmp_path / "ft")
  _check_one_line(_start(workdir, f"--config.init_from={pre}", config="configs/finetune.py:tiny"),
                  "config.init_from", time.time())
  assert not os.path.exists(os.path.join(workdir, "config.json"))
