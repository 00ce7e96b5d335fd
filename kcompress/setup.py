"""The static parts of a run, fixed by its config: validation, data spec, models, layout.

`validate(config)` fails before anything compiles, with one line naming the field
(`kcompress.errors.UserError`). `make_setup(config)` returns the `Setup` every kind of
run (pretraining, fine-tuning) and every tool reading a workdir shares.
`read_config(workdir)` / `check_resumable(workdir, config)` read and compare the
config.json a workdir was started with; `write_config` writes it (atomically).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from typing import Any

import jax
import ml_collections
import numpy as np

from kcompress import data, mesh as mesh_lib, model as model_lib, step as step_lib, sweep
from kcompress.errors import UserError

# Fields added after runs existed, with the value those runs had (they resume as they ran).
ADDED_FIELDS = {"data.packing": "stream", "model.dtype": "float32", "train.schedule_steps": 0,
                "laws.replicates": 0, "laws.sentences": 0}
# Fields a run may change when it resumes (full dotted names).
# (train.schedule_steps: 0 on resume keeps the recorded horizon; another value must match it.)
RESUMABLE_CHANGES = ("train.num_steps", "train.schedule_steps", "log_every", "eval_every",
                     "checkpoint_every", "mesh.model", "mesh.data", "laws.replicates",
                     "laws.sentences", "probe.num_next")


def sweep_models(config) -> list[tuple[int, int]]:
  """(width, seed) of every model of the sweep, width-major."""
  return list(itertools.product(tuple(config.model.widths), tuple(config.sweep.seeds)))


def _int(value) -> bool:
  return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def validate(config) -> None:
  """Fails before any compilation, naming the offending field (UserError)."""
  widths = tuple(config.model.widths)
  if not widths or any(not _int(w) or w <= 0 for w in widths):
    raise UserError(f"config.model.widths={widths!r}: need positive integers")
  if list(widths) != sorted(set(widths)):
    raise UserError(f"config.model.widths={widths!r}: must be distinct and ascending")
  if not _int(config.model.head_dim) or config.model.head_dim < 1:
    raise UserError(f"config.model.head_dim={config.model.head_dim!r}: need a positive integer")
  bad = [w for w in widths if w % config.model.head_dim]
  if bad:
    raise UserError(f"config.model.widths={widths!r}: widths {bad} are not divisible by "
                    f"config.model.head_dim={config.model.head_dim}")
  for field in ("depth", "mlp_ratio"):
    if not _int(config.model[field]) or config.model[field] < 1:
      raise UserError(f"config.model.{field}={config.model[field]!r}: need an integer >= 1")
  seeds = tuple(config.sweep.seeds)
  if not seeds or any(not _int(s) for s in seeds) or len(set(seeds)) != len(seeds):
    raise UserError(f"config.sweep.seeds={seeds!r}: need distinct integers (at least one)")
  if config.optim.lr_scaling not in step_lib.LR_SCALINGS:
    raise UserError(f"config.optim.lr_scaling={config.optim.lr_scaling!r}: choose one of "
                    f"{step_lib.LR_SCALINGS}")
  if config.optim.decay not in ("cosine", "constant"):
    raise UserError(f"config.optim.decay={config.optim.decay!r}: choose 'cosine' or 'constant'")
  if not config.optim.lr > 0:
    raise UserError(f"config.optim.lr={config.optim.lr!r}: must be > 0")
  batch = config.train.batch_size
  if not _int(batch) or batch < 1:
    raise UserError(f"config.train.batch_size={batch!r}: need an integer >= 1")
  _, data_axis = mesh_lib.mesh_shape(mesh_config(config), jax.device_count())
  if batch % data_axis:
    raise UserError(f"config.train.batch_size={batch} is not divisible by the mesh's data "
                    f"axis ({data_axis} devices; config.mesh)")
  if not _int(config.train.num_steps) or config.train.num_steps < (
      0 if config.get("init_from") else 1):
    raise UserError(f"config.train.num_steps={config.train.num_steps!r}: must be >= 1"
                    + (" (0: sized to the injected material)" if config.get("init_from") else ""))
  if config.train.get("schedule_steps", 0) < 0:
    raise UserError(f"config.train.schedule_steps={config.train.schedule_steps}: must be >= 0 "
                    f"(0: the num_steps the run starts with)")
  for field in ("log_every", "checkpoint_every", "eval_every"):
    if not _int(config[field]) or config[field] < 1:
      raise UserError(f"config.{field}={config[field]!r}: must be an integer >= 1")
  if not _int(config.ksf.sample_batches) or config.ksf.sample_batches < 1:
    raise UserError(f"config.ksf.sample_batches={config.ksf.sample_batches!r}: must be >= 1")
  precisions = tuple(config.ksf.precisions)
  if not precisions or any(not _int(p) or not -8 <= p <= 24 for p in precisions):
    raise UserError(f"config.ksf.precisions={precisions!r}: need integers in [-8, 24]")
  probe = config.probe
  for field, low in (("per_bin", 1), ("num_bins", 1), ("num_fresh", 0)):
    if not _int(probe[field]) or probe[field] < low:
      raise UserError(f"config.probe.{field}={probe[field]!r}: need an integer >= {low}")
  if not 0.0 < probe.confident < 1.0:
    raise UserError(f"config.probe.confident={probe.confident!r}: must be in (0, 1)")
  if config.data.num_sentences < 0:
    raise UserError(f"config.data.num_sentences={config.data.num_sentences}: must be >= 0 "
                    f"(0: an infinite stream)")
  dtype = config.model.get("dtype", "float32")
  if dtype not in ("float32", "bfloat16", "auto"):
    raise UserError(f"config.model.dtype={dtype!r}: choose float32, bfloat16 or auto")
  data.data_spec(config.data)   # UserError naming the config.data field


def flatten(d: dict, prefix: str = "") -> dict:
  """Nested config dict -> {"section.key": value} (tuples as lists, as JSON has them)."""
  out = {}
  for k, v in d.items():
    key = f"{prefix}{k}"
    if isinstance(v, dict):
      out.update(flatten(v, key + "."))
    else:
      out[key] = list(v) if isinstance(v, (list, tuple)) else v
  return out


def _concrete(flat: dict) -> dict:
  """`model.dtype` "auto" as the dtype it means on this platform."""
  if flat.get("model.dtype") == "auto":
    flat["model.dtype"] = model_lib.resolve_dtype("auto", jax.devices()[0].platform)
  return flat


def config_diff(old: dict, new: dict, ignore=()) -> list[str]:
  """Dotted names of the fields whose values differ (fields added since count as their
  ADDED_FIELDS value in `old`)."""
  old = _concrete({**ADDED_FIELDS, **flatten(old)})
  new = _concrete({**ADDED_FIELDS, **flatten(new)})
  return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k) and k not in ignore)


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The resolved config of a run; a UserError if `workdir` is not a kcompress workdir or
  its config.json cannot be read (naming the file and what to do)."""
  path = os.path.join(workdir, "config.json")
  if not os.path.isdir(workdir):
    raise UserError(f"{workdir}: no such directory")
  if not os.path.exists(path):
    raise UserError(f"{workdir} is not a kcompress workdir: it has no config.json")
  fix = "it records the config the run started with: restore it, or start over in another --workdir"
  try:
    with open(path, encoding="utf-8") as f:
      raw = json.load(f)
  except OSError as e:
    raise UserError(f"{path}: cannot be read ({e.strerror})") from None
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    where = f" at line {e.lineno}" if isinstance(e, json.JSONDecodeError) else ""
    raise UserError(f"{path}: not valid JSON{where} (corrupt or cut short); {fix}") from None
  if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict):
    raise UserError(f"{path}: not a kcompress config (no model section); {fix}")
  return _tupled(ml_collections.ConfigDict(raw))


def write_config(workdir: str, config) -> None:
  """WORKDIR/config.json := the resolved config, atomically (a crash leaves the old file
  or the new one, never a cut one)."""
  path = os.path.join(workdir, "config.json")
  with open(path + ".tmp", "w") as f:
    f.write(config.to_json(indent=2))
    f.flush()
    os.fsync(f.fileno())
  os.replace(path + ".tmp", path)


def _tupled(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """JSON turned tuples into lists; configs hold tuples (hashable, as in configs/*.py)."""
  for k, v in cfg.items():
    if isinstance(v, ml_collections.ConfigDict):
      _tupled(v)
    elif isinstance(v, list):
      cfg[k] = tuple(v)
  return cfg


def check_resumable(workdir: str, config) -> None:
  """A workdir may only be resumed by the same config (run length and cadences may change)."""
  if not os.path.exists(os.path.join(workdir, "config.json")):
    return
  old = json.loads(read_config(workdir).to_json())
  differ = config_diff(old, json.loads(config.to_json()), RESUMABLE_CHANGES)
  if differ:
    old_f, new_f = {**ADDED_FIELDS, **flatten(old)}, flatten(json.loads(config.to_json()))
    detail = ", ".join(f"{k}: {old_f.get(k)!r} -> {new_f.get(k)!r}" for k in differ)
    raise UserError(f"workdir {workdir} holds a run of a different config; fields that "
                    f"differ: {detail}")


@dataclasses.dataclass(frozen=True)
class Setup:
  """The static parts of a run, all fixed by its config: data spec, models, layout."""
  config: Any
  spec: data.DataSpec
  models: tuple[tuple[int, int], ...]   # (width, seed), width-major
  layout: sweep.Layout
  param_counts: tuple[int, ...]         # unpadded parameters per model
  optimizer: Any
  mesh: Any = None                      # jax.sharding.Mesh, or None (one device, no placement)

  @property
  def widths_M(self) -> np.ndarray:
    return np.array([w for w, _ in self.models], np.int32)

  @property
  def seeds_M(self) -> np.ndarray:
    return np.array([s for _, s in self.models], np.int32)

  def init_state(self) -> list:
    """Freshly initialised train states (one per bucket, leading model axis)."""
    return sweep.init(self.layout, self.config.optim, self.optimizer, self.widths_M, self.seeds_M)

  def model_config(self, i: int) -> model_lib.ModelConfig:
    """The (padded) ModelConfig of the bucket holding model i."""
    return next(cfg for cfg, idx in self.layout.buckets if i in idx)


def mesh_config(config):
  """config.mesh, or a 1 x all-devices data mesh for configs written before it existed."""
  return config.get("mesh") or ml_collections.ConfigDict({"model": 1, "data": -1})


def make_setup(config, use_mesh: bool = True) -> Setup:
  """`use_mesh=False`: no device mesh (host tools reading a workdir on one device)."""
  validate(config)
  spec = data.data_spec(config.data)
  models = tuple(sweep_models(config))
  mesh = mesh_lib.make_mesh(mesh_config(config)) if use_mesh else None
  model_axis = mesh.shape["model"] if mesh is not None else 1
  layout = sweep.make_layout(config.model, spec.vocab_size, spec.context_length, models,
                             model_axis)
  counts = tuple(model_lib.param_count(layout.buckets[0][0], int(w)) for w, _ in models)
  optimizer = step_lib.make_optimizer(config.optim, max(config.train.num_steps, 1))
  return Setup(config, spec, models, layout, counts, optimizer, mesh)
