"""Sharded and multi-process sweeps give the single-device metrics (kcompress.mesh, main)."""

import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from configs.sweep import get_config
from kcompress import mesh as mesh_lib, metrics, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS, BATCH = 12, 8
OVERRIDES = {"train.num_steps": STEPS, "train.batch_size": BATCH, "eval_every": 6,
             "checkpoint_every": 6, "log_every": 6}
COMPARED = ("loss_bits", "preq_bits", "bits_syntax", "bits_value", "bits_name")


def _config():
  cfg = get_config("tiny")
  for key, value in OVERRIDES.items():
    section, _, field = key.rpartition(".")
    (cfg[section] if section else cfg)[field] = value
  return cfg


def _flags():
  return [f"--config.{k}={v}" for k, v in OVERRIDES.items()]


@pytest.fixture(scope="module")
def single_device(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("single"))
  train.run(_config(), path)
  return metrics.read_rows(os.path.join(path, "metrics.jsonl"))


def _assert_same_metrics(rows, want):
  # Sharding the batch changes the order of float32 reductions (loss means, gradient
  # all-reduces): the numbers agree to float32 rounding accumulated over a few steps.
  key = lambda r: (r["step"], r["width"], r["seed"])
  assert sorted(map(key, rows)) == sorted(map(key, want))
  got = {key(r): r for r in rows}
  for w in want:
    g = got[key(w)]
    for k in COMPARED:
      assert g[k] == pytest.approx(w[k], rel=2e-4, abs=1e-5), (k, key(w))
    assert g["bayes_bits"] == w["bayes_bits"]   # the data are identical, float64


def test_mesh_shape_errors():
  cfg = get_config("tiny").mesh
  assert mesh_lib.mesh_shape(cfg, 8) == (1, 8)
  cfg.model, cfg.data = 4, -1
  assert mesh_lib.mesh_shape(cfg, 8) == (4, 2)
  cfg.model, cfg.data = 3, 2
  with pytest.raises(ValueError, match="does not tile the 8 devices"):
    mesh_lib.mesh_shape(cfg, 8)
  cfg.model, cfg.data = -1, -1
  with pytest.raises(ValueError, match="at most one"):
    mesh_lib.mesh_shape(cfg, 8)


def test_sharded_sweep_matches_one_device(single_device, tmp_path):
  script = textwrap.dedent(f"""
      import sys
      from tests.test_mesh import _config
      from kcompress import train
      import jax
      assert jax.device_count() == 8
      for model, data in ((8, 1), (4, 2), (1, 8)):
        cfg = _config()
        cfg.mesh.model, cfg.mesh.data = model, data
        train.run(cfg, f"{tmp_path}/mesh{{model}}x{{data}}")
      """)
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  for mesh in ("8x1", "4x2", "1x8"):
    _assert_same_metrics(metrics.read_rows(str(tmp_path / f"mesh{mesh}" / "metrics.jsonl")),
                         single_device)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _processes(workdir, num_steps, heartbeat):
  port = _free_port()
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
  procs = []
  for pid in range(2):
    cmd = [sys.executable, "-m", "kcompress.main", "--config=configs/sweep.py:tiny",
           f"--workdir={workdir}", f"--coordinator_address=localhost:{port}",
           "--num_processes=2", f"--process_id={pid}", f"--heartbeat_timeout_s={heartbeat}",
           *_flags(), f"--config.train.num_steps={num_steps}"]
    procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True))
  return procs


def test_two_processes_match_one(single_device, tmp_path):
  procs = _processes(str(tmp_path / "two"), STEPS, heartbeat=30)
  outs = [p.communicate(timeout=600)[0] for p in procs]
  assert [p.returncode for p in procs] == [0, 0], outs[0][-3000:] + outs[1][-3000:]
  _assert_same_metrics(metrics.read_rows(str(tmp_path / "two" / "metrics.jsonl")), single_device)
  assert "report:" in outs[0] and "report:" not in outs[1]   # process 0 alone reports


def test_killing_one_process_stops_the_other(tmp_path):
  heartbeat = 10
  procs = _processes(str(tmp_path / "killed"), 3000, heartbeat=heartbeat)
  survivor, victim = procs
  # Wait until both train (the survivor prints progress), then kill process 1.
  deadline = time.time() + 300
  lines = []
  for line in survivor.stdout:
    lines.append(line)
    if line.startswith("step "):
      break
    assert time.time() < deadline, "".join(lines[-50:])
  victim.kill()
  victim.wait()
  t0 = time.time()
  try:
    rest, _ = survivor.communicate(timeout=heartbeat * 6 + 60)
  except subprocess.TimeoutExpired:
    survivor.kill()
    pytest.fail("the surviving process hung after its peer died")
  waited = time.time() - t0
  assert survivor.returncode != 0
  out = "".join(lines) + rest
  # jax.distributed's coordination service names the missing task.
  assert any(s in out for s in ("heartbeat", "unavailable", "UNAVAILABLE", "Terminating",
                                "disconnected", "failed")), out[-3000:]
  assert waited < heartbeat * 6 + 60
