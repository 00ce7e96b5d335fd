"""launch/ scripts: dry runs print the exact commands and run nothing; failures are named."""

import os
import shutil
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ("local.sh", "slurm.sh", "tpu.sh")
ARGS = ["--config=configs/sweep.py:tiny", "--config.train.num_steps=7"]


def _fake_bin(tmp_path):
  """A PATH whose gcloud / sbatch / srun only leave a marker: a dry run must not call them."""
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir(exist_ok=True)
  for tool in ("gcloud", "sbatch", "srun"):
    path = bin_dir / tool
    path.write_text(f"#!/usr/bin/env bash\ntouch {tmp_path}/called-{tool}\n")
    path.chmod(0o755)
  return bin_dir


def _run(script, tmp_path, *args, **env):
  full = {k: v for k, v in os.environ.items() if not k.startswith("KC_")}
  full["PATH"] = f"{_fake_bin(tmp_path)}:{full['PATH']}"
  full.update(env)
  return subprocess.run(["bash", f"launch/{script}", *args], cwd=ROOT, env=full,
                        capture_output=True, text=True, timeout=60)


def _commands(out):
  return [line[2:] for line in out.splitlines() if line.startswith("+ ")]


def _called(tmp_path):
  return sorted(p.name for p in tmp_path.glob("called-*"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_parse_and_need_a_config(script, tmp_path):
  assert subprocess.run(["bash", "-n", f"launch/{script}"], cwd=ROOT).returncode == 0
  proc = _run(script, tmp_path, "--dry-run")
  assert proc.returncode == 2 and "--config=FILE[:variant] is required" in proc.stderr
  help_text = _run(script, tmp_path, "--help").stdout
  assert "KC_WORKDIR" in help_text and "--dry-run" in help_text


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_shellcheck():
  proc = subprocess.run(["shellcheck", "-x", *[f"launch/{s}" for s in SCRIPTS], "launch/common.sh"],
                        cwd=ROOT, capture_output=True, text=True)
  assert proc.returncode == 0, proc.stdout


def test_local_dry_run(tmp_path):
  proc = _run("local.sh", tmp_path, "--dry-run", *ARGS, KC_NUM_PROCESSES="3", KC_PORT="4321")
  assert proc.returncode == 0, proc.stderr
  mains = [c for c in _commands(proc.stdout) if "-m kcompress.main" in c]
  assert len(mains) == 3
  for i, c in enumerate(mains):
    assert c.startswith("env JAX_PLATFORMS=cpu XLA_FLAGS=--xla_force_host_platform_device_count=1 "
                        "python -m kcompress.main --workdir=runs/sweep-tiny "
                        f"--coordinator_address=localhost:4321 --num_processes=3 --process_id={i} "
                        "--config=configs/sweep.py:tiny --config.train.num_steps=7 ")
    assert c.endswith(f"> runs/sweep-tiny/logs/process_{i}.log 2>&1 &")
  # A dry run creates nothing.
  proc = _run("local.sh", tmp_path, "--dry-run", *ARGS, KC_WORKDIR=str(tmp_path / "w"))
  assert proc.returncode == 0 and f"--workdir={tmp_path}/w " in proc.stdout
  assert not (tmp_path / "w").exists()


def test_slurm_dry_run(tmp_path):
  proc = _run("slurm.sh", tmp_path, "--dry-run", *ARGS, KC_NODES="4", KC_GPUS_PER_NODE="8",
              KC_PARTITION="gpu", KC_WORKDIR="/shared/run1")
  assert proc.returncode == 0, proc.stderr
  out = proc.stdout
  for line in ("#SBATCH --nodes=4", "#SBATCH --ntasks-per-node=8", "#SBATCH --gpus-per-node=8",
               "#SBATCH --requeue", "#SBATCH --signal=B:TERM@120", "#SBATCH --partition=gpu",
               "#SBATCH --output=/shared/run1/logs/slurm-%j.out"):
    assert line in out.splitlines()
  assert ("srun --kill-on-bad-exit=1 python -m kcompress.main --distributed=on "
          "--workdir=/shared/run1 --config=configs/sweep.py:tiny --config.train.num_steps=7 &"
          in out.splitlines())
  assert _commands(out)[-1] == "sbatch /shared/run1/logs/kcompress-sweep.sbatch"
  assert _called(tmp_path) == []


def test_tpu_dry_run(tmp_path):
  proc = _run("tpu.sh", tmp_path, "--dry-run", *ARGS, KC_NUM_WORKERS="2", KC_TPU_NAME="pod",
              KC_ZONE="zone-a", KC_ACCELERATOR_TYPE="v4-16")
  assert proc.returncode == 0, proc.stderr
  cmds = _commands(proc.stdout)
  assert cmds[0] == "gcloud compute tpus tpu-vm describe pod --zone=zone-a || \\"
  assert ("gcloud compute tpus tpu-vm create pod --zone=zone-a --accelerator-type=v4-16 "
          "--version=tpu-ubuntu2204-base") in cmds[1]
  assert any(c.startswith("gcloud compute tpus tpu-vm scp") and "--worker=all" in c for c in cmds)
  runs = [c for c in cmds if "kcompress.main" in c]
  assert len(runs) == 2
  for i, c in enumerate(runs):
    assert c.startswith(f"gcloud compute tpus tpu-vm ssh pod --worker={i} --zone=zone-a ")
    assert "--distributed=auto" in c and "--config.train.num_steps=7" in c
    assert c.endswith(f"> runs/tpu-logs/pod/worker_{i}.log 2>&1 &")
  assert not any(" delete " in c for c in cmds)
  deleting = _run("tpu.sh", tmp_path, "--dry-run", *ARGS, KC_DELETE="1")
  assert _commands(deleting.stdout)[-1] == ("gcloud compute tpus tpu-vm delete kcompress "
                                            "--zone=us-central2-b --quiet")
  assert _called(tmp_path) == []


def test_local_failure_names_the_process_and_stops_the_others(tmp_path):
  fake = tmp_path / "fake_python"
  fake.write_text("#!/usr/bin/env bash\n"
                  'for a in "$@"; do case "$a" in --process_id=*) id="${a#--process_id=}";; esac; done\n'
                  'if [ "$id" = 1 ]; then sleep 1; echo "boom in process 1"; exit 3; fi\n'
                  "sleep 60\n")
  fake.chmod(0o755)
  start = time.time()
  proc = _run("local.sh", tmp_path, *ARGS, KC_PYTHON=str(fake), KC_WORKDIR=str(tmp_path / "w"))
  assert time.time() - start < 20        # the sleeping process 0 was killed, not waited for
  assert proc.returncode == 3
  assert f"process 1 exited with status 3; log: {tmp_path}/w/logs/process_1.log" in proc.stderr
  assert "boom in process 1" in proc.stderr


def test_alphas_dry_run(tmp_path):
  """One kcompress.main per alpha, each in its own workdir, then the comparison of them."""
  proc = _run("alphas.sh", tmp_path, "--dry-run", "--config.train.num_steps=7",
              KC_ALPHAS="0.3 0.6", KC_SEEDS="0", KC_WORKDIR=str(tmp_path / "w"))
  assert proc.returncode == 0, proc.stderr
  cmds = _commands(proc.stdout)
  assert len(cmds) == 3
  for cmd, alpha in zip(cmds, ("0.3", "0.6")):
    assert "-m kcompress.main --config.train.num_steps=7 --config=configs/paper.py:data" in cmd
    assert f"--config.data.alpha={alpha}" in cmd and f"--workdir={tmp_path}/w-a{alpha}" in cmd
  assert cmds[2].endswith(f"-m kcompress.analysis --workdir={tmp_path}/w-a0.3 "
                          f"--workdir={tmp_path}/w-a0.6 --out={tmp_path}/w-compare")
  assert not any(tmp_path.glob("w-a*")) and _called(tmp_path) == []


def test_alphas_times_seeds_dry_run(tmp_path):
  """Seeds 0 and 2 at one alpha: seed s sets the data and init seeds, in workdir -s<seed>
  (seed 0 keeps the plain name); the comparison merges both."""
  proc = _run("alphas.sh", tmp_path, "--dry-run", KC_ALPHAS="0.5", KC_SEEDS="0 2",
              KC_WORKDIR=str(tmp_path / "w"))
  assert proc.returncode == 0, proc.stderr
  cmds = _commands(proc.stdout)
  assert len(cmds) == 3
  assert "--config.seed" not in cmds[0] and cmds[0].endswith(f"--workdir={tmp_path}/w-a0.5")
  assert "--config.seed=2 --config.sweep.seeds=\\(2\\,\\)" in cmds[1]   # printed shell-quoted
  assert cmds[1].endswith(f"--workdir={tmp_path}/w-a0.5-s2")
  assert cmds[2].endswith(f"--workdir={tmp_path}/w-a0.5 --workdir={tmp_path}/w-a0.5-s2 "
                          f"--out={tmp_path}/w-compare")
