"""What keeps a workdir whole, unit by unit (no training): the lock, rows against
checkpoints at resume, the memory preflight, a failed write of rows, resource errors."""

import errno
import io
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from configs.sweep import get_config
from kcompress import cli, metrics, preflight, resume, setup as setup_lib, workdir_lock
from kcompress.errors import UserError


# ------------------------------------------------------------------------------ the lock


def _dead_pid() -> int:
  proc = subprocess.Popen([sys.executable, "-c", "pass"])
  proc.wait()
  return proc.pid


def _plant_lock(workdir, **info):
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, workdir_lock.LOCK_NAME), "w") as f:
    json.dump({"host": socket.gethostname(), "started": "2026-01-01T00:00:00", **info}, f)


def test_lock_held_for_the_block_and_released(tmp_path):
  workdir = str(tmp_path / "w")
  with workdir_lock.hold(workdir):
    with open(workdir_lock.lock_path(workdir)) as f:
      info = json.load(f)
    assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
    assert workdir_lock.holder(workdir)["pid"] == os.getpid()
    with workdir_lock.hold(workdir):   # reentrant: train.run inside kcompress.main
      pass
    assert os.path.exists(workdir_lock.lock_path(workdir))
  assert not os.path.exists(workdir_lock.lock_path(workdir))
  assert workdir_lock.holder(workdir) is None


def test_a_live_holder_refuses_in_one_line_naming_it(tmp_path):
  workdir = str(tmp_path / "busy")
  sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
  try:
    _plant_lock(workdir, pid=sleeper.pid, proc_start=workdir_lock._proc_start(sleeper.pid))
    with pytest.raises(UserError) as err:
      with workdir_lock.hold(workdir):
        pass
  finally:
    sleeper.kill()
    sleeper.wait()
  message = str(err.value)
  assert "\n" not in message
  assert f"pid {sleeper.pid}" in message and socket.gethostname() in message
  assert "2026-01-01T00:00:00" in message   # the holder's start time
  # The refused run changed nothing: the holder's lock is still there.
  assert json.load(open(workdir_lock.lock_path(workdir)))["pid"] == sleeper.pid


def test_a_dead_pids_lock_is_taken_over_with_one_warning(tmp_path):
  workdir = str(tmp_path / "stale")
  dead = _dead_pid()
  _plant_lock(workdir, pid=dead)
  said = []
  with workdir_lock.hold(workdir, say=said.append):
    assert json.load(open(workdir_lock.lock_path(workdir)))["pid"] == os.getpid()
  assert len(said) == 1 and said[0].startswith("WARNING took over the lock")
  assert f"process {dead} is gone" in said[0]


def test_a_pid_reused_by_another_process_is_stale(tmp_path):
  """The lock records its process's start time: the same pid, started later, is another
  process (pid reuse), so the lock is stale."""
  workdir = str(tmp_path / "reused")
  _plant_lock(workdir, pid=os.getppid(), proc_start="1")   # alive, but started elsewhen
  if workdir_lock._proc_start(os.getppid()) is None:
    pytest.skip("no /proc: start times unknown")
  said = []
  with workdir_lock.hold(workdir, say=said.append):
    pass
  assert len(said) == 1


def test_another_hosts_lock_is_stale_only_without_heartbeat(tmp_path):
  workdir = str(tmp_path / "remote")
  _plant_lock(workdir, pid=1, host="elsewhere.example")
  path = workdir_lock.lock_path(workdir)
  with pytest.raises(UserError, match="elsewhere.example"):   # a fresh heartbeat: busy
    with workdir_lock.hold(workdir):
      pass
  old = time.time() - workdir_lock.STALE_S - 60
  os.utime(path, (old, old))
  said = []
  with workdir_lock.hold(workdir, say=said.append):
    pass
  assert len(said) == 1 and "no heartbeat" in said[0]


def test_an_unwritable_workdir_parent_is_one_line(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  with pytest.raises(UserError, match="cannot create it") as err:
    with workdir_lock.hold(str(blocker / "run")):
      pass
  assert "\n" not in str(err.value)


# ---------------------------------------------------------- rows against checkpoints


MODELS = [(16, 0), (32, 0)]


def _rows(steps, models=MODELS):
  return [{"step": t, "width": w, "seed": s} for t in steps for w, s in models]


def test_last_complete_step_stops_at_the_first_hole():
  assert resume.last_complete_step(_rows(range(1, 41)), MODELS) == 40
  assert resume.last_complete_step([], MODELS) == 0
  holed = _rows(range(1, 11)) + _rows(range(12, 41))
  assert resume.last_complete_step(holed, MODELS) == 10
  half = _rows(range(1, 21)) + _rows([21], MODELS[:1])   # step 21 torn between models
  assert resume.last_complete_step(half, MODELS) == 20
  doubled = _rows(range(1, 21)) + _rows([5])             # a second writer's rows
  assert resume.last_complete_step(doubled, MODELS) == 4


def test_rows_gap_names_what_is_missing_behind_a_checkpoint():
  rows = {"metrics": _rows(range(1, 41)), "probes": _rows([20, 40]), "ksf": _rows([20])}
  host = {"rows_written": {"metrics": 80, "probes": 4, "ksf": 4}}
  assert resume.rows_gap(rows, 40, host, MODELS) == (
      "ksf.jsonl holds 2 rows up to step 40, the run had written 4")
  host20 = {"rows_written": {"metrics": 40, "probes": 2, "ksf": 2}}
  assert resume.rows_gap(rows, 20, host20, MODELS) is None
  cut = dict(rows, metrics=_rows(range(1, 31)))
  assert resume.rows_gap(cut, 40, {}, MODELS) == (
      "metrics.jsonl rows are complete up to step 30 only")


# ------------------------------------------------------------------------ preflight


def test_memory_estimate_is_close_to_what_xla_allocates():
  """The estimate within a factor 2 of XLA's own count for the compiled train step on this
  CPU (arguments + outputs + temporaries - donated aliases): measured 1.07x on :tiny and
  1.06x at widths (64, 128)."""
  import jax
  import jax.numpy as jnp
  from kcompress import sweep
  for widths in ((16, 32), (64, 128)):
    cfg = get_config("tiny")
    cfg.model.widths = widths
    cfg.model.dtype = "float32"
    setup = setup_lib.make_setup(cfg)
    estimate = preflight.sweep_bytes_per_device(setup.layout, cfg.train.batch_size)
    B, L = cfg.train.batch_size, setup.spec.context_length
    batch = {k: jax.ShapeDtypeStruct((B, L), jnp.int32)
             for k in ("inputs_BxL", "targets_BxL", "roles_BxL")}
    step = sweep.make_step(setup.layout, setup.optimizer, cfg.optim, 60)
    m = step.lower(jax.eval_shape(setup.init_state), batch).compile().memory_analysis()
    xla = (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
           - m.alias_size_in_bytes)
    assert 0.5 < xla / estimate < 2.0, (widths, xla, estimate)


def test_a_sweep_that_cannot_fit_is_refused_naming_the_memory(monkeypatch):
  cfg = get_config("tiny")
  cfg.model.widths = (100000,)
  setup = setup_lib.make_setup(cfg)
  with pytest.raises(UserError) as err:
    preflight.check_memory(setup, cfg.train.batch_size)
  message = str(err.value)
  assert "needs ~" in message and "GiB per device, the device has" in message
  monkeypatch.setattr(preflight, "device_bytes", lambda: 1e15)   # a device large enough
  preflight.check_memory(setup, cfg.train.batch_size)


# ----------------------------------------------------------------- failed writes


class _FullDisk(io.FileIO):
  """A file that takes `room` more bytes, then fails as a full disk does."""

  room = 0

  def write(self, data):
    if self.room <= 0:
      raise OSError(errno.ENOSPC, "No space left on device")
    n = min(len(data), self.room)
    self.room -= n
    return super().write(bytes(data[:n]))


def test_a_failed_row_write_leaves_only_complete_rows(tmp_path):
  path = str(tmp_path / "metrics.jsonl")
  writer = metrics.Writer(path)
  writer.write(_rows([1]))
  writer._f.close()
  writer._f = _FullDisk(path, "ab")
  writer._f.room = 30   # part of the next line fits
  with pytest.raises(OSError) as err:
    writer.write(_rows([2]))
  writer.close()
  assert err.value.filename == path and err.value.errno == errno.ENOSPC
  assert metrics.read_rows(path) == _rows([1])     # no torn line: the rows stay valid
  assert open(path).read().endswith("\n")


def test_resource_errors_are_one_line_naming_file_and_cause():
  e = OSError(errno.EFBIG, "File too large", "/w/metrics.jsonl")
  line = cli.resource_error(e)
  assert "/w/metrics.jsonl" in line and "ulimit -f" in line and "\n" not in line
  # orbax/tensorstore wrap the OSError in a ValueError naming the file and the errno.
  wrapped = ValueError('OUT_OF_RANGE: Error writing "x" in OCDBT database at local file '
                       '"/w/checkpoints/20.orbax-checkpoint-tmp/train/": Failed writing: '
                       '"/w/checkpoints/20.orbax-checkpoint-tmp/train/d/ab": Failed to write '
                       "3 bytes: No space left on device [os_error_code='28']")
  try:
    raise RuntimeError("save failed") from wrapped
  except RuntimeError as chained:
    line = cli.resource_error(chained)
  assert "/w/checkpoints/20:" in line and "no space left" in line
  assert cli.resource_error(ValueError("a bug")) is None
  assert cli.resource_error(OSError(errno.ENOENT, "No such file", "x")) is None
