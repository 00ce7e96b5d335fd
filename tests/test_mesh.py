"""Sharded and multi-process sweeps give the single-device metrics (kcompress.mesh, main)."""

import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from configs.sweep import get_config
from kcompress import mesh as mesh_lib, metrics, sweep, train

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


# Placement (kcompress.sweep): a bucket of 8 models, sharded over every model axis (8, 4 or
# 2 devices), and a bucket of one, replicated over it with its rows split over model x data.
PLACED_MODELS = tuple((16, s) for s in range(8)) + ((32, 0),)
PLACED_MESHES = ((8, 1), (4, 2), (2, 4), (1, 8))
PLACED_STEPS = 3
METRICS = ("loss_bits", "bits_by_role", "tokens_by_role", "grad_norm", "lr", "frozen")


def test_model_groups():
  assert [sweep.model_groups(n, 8) for n in (1, 2, 4, 8, 9, 16)] == [1, 1, 1, 8, 1, 8]
  assert [sweep.model_groups(n, 1) for n in (1, 5)] == [1, 1]
  cfg = get_config("tiny")
  layout = sweep.make_layout(cfg.model, 40, 32, PLACED_MODELS, model_axis=8)
  assert [layout.placed_size(b) for b in range(2)] == [8, 1]
  assert [layout.row_shards(b) for b in range(2)] == [1, 8]
  assert [layout.row_shards(b, data_axis=2) for b in range(2)] == [2, 16]
  flops = sweep.device_flops(layout, 8)
  assert flops.shape == (8, 1) and np.allclose(flops, flops[0, 0])
  assert flops.sum() == pytest.approx(sweep.executed_flops(layout, 8))
  # 4 rows over 8 devices: each carries a PAD row of the buckets split over rows.
  assert sweep.device_flops(layout, 4).sum() > sweep.executed_flops(layout, 4)


def _placed_run(batch_size: int = 8) -> dict:
  """(In a process with 8 devices.) PLACED_MODELS trained PLACED_STEPS steps on one device
  and on every PLACED_MESHES mesh, and resumed on 2x4 from 8x1's states after one step
  (unplaced, as checkpoints hold them): metrics, final unplaced params, the probe step's
  outputs on 13 probes, and FLOPs of the step (XLA's cost analysis of the compiled step,
  summed over the devices; the layout's)."""
  import jax
  from jax.sharding import Mesh
  from kcompress import probes as probes_lib, step as step_lib
  from kcompress.data import roles, spec as spec_lib
  assert jax.device_count() == 8
  cfg = get_config("tiny")
  spec = spec_lib.data_spec(cfg.data)
  V, C = spec.vocab_size, spec.context_length
  rng = np.random.default_rng(0)
  batches = []
  for _ in range(PLACED_STEPS):
    targets = rng.integers(1, V, (batch_size, C)).astype(np.int32)
    role = rng.integers(0, roles.NUM_ROLES, (batch_size, C)).astype(np.int32)
    role[:, -5:] = roles.PAD   # sentence-packed tails
    batches.append({"inputs_BxL": np.concatenate([np.zeros((batch_size, 1), np.int32),
                                                  targets[:, :-1]], 1),
                    "targets_BxL": targets, "roles_BxL": role})
  P = 13   # probes: not a multiple of any row split
  A, Va = spec.num_attributes, spec.values_per_attribute
  attribute = rng.integers(0, A, P).astype(np.int32)
  probe_set = probes_lib.ProbeSet(
      inputs_PxL=rng.integers(1, V, (P, C)).astype(np.int32),
      read_at_P=rng.integers(0, C, P).astype(np.int32),
      value_token_P=(spec.val0 + attribute * Va + rng.integers(0, Va, P)).astype(np.int32),
      attribute_P=attribute, kind_P=np.zeros(P, np.int32), bin_P=np.zeros(P, np.int32),
      count_P=np.zeros(P, np.int32), weight_P=np.ones(P), name_weight_P=np.ones(P))
  widths, seeds = [w for w, _ in PLACED_MODELS], [s for _, s in PLACED_MODELS]
  opt = step_lib.make_optimizer(cfg.optim, PLACED_STEPS)
  initial = jax.device_get(sweep.init(sweep.make_layout(cfg.model, V, C, PLACED_MODELS),
                                      cfg.optim, opt, widths, seeds))
  setups = {}
  for model, data in ((1, 1),) + PLACED_MESHES:
    mesh = None if model * data == 1 else Mesh(
        np.asarray(jax.devices()[:model * data]).reshape(model, data), mesh_lib.AXES)
    put = ((lambda x: x) if mesh is None else
           (lambda x, mesh=mesh: mesh_lib.put(x, mesh_lib.replicated(mesh))))
    layout = sweep.make_layout(cfg.model, V, C, PLACED_MODELS, model)
    states = sweep.place(layout, put(initial), mesh)
    lowered = sweep.make_step(layout, opt, cfg.optim, PLACED_STEPS, mesh).lower(
        states, put(batches[0]))
    probe = sweep.make_probe_step(layout, spec, 0.5, mesh).lower(states, put(probe_set))
    setups[model, data] = [mesh, put, layout, lowered, probe]
  # Both cores compile (XLA compiles outside the GIL).
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    jobs = [(s, i, pool.submit(s[i].compile)) for s in setups.values() for i in (3, 4)]
    for s, i, job in jobs:
      s[i] = job.result()

  def train(model, data, states=initial, start=0):
    mesh, put, layout, step, probe = setups[model, data]
    states = sweep.place(layout, put(states), mesh)
    out = {"xla_flops": step.cost_analysis()["flops"] * model * data,
           "layout_flops": float(sweep.device_flops(layout, batch_size, data).sum()),
           "metrics": []}
    for i in range(start, PLACED_STEPS):
      states, m = step(states, put(batches[i]))
      out["metrics"].append({k: np.asarray(jax.device_get(m[k])).tolist() for k in METRICS})
      if (model, data) == (8, 1) and i == 0:   # a checkpoint, resumed on another mesh below
        out["after_first"] = jax.device_get(sweep.unplace(layout, states, mesh))
    out["probes"] = {k: np.asarray(v, np.float64).tolist()
                     for k, v in jax.device_get(probe(states, put(probe_set))).items()}
    real = jax.device_get(sweep.unplace(layout, states, mesh))
    out["num_real"] = [int(np.asarray(s.width).shape[0]) for s in real]
    out["params"] = [float(np.abs(np.asarray(x, np.float64)).sum())
                     for s in real for x in jax.tree.leaves(s.params)]
    return out

  runs = {f"{m}x{d}": train(m, d) for m, d in ((1, 1),) + PLACED_MESHES}
  runs["8x1->2x4"] = train(2, 4, runs["8x1"].pop("after_first"), start=1)
  runs["8x1->2x4"]["metrics"] = runs["8x1"]["metrics"][:1] + runs["8x1->2x4"]["metrics"]
  return runs


def test_placement_matches_one_device_and_flops(tmp_path):
  """Every mesh (and a resume on another mesh) gives the one-device metrics, params and
  probe outputs; the meshes with a model axis execute the one-device sweep's FLOPs (not a
  copy of it per model-axis device)."""
  script = textwrap.dedent(f"""
      import json, sys
      from tests.test_mesh import _placed_run
      json.dump(_placed_run(), open({str(tmp_path / "runs.json")!r}, "w"))
      """)
  # Optimisation level 0 and the classic fusion emitters compile in a fifth of the time
  # (every run of the comparison uses them alike).
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu", XLA_FLAGS=(
      "--xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0 "
      "--xla_cpu_use_fusion_emitters=false"))
  proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  runs = json.load(open(tmp_path / "runs.json"))
  one = runs.pop("1x1")
  assert one["num_real"] == [8, 1]
  for name, run in runs.items():
    assert run["num_real"] == [8, 1], name
    for got, want in zip(run["metrics"], one["metrics"]):
      for k in METRICS:
        np.testing.assert_allclose(got[k], want[k], rtol=2e-4, atol=1e-5, err_msg=f"{name} {k}")
    np.testing.assert_allclose(run["params"], one["params"], rtol=1e-4, err_msg=name)
    for k, want in one["probes"].items():
      np.testing.assert_allclose(run["probes"][k], want, rtol=2e-4, atol=1e-4, err_msg=f"{name} {k}")
    if not name.startswith("1x"):   # a model axis: no copies of the sweep
      assert run["layout_flops"] <= 1.25 * one["layout_flops"], name
      assert run["xla_flops"] <= 1.25 * one["xla_flops"], (name, run["xla_flops"] / one["xla_flops"])


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
