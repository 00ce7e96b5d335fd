"""Layout of a sweep in one compiled step: buckets of widths, each a padded, masked vmap.

The sweep's models (widths x seeds, width-major) are split into buckets of
consecutive distinct widths. Inside a bucket every model is padded to the bucket's
widest width and masked (`kcompress.model`), and the bucket's train step is vmapped
over its models. All buckets run inside ONE jitted step on the same batch.

`config.model.buckets`: 1 = every width padded to the widest (fewest ops, most
padding); 0 = one bucket per distinct width (no padding); k = k buckets.
`python -m kcompress.bench sweep` measures the choices; see the README.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from kcompress import model as model_lib, step as step_lib


@dataclasses.dataclass(frozen=True)
class Layout:
  """Buckets of the sweep: each (ModelConfig padded to the bucket's max width, model indices)."""
  buckets: tuple[tuple[model_lib.ModelConfig, tuple[int, ...]], ...]

  @property
  def num_models(self) -> int:
    return sum(len(idx) for _, idx in self.buckets)


def split_widths(widths, num_buckets: int) -> list[list[int]]:
  """Distinct sorted widths cut into contiguous groups (0: one group per width).

  Groups are balanced by padded cost: each cut is placed where the running sum of
  width^2 (the matmul cost of a width) crosses an equal share.
  """
  distinct = sorted(set(int(w) for w in widths))
  if num_buckets <= 0 or num_buckets >= len(distinct):
    return [[w] for w in distinct]
  cost = np.cumsum(np.array(distinct, float) ** 2)
  cuts = np.searchsorted(cost, cost[-1] * np.arange(1, num_buckets) / num_buckets)
  groups, start = [], 0
  for c in list(cuts) + [len(distinct) - 1]:
    c = max(int(c), start)
    groups.append(distinct[start:c + 1])
    start = c + 1
    if start >= len(distinct):
      break
  return [g for g in groups if g]


def make_layout(model_cfg, vocab_size: int, context_length: int, models) -> Layout:
  """`models`: (width, seed) pairs in sweep order (width-major)."""
  groups = split_widths([w for w, _ in models], int(model_cfg.buckets))
  buckets = []
  for group in groups:
    idx = tuple(i for i, (w, _) in enumerate(models) if w in group)
    cfg = model_lib.ModelConfig(vocab_size, context_length, max(group), model_cfg.depth,
                                model_cfg.head_dim, model_cfg.mlp_ratio)
    buckets.append((cfg, idx))
  return Layout(tuple(buckets))


def init(layout: Layout, optim_cfg, optimizer, widths_M, seeds_M) -> list:
  """One TrainState per bucket, each with a leading model axis."""
  widths_M, seeds_M = np.asarray(widths_M), np.asarray(seeds_M)
  return [step_lib.init_sweep(cfg, optim_cfg, optimizer, widths_M[list(idx)], seeds_M[list(idx)])
          for cfg, idx in layout.buckets]


def make_step(layout: Layout, optimizer, optim_cfg, num_steps: int):
  """jit of `(states, batch) -> (states, metrics)`; metrics have a leading axis over ALL models."""
  schedule = step_lib.lr_schedule(optim_cfg, num_steps)

  def sweep_step(states, batch):
    new_states, metrics = [], []
    for (cfg, _), state in zip(layout.buckets, states):
      one = lambda s, b, cfg=cfg: step_lib.train_step(cfg, optimizer, schedule, s, b)
      s, m = jax.vmap(one, in_axes=(0, None))(state, batch)
      new_states.append(s)
      metrics.append(m)
    return new_states, jax.tree.map(lambda *x: jnp.concatenate(x), *metrics)

  return jax.jit(sweep_step, donate_argnums=0)


def make_probe_step(layout: Layout, spec, confident: float):
  """jit of `(states, probe arrays) -> outputs` with a leading axis over ALL models."""
  from kcompress import probes as probes_lib

  def probe_step(states, probe_set):
    outs = []
    for (cfg, _), state in zip(layout.buckets, states):
      one = lambda params, width, cfg=cfg: probes_lib.probe_stats(
          probes_lib.probe_logits(params, cfg, width, probe_set), probe_set, spec, confident)
      outs.append(jax.vmap(one)(state.params, state.width))
    return jax.tree.map(lambda *x: jnp.concatenate(x), *outs)

  return jax.jit(probe_step)
