"""Where a Gekhman design (`kcompress.gekhman`, `kcompress.design`) keeps its files, and
its arms' names: shared by the design runner and the analysis (no JAX here).

WORKDIR/config.json     the design's config (config.finetune.unknown_shares not empty)
WORKDIR/design.json     the examples, held-out facts and SliCK categories (written once)
WORKDIR/arm-<name>/     one fine-tuning run per arm: '0', '0.25', ..., '1', 'control'
"""

from __future__ import annotations

import os

CATEGORIES = ("HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown")   # SliCK codes 0..3
UNKNOWN = 3
CONTROL = "control"
DESIGN_FILE = "design.json"
ARM_PREFIX = "arm-"


def share_label(share: float) -> str:
  """0.25 -> '0.25', 1.0 -> '1', 0.0 -> '0'."""
  return f"{float(share):g}"


def arm_names(shares) -> list[str]:
  """The design's arms: one per Unknown share, then the control."""
  return [share_label(s) for s in shares] + [CONTROL]


def arm_dir(workdir: str, arm: str) -> str:
  return os.path.join(workdir, ARM_PREFIX + arm)


def is_design_workdir(workdir: str) -> bool:
  """A design's workdir: it holds design.json (its arms hold the runs)."""
  return os.path.exists(os.path.join(workdir, DESIGN_FILE))
