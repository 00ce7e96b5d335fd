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

from kcompress import mesh as mesh_lib, model as model_lib, step as step_lib


@dataclasses.dataclass(frozen=True)
class Layout:
  """Buckets of the sweep: each (ModelConfig padded to the bucket's max width, model indices).

  On a mesh whose model axis has k > 1 devices, each bucket's model axis is padded to a
  multiple of k with copies of its last model ("placed" states); their outputs are
  dropped. Checkpoints and host tools see the real models only.
  """
  buckets: tuple[tuple[model_lib.ModelConfig, tuple[int, ...]], ...]
  model_axis: int = 1

  @property
  def num_models(self) -> int:
    return sum(len(idx) for _, idx in self.buckets)

  def placed_size(self, b: int) -> int:
    n = len(self.buckets[b][1])
    return -(-n // self.model_axis) * self.model_axis


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


def make_layout(model_cfg, vocab_size: int, context_length: int, models,
                model_axis: int = 1) -> Layout:
  """`models`: (width, seed) pairs in sweep order (width-major)."""
  groups = split_widths([w for w, _ in models], int(model_cfg.buckets))
  buckets = []
  for group in groups:
    idx = tuple(i for i, (w, _) in enumerate(models) if w in group)
    cfg = model_lib.ModelConfig(vocab_size, context_length, max(group), model_cfg.depth,
                                model_cfg.head_dim, model_cfg.mlp_ratio)
    buckets.append((cfg, idx))
  return Layout(tuple(buckets), model_axis)


def init(layout: Layout, optim_cfg, optimizer, widths_M, seeds_M) -> list:
  """One TrainState per bucket, each with a leading model axis."""
  widths_M, seeds_M = np.asarray(widths_M), np.asarray(seeds_M)
  return [step_lib.init_sweep(cfg, optim_cfg, optimizer, widths_M[list(idx)], seeds_M[list(idx)])
          for cfg, idx in layout.buckets]


def place(layout: Layout, states: list, mesh=None) -> list:
  """Real per-bucket states -> placed: padded to `placed_size` (copies of the last model)
  and, on a mesh, global arrays sharded over its model axis."""
  out = []
  for b, state in enumerate(states):
    n, size = len(layout.buckets[b][1]), layout.placed_size(b)
    state = jax.device_get(state)
    if size > n:
      state = jax.tree.map(lambda x: np.concatenate([x, np.repeat(x[-1:], size - n, 0)]), state)
    out.append(mesh_lib.put(state, mesh_lib.models_sharding(mesh)) if mesh is not None else state)
  return out


def _real_rows(layout: Layout, per_bucket: list) -> list:
  """Per-bucket trees with placed model axes -> the same trees cut to the real models."""
  return [jax.tree.map(lambda x, n=len(idx): x[:n], t)
          for t, (_, idx) in zip(per_bucket, layout.buckets)]


def unplace(layout: Layout, states: list, mesh=None) -> list:
  """Placed states -> the real models' rows (replicated on a mesh): what checkpoints hold."""
  if mesh is None:
    return _real_rows(layout, states)
  return jax.jit(lambda s: _real_rows(layout, s), out_shardings=mesh_lib.replicated(mesh))(states)


def _concat_real(layout: Layout, outs: list):
  """Per-bucket outputs with placed model axes -> one leading axis over the real models."""
  return jax.tree.map(lambda *x: jnp.concatenate(x), *_real_rows(layout, outs))


def make_step(layout: Layout, optimizer, optim_cfg, num_steps: int, mesh=None):
  """jit of `(states, batch) -> (states, metrics)`; metrics have a leading axis over ALL
  (real) models. On a mesh: states sharded over `model`, the batch over `data` (a
  replicated batch is sliced in place), metrics replicated."""
  schedule = step_lib.lr_schedule(optim_cfg, num_steps)

  def sweep_step(states, batch):
    if mesh is not None:
      batch = jax.lax.with_sharding_constraint(batch, mesh_lib.rows_sharding(mesh))
    new_states, metrics = [], []
    for (cfg, _), state in zip(layout.buckets, states):
      one = lambda s, b, cfg=cfg: step_lib.train_step(cfg, optimizer, schedule, s, b)
      s, m = jax.vmap(one, in_axes=(0, None))(state, batch)
      new_states.append(s)
      metrics.append(m)
    return new_states, _concat_real(layout, metrics)

  if mesh is None:
    return jax.jit(sweep_step, donate_argnums=0)
  shard = [mesh_lib.models_sharding(mesh)] * len(layout.buckets)
  return jax.jit(sweep_step, donate_argnums=0,
                 out_shardings=(shard, mesh_lib.replicated(mesh)))


def make_probe_step(layout: Layout, spec, confident: float, mesh=None):
  """jit of `(states, probe arrays) -> outputs` with a leading axis over ALL (real) models."""
  from kcompress import probes as probes_lib

  def probe_step(states, probe_set):
    outs = []
    for (cfg, _), state in zip(layout.buckets, states):
      one = lambda params, width, cfg=cfg: probes_lib.probe_stats(
          probes_lib.probe_logits(params, cfg, width, probe_set), probe_set, spec, confident)
      outs.append(jax.vmap(one)(state.params, state.width))
    return _concat_real(layout, outs)

  if mesh is None:
    return jax.jit(probe_step)
  return jax.jit(probe_step, out_shardings=mesh_lib.replicated(mesh))
