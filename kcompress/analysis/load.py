"""A run's saved files read into plain structures (no numbers computed here).

`load_run(workdir)` reads WORKDIR/{config.json, metrics.jsonl, probes.jsonl, ksf.jsonl,
compressors.json, oracle_ksf.json, stream_stats.json, reference_learners.json,
bayes_laws.json}; JSON-lines files go through
`kcompress.metrics.read_rows`. Bad inputs raise `kcompress.errors.UserError`.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict

from kcompress import metrics
from kcompress.errors import UserError


def _read_json(path: str) -> dict:
  with open(path) as f:
    try:
      return json.load(f)
    except json.JSONDecodeError as e:
      raise UserError(f"{path}: not valid JSON ({e})") from None


def _optional_json(path: str) -> dict:
  return _read_json(path) if os.path.exists(path) else {}


def _by_model(rows: list[dict]) -> dict:
  """Rows grouped by (width, seed), each group in file order."""
  groups = defaultdict(list)
  for r in rows:
    groups[(r["width"], r["seed"])].append(r)
  return dict(sorted(groups.items()))


def load_run(workdir: str) -> dict:
  """Everything the analysis reads from a workdir: {config, models, probes, ksf,
  compressors, oracle, stream_stats, reference, bayes_laws}. models/probes/ksf map (width, seed) to that model's
  rows (models' by step); the three JSON files are {} when absent."""
  if not os.path.isdir(workdir):
    raise UserError(f"{workdir}: no such directory")
  config_path = os.path.join(workdir, "config.json")
  if not os.path.exists(config_path):
    raise UserError(f"{workdir}: no config.json; is it a kcompress workdir?")
  config = _read_json(config_path)
  rows = metrics.read_rows(os.path.join(workdir, "metrics.jsonl"))
  if not rows:
    raise UserError(f"{workdir}: no metrics.jsonl rows; is it a kcompress workdir?")
  models = _by_model(rows)
  for model_rows in models.values():
    model_rows.sort(key=lambda r: r["step"])
  path = lambda name: os.path.join(workdir, name)
  return {"config": config, "models": models,
          "ksf": _by_model(metrics.read_rows(path("ksf.jsonl"))),
          "probes": _by_model(metrics.read_rows(path("probes.jsonl"))),
          "compressors": _optional_json(path("compressors.json")),
          "oracle": _optional_json(path("oracle_ksf.json")),
          "stream_stats": _optional_json(path("stream_stats.json")),
          "reference": _optional_json(path("reference_learners.json")),
          "bayes_laws": _optional_json(path("bayes_laws.json"))}


def bin_start(label: str) -> int:
  """Lower edge of an occurrence-bin label of probes.jsonl: '4-7' -> 4, '512+' -> 512."""
  return int(label.split("-")[0].rstrip("+"))
