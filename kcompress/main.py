"""Runs a sweep: `python -m kcompress.main --config=configs/sweep.py [--workdir=DIR]`.

Flags only; all logic lives in `kcompress.train` (and, after training, the analysis).
"""

from __future__ import annotations

import os

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from kcompress import train
from kcompress.analysis import report

_CONFIG = config_flags.DEFINE_config_file("config", "configs/sweep.py",
                                          "Sweep config file (file.py or file.py:variant).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (default runs/<config>[-<variant>]).")


def default_workdir(config_path: str, variant: str | None) -> str:
  name = os.path.splitext(os.path.basename(config_path.split(":")[0]))[0]
  return os.path.join("runs", name + (f"-{variant}" if variant and variant != "default" else ""))


def main(argv):
  del argv
  config = _CONFIG.value
  workdir = _WORKDIR.value or default_workdir(flags.FLAGS["config"].config_filename,
                                              config.get("variant"))
  logging.info("devices: %s (process %d of %d)", jax.devices(), jax.process_index(),
               jax.process_count())
  print(f"kcompress: {len(train.sweep_models(config))} models, {jax.device_count()} "
        f"{jax.devices()[0].platform} device(s), workdir {workdir}", flush=True)
  result = train.run(config, workdir)
  for row in result["rows"]:
    print(f"width {row['width']:>5} seed {row['seed']}: {row['params']:>9,} params  "
          f"prequential {row['preq_bits']:,.0f} bits  (Bayes {row['bayes_bits']:,.0f}; "
          f"ratio {row['preq_bits'] / max(row['bayes_bits'], 1e-9):.3f})  "
          f"last-batch bits/token: syntax {row['bits_syntax'] or 0:.3f} value "
          f"{row['bits_value'] or 0:.3f} name {row['bits_name'] or 0:.3f}")
  print(f"metrics: {os.path.join(workdir, 'metrics.jsonl')}")
  summary = report.write_report(workdir)
  for line in report.headline_lines(summary):
    print(line)
  print(f"report: {os.path.join(workdir, 'report', 'report.md')}")


if __name__ == "__main__":
  app.run(main)
