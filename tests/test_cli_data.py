"""Bad flags of `python -m kcompress.data` and `python -m kcompress.compress`: one line
naming the flag, non-zero exit, no traceback, within seconds, and before anything compiles
(JAX_LOG_COMPILES logs every compilation, cache hits too); compress checks
--num_sentences before it touches the workdir. The commands run side by side."""

import json
import os
import subprocess
import sys
import time

import pytest

from kcompress.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# An error costs an import of jax and the package (~2 s of CPU). CPU time, not wall time:
# the machine may be busy.
ERROR_CPU_SECONDS = 10


def _start(tmp_path, module, *args):
  """Starts `python -m module args` in the repo root, its output into files."""
  name = f"{module}{len(os.listdir(tmp_path))}"
  out, err = open(tmp_path / f"{name}.out", "w+"), open(tmp_path / f"{name}.err", "w+")
  proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, text=True,
                          stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                          env={**os.environ, "JAX_LOG_COMPILES": "1"})
  return proc, out, err


def _finish(started, timeout):
  """(exit code, stdout, stderr, CPU seconds of the process)."""
  proc, out, err = started
  deadline = time.monotonic() + timeout
  while True:
    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    if pid:
      break
    if time.monotonic() > deadline:
      proc.kill()
      pytest.fail(f"{proc.args} still running after {timeout} s")
    time.sleep(0.05)
  proc.returncode = os.waitstatus_to_exitcode(status)
  texts = []
  for f in (out, err):
    f.seek(0)
    texts.append(f.read())
    f.close()
  return proc.returncode, *texts, usage.ru_utime + usage.ru_stime


@pytest.fixture(scope="module")
def fake_workdir(tmp_path_factory):
  """A workdir with the tiny sweep's config.json and no checkpoints (nothing trained)."""
  from configs.sweep import get_config
  path = tmp_path_factory.mktemp("untrained")
  (path / "config.json").write_text(get_config("tiny").to_json())
  return str(path)


def test_bad_flags_are_one_line_and_a_good_one_runs(tmp_path, fake_workdir):
  missing = str(tmp_path / "no-such-run")
  bad = {  # command -> the flag its error must name
      ("kcompress.data", "--num_sentences=0"): "--num_sentences=0",
      ("kcompress.data", "--num_sentences=-5"): "--num_sentences=-5",
      ("kcompress.data", "--show=-1", "--num_sentences=10"): "--show=-1",
      ("kcompress.compress", f"--workdir={missing}"): f"--workdir={missing}",
      # num_sentences is checked before the workdir: neither needs a trained run.
      ("kcompress.compress", f"--workdir={missing}", "--num_sentences=0"): "--num_sentences=0",
      ("kcompress.compress", f"--workdir={fake_workdir}", "--step=7"): "--step=7",
  }
  good = _start(tmp_path, "kcompress.data", "--num_sentences=50", "--show=0")
  procs = {cmd: _start(tmp_path, *cmd) for cmd in bad}
  try:
    for cmd, flag in bad.items():
      code, _, err, cpu_seconds = _finish(procs[cmd], timeout=120)
      assert code == 2, (cmd, err)
      lines = [line for line in err.splitlines() if line.strip()]
      assert lines[-1].startswith(f"error: {flag}:"), (cmd, err)
      assert "Traceback" not in err, (cmd, err)
      assert "Compiling" not in err, (cmd, err)
      assert cpu_seconds < ERROR_CPU_SECONDS, (cmd, cpu_seconds)
    code, out, err, _ = _finish(good, timeout=180)
    assert code == 0, err
    assert "Compiling" in err          # what the bad commands' stderr must not have
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["num_sentences"] == 50 and stats["num_tokens"] > 0
  finally:
    for proc, out, err in [good, *procs.values()]:
      if proc.returncode is None:      # not reaped: a failed assertion above
        proc.kill()
        proc.wait()
      out.close()
      err.close()


def test_compress_checks_every_flag_before_restoring(fake_workdir, monkeypatch):
  from kcompress import compress
  check = compress.check_args
  with pytest.raises(UserError, match=r"^--num_sentences=-2: must be a positive integer"):
    check(fake_workdir, None, -2, None)
  with pytest.raises(UserError, match=r"^--model=abc: expected WIDTH or WIDTH,SEED"):
    check(fake_workdir, "abc", 10, None)
  with pytest.raises(UserError, match=r"^--model=16,x: expected WIDTH or WIDTH,SEED"):
    check("/no/such/dir", "16,x", 10, None)
  with pytest.raises(UserError, match=r"^--model=48: not in this sweep; it has \(width, seed\)"):
    check(fake_workdir, "48", 10, None)
  with pytest.raises(UserError, match=r"^--step=-1: must be"):
    check(fake_workdir, None, 10, -1)
  with pytest.raises(UserError, match=r"^--workdir is required"):
    check("", None, 10, None)
  with pytest.raises(UserError, match=rf"^--workdir={fake_workdir}: .* has no checkpoints"):
    check(fake_workdir, "16", 10, None)
  monkeypatch.setattr(compress.checkpoint, "steps", lambda workdir: [20, 40])
  with pytest.raises(UserError, match=r"^--step=7: .* has no checkpoint of that step; it has "
                     r"\[20, 40\]"):
    compress.compress(fake_workdir, "32", 10, step=7)
  check(fake_workdir, "32,0", 10, 40)          # all good: returns without a word
  check(fake_workdir, None, 10, None)
