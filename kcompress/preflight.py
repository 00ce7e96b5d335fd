"""Checks a run passes before it compiles or writes anything: will the sweep fit the device?

`check_memory(setup, batch_size)` refuses a sweep whose estimated device memory exceeds what
a device has, with one line (`needs ~X GiB per device, the device has Y`), before any array
is allocated (a sweep far too large otherwise blocks in allocation or compilation).

The estimate (`sweep_bytes_per_device`) counts, per bucket of the layout and per device:
the padded parameters, Adam's two moments and the gradients (4 float32 copies), and the
activations one step keeps for its backward pass (float32, every layer: ~10 D + 2 H values
per token plus heads x L attention probabilities, and the V logits twice). On the CPU it
is within ~30% of the arguments plus temporaries XLA's compiled step reports (0.8-1.1x
on :tiny and the default sweep; tests/test_faults.py checks a factor 2); with bfloat16
matmuls it overstates the activations. The device's memory: an accelerator's allocator
limit, or the host's physical memory divided among its CPU devices.
"""

from __future__ import annotations

import math
import os

import jax

from kcompress import model as model_lib, sweep
from kcompress.errors import UserError

GiB = 2.0 ** 30
FLOAT_BYTES = 4
STATE_COPIES = 4   # parameters, Adam's first and second moments, gradients


def activation_floats_per_token(cfg: model_lib.ModelConfig) -> int:
  """Float32 values one token keeps for the backward pass of one padded model."""
  D, H, heads = cfg.max_width, cfg.max_hidden, cfg.max_heads
  return cfg.depth * (10 * D + 2 * H + heads * cfg.context_length) + 2 * cfg.vocab_size


def sweep_bytes_per_device(layout: sweep.Layout, batch_size: int, data_axis: int = 1) -> float:
  """Estimated bytes one device holds during a train step of the sweep (module doc)."""
  total = 0.0
  for b, (cfg, idx) in enumerate(layout.buckets):
    models = len(idx) / layout.groups(b)
    rows = math.ceil(batch_size / layout.row_shards(b, data_axis))
    params = model_lib.param_count(cfg, cfg.max_width)
    total += models * FLOAT_BYTES * (STATE_COPIES * params
                                     + rows * cfg.context_length
                                     * activation_floats_per_token(cfg))
  return total


def device_bytes(device=None) -> float | None:
  """Memory of one device in bytes: an accelerator's allocator limit; on the CPU, the host's
  physical memory shared by its local CPU devices. None when unknown."""
  device = device or jax.local_devices()[0]
  if device.platform == "cpu":
    try:
      host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
      return None
    return host / max(len(jax.local_devices()), 1)
  try:
    stats = device.memory_stats() or {}
  except Exception:   # noqa: BLE001 - a backend without memory statistics
    return None
  limit = stats.get("bytes_limit")
  return float(limit) if limit else None


def check_memory(setup, batch_size: int) -> None:
  """UserError when the sweep's estimated memory per device exceeds the device's."""
  data_axis = setup.mesh.shape["data"] if setup.mesh is not None else 1
  need = sweep_bytes_per_device(setup.layout, batch_size, data_axis)
  have = device_bytes()
  if have is not None and need > have:
    widths = sorted({w for w, _ in setup.models})
    raise UserError(f"the sweep (widths {widths}, batch {batch_size}) needs ~{need / GiB:,.1f} "
                    f"GiB per device, the device has {have / GiB:,.1f} GiB; use smaller "
                    f"config.model.widths or config.train.batch_size, or more devices "
                    f"(config.mesh)")
