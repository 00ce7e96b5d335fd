"""Bad inputs to the main job: one line naming the field, exit status 2, no traceback,
within seconds (before compiling), and the workdir stays free for the corrected command.
Also bad workdirs and config files, and Ctrl-C: one line each."""

import contextlib
import json
import os
import signal
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


def _start(workdir, *overrides, config="configs/sweep.py:tiny", cwd=ROOT, env=None):
  cmd = [sys.executable, "-m", "kcompress.main", f"--config={config}",
         f"--workdir={workdir}", *overrides]
  return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env)


def _check_one_line(proc, field, started, status=2, prefix="error: "):
  out, err = proc.communicate(timeout=300)
  elapsed = time.time() - started
  lines = [l for l in err.splitlines() if l.strip()]
  assert proc.returncode == status, (out, err)
  assert "Traceback" not in err and "Traceback" not in out
  assert lines and field in lines[-1] and lines[-1].startswith(prefix), err
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
  cfg.train.schedule_steps = 60   # test_train's horizon: its compiled step is reused
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


@contextlib.contextmanager
def _read_only(path):
  """`path` made read-only: by its mode, or (as root, whom modes do not stop) by a
  read-only bind mount of it onto itself; skips where neither is possible."""
  os.chmod(path, 0o555)
  if not os.access(path, os.W_OK):
    try:
      yield
    finally:
      os.chmod(path, 0o755)
    return
  mount = ["mount", "--bind", str(path), str(path)]
  if subprocess.run(mount, capture_output=True).returncode:
    pytest.skip("running as root without mount: cannot make a read-only workdir")
  try:
    subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True,
                   capture_output=True)
    yield
  finally:
    subprocess.run(["umount", str(path)], capture_output=True)
    os.chmod(path, 0o755)


def test_bad_workdirs_and_config_files_fail_in_one_line(tmp_path):
  """Garbage or cut config.json (naming the file), a missing config file, a config path
  relative to another directory, a read-only workdir, a workdir below a file: one line
  each on stderr, status 2, no traceback, within seconds."""
  good = get_config("tiny").to_json(indent=2)
  garbage, cut = tmp_path / "garbage", tmp_path / "cut"
  for path, text in ((garbage, "\x00\x17 not json at all"), (cut, good[:len(good) // 2])):
    path.mkdir()
    (path / "config.json").write_text(text)
  (tmp_path / "a_file").write_text("")
  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  read_only = tmp_path / "read_only"
  read_only.mkdir()
  (read_only / "config.json").write_text(good)
  with _read_only(read_only):
    started = time.time()
    cases = [
        (_start(garbage), f"{garbage / 'config.json'}: not valid JSON"),
        (_start(cut), f"{cut / 'config.json'}: not valid JSON"),
        (_start(tmp_path / "w1", config="configs/nope.py"), "configs/nope.py: no such file"),
        (_start(tmp_path / "w2", cwd=elsewhere),
         f"current directory, {elsewhere}); did you mean {ROOT}/configs/sweep.py?"),
        (_start(read_only), f"--workdir={read_only}: not writable"),
        (_start(tmp_path / "a_file" / "run"), "cannot create it"),
    ]
    for proc, field in cases:
      _check_one_line(proc, field, started)
  assert (garbage / "config.json").read_text().startswith("\x00")   # left as it was
  assert not os.path.exists(tmp_path / "w1" / "config.json")


def test_ctrl_c_while_compiling_is_one_line_and_status_130(tmp_path):
  """SIGINT soon after the start line (the job is being built and compiled: widths no
  other test compiles): one line, status 130 at once, no traceback, no crash; the lock is
  released and whatever was written is whole."""
  workdir = tmp_path / "interrupted"
  # An empty compilation cache of its own: with the session's cache warm from an earlier
  # run of this test, the step would compile in under 2 s and the signal would land in
  # the training loop (a checkpoint, then exit 130 from there), not during compilation.
  env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(tmp_path / "empty-jax-cache"))
  proc = _start(workdir, "--config.model.widths=(16,40)", env=env)
  assert proc.stdout.readline().startswith("kcompress:")
  time.sleep(2)
  started = time.time()
  proc.send_signal(signal.SIGINT)
  _check_one_line(proc, "interrupted (Ctrl-C)", started, status=130, prefix="interrupted")
  assert time.time() - started < 30   # from the handler, not after the compilation
  assert not os.path.exists(workdir / "run.lock")
  if os.path.exists(workdir / "config.json"):   # written atomically, if at all
    assert json.loads((workdir / "config.json").read_text())["model"]["widths"] == [16, 40]
