"""Runs a sweep: `python -m kcompress.main --config=configs/sweep.py [--workdir=DIR]`.

Flags only; all logic lives in `kcompress.train` (and, after training, the analysis).
The terminal shows the tool's own lines; library logs go to WORKDIR/log.txt
(`--verbosity=0` or higher shows them too). A config or input error prints one line
naming the field and exits with status 2; so does a workdir another run holds
(`kcompress.workdir_lock`, taken before anything is written there) and a failed write for
want of space (`kcompress.cli`). Ctrl-C: one line, status 130.
"""

from __future__ import annotations

import os

import jax
from absl import flags, logging
from ml_collections import config_flags

from kcompress import cli, design, gekhman, setup, train, workdir_lock
from kcompress.analysis import report
from kcompress.errors import UserError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CONFIG = config_flags.DEFINE_config_file("config", "configs/sweep.py",
                                          "Sweep config file (file.py or file.py:variant).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (default runs/<config>[-<variant>]).")
_DISTRIBUTED = flags.DEFINE_enum(
    "distributed", "auto", ["auto", "on", "off"],
    "jax.distributed.initialize(): auto = when a cluster is detected (SLURM with > 1 task, "
    "a multi-host TPU VM) or --coordinator_address is given; on = always; off = never.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None,
                                   "host:port of process 0 (explicit multi-process runs).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the run (explicit).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's id (explicit).")
_HEARTBEAT = flags.DEFINE_integer(
    "heartbeat_timeout_s", 100,
    "Seconds without a heartbeat after which the others treat a process as dead and exit.")


def default_workdir(config_path: str, variant: str | None) -> str:
  name = os.path.splitext(os.path.basename(config_path.split(":")[0]))[0]
  return os.path.join("runs", name + (f"-{variant}" if variant and variant != "default" else ""))


def cluster_detected(environ=os.environ) -> bool:
  """A launcher that jax.distributed can read started several processes."""
  if int(environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in environ:
    return True
  return len([h for h in environ.get("TPU_WORKER_HOSTNAMES", "").split(",") if h]) > 1


def init_distributed() -> None:
  explicit = _COORDINATOR.value is not None
  if _DISTRIBUTED.value == "off" or not (
      explicit or _DISTRIBUTED.value == "on" or cluster_detected()):
    return
  jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                             num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value,
                             heartbeat_timeout_seconds=_HEARTBEAT.value)


def config_file_error(spec: str, cwd: str | None = None) -> str:
  """The one-line error of a --config file that cannot be loaded (`spec`: file[:variant])."""
  path, cwd = spec.split(":")[0], cwd or os.getcwd()
  if os.path.exists(os.path.join(cwd, path)):
    return f"--config={spec}: {path} exists but cannot be loaded (see the log file)"
  hint = ""
  in_repo = os.path.join(REPO_ROOT, path)
  if not os.path.isabs(path) and os.path.exists(in_repo):
    hint = f"; did you mean {in_repo}?"
  return (f"--config={spec}: no such file (a relative path starts at the current directory, "
          f"{cwd}){hint}")


def load_config():
  """The --config file's config (UserError, one line, when the file cannot be loaded)."""
  config = _CONFIG.value
  try:
    config.get("model")   # config_flags defers a file it could not load to the first access
  except OSError:
    raise UserError(config_file_error(flags.FLAGS["config"].config_filename)) from None
  return config


def print_final_rows(rows: list[dict]) -> None:
  for row in rows:
    print(f"width {row['width']:>5} seed {row['seed']}: {row['params']:>9,} params  "
          f"prequential {row['preq_bits']:,.0f} bits  (Bayes {row['bayes_bits']:,.0f}; "
          f"ratio {row['preq_bits'] / max(row['bayes_bits'], 1e-9):.3f})  "
          f"last-batch bits/token: syntax {row['bits_syntax'] or 0:.3f} value "
          f"{row['bits_value'] or 0:.3f} name {row['bits_name'] or 0:.3f}")


def main(argv):
  del argv
  init_distributed()
  config = load_config()
  workdir = _WORKDIR.value or default_workdir(flags.FLAGS["config"].config_filename,
                                              config.get("variant"))
  # The workdir is this run's (process 0 holds it) before anything is written there.
  with workdir_lock.hold(workdir, enabled=jax.process_index() == 0):
    cli.log_to_file(os.path.join(workdir, "log.txt"))
    logging.info("devices: %s (process %d of %d)", jax.devices(), jax.process_index(),
                 jax.process_count())
    print(f"kcompress: {len(setup.sweep_models(config))} models, {jax.device_count()} "
          f"{jax.devices()[0].platform} device(s), workdir {workdir}", flush=True)
    if gekhman.is_design(config):   # Gekhman et al.'s design: its fine-tuning runs, its report
      summary = design.run_design(config, workdir)
      for line in report.headline_lines(summary):
        print(line)
      print(f"report: {os.path.join(workdir, 'report', 'report.md')}")
      return
    result = train.run(config, workdir)
    if jax.process_index() != 0:   # process 0 writes the metrics and the report
      return
    print_final_rows(result["rows"])
    print(f"metrics: {os.path.join(workdir, 'metrics.jsonl')}")
    summary = report.write_report(workdir)
    for line in report.headline_lines(summary):
      print(line)
    print(f"report: {os.path.join(workdir, 'report', 'report.md')}")


if __name__ == "__main__":
  cli.run(main)
