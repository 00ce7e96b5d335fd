"""Layout of a sweep in one compiled step: buckets of widths, each a padded, masked vmap.

The sweep's models (widths x seeds, width-major) are split into buckets of
consecutive distinct widths. Inside a bucket every model is padded to the bucket's
widest width and masked (`kcompress.model`), and the bucket's train step is vmapped
over its models. All buckets run inside ONE jitted step on the same batch.

`config.model.buckets`: 1 = every width padded to the widest (fewest ops, most
padding); 0 = one bucket per distinct width (no padding); k = k buckets.
`python -m kcompress.bench sweep` measures the choices; see the README.

Placement on a mesh (model axis k, data axis d). A bucket whose model count is a
multiple of k has its models sharded over the model axis (each device holds n / k of them)
and its batch rows over `data`; any other bucket is replicated over the model axis, and
the model axis joins `data` in splitting its batch rows (data parallel over all k x d
devices). Either way every device carries the same share of every bucket and the devices
together execute the sweep's FLOPs once, never a copy per model-axis device
(`device_flops`), in one compiled step over the one mesh. Rows that do not divide evenly
are padded with PAD rows (no loss, no token counted, no gradient). The bucket structure
never depends on the mesh, and checkpoints hold the real models only (`unplace`), so a
run resumes on any mesh or process count.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from kcompress import mesh as mesh_lib, model as model_lib, step as step_lib
from kcompress.data import roles


def model_groups(num_models: int, model_axis: int) -> int:
  """Devices of the model axis that split a bucket of `num_models` models: all of them
  when they divide the models evenly (no copies), else 1 (the bucket is replicated over
  the model axis, which splits its rows instead)."""
  return model_axis if num_models % model_axis == 0 else 1


@dataclasses.dataclass(frozen=True)
class Layout:
  """Buckets of the sweep: each (ModelConfig padded to the bucket's max width, model indices).

  On a mesh whose model axis has k > 1 devices, bucket b's models are sharded over it
  when `groups(b)` = k (k divides their number), else replicated over it (`groups(b)` = 1);
  its batch rows are split over the `row_shards(b, d)` devices the models leave.
  Checkpoints and host tools see the real models only.
  """
  buckets: tuple[tuple[model_lib.ModelConfig, tuple[int, ...]], ...]
  model_axis: int = 1

  @property
  def num_models(self) -> int:
    return sum(len(idx) for _, idx in self.buckets)

  def groups(self, b: int) -> int:
    """Model-axis devices that split bucket b's models: model_axis or 1."""
    return model_groups(len(self.buckets[b][1]), self.model_axis)

  def placed_size(self, b: int) -> int:
    """Models of bucket b as placed (no copies: its real models)."""
    return len(self.buckets[b][1])

  def row_shards(self, b: int, data_axis: int = 1) -> int:
    """Devices that split bucket b's batch rows: model_axis / groups(b) x data_axis."""
    return self.model_axis // self.groups(b) * data_axis


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
  """`models`: (width, seed) pairs in sweep order (width-major). `model_cfg.dtype` ("auto",
  "float32", "bfloat16"; absent: float32) is resolved for this process's devices."""
  dtype = model_lib.resolve_dtype(model_cfg.get("dtype", "float32"), jax.devices()[0].platform)
  groups = split_widths([w for w, _ in models], int(model_cfg.buckets))
  buckets = []
  for group in groups:
    idx = tuple(i for i, (w, _) in enumerate(models) if w in group)
    cfg = model_lib.ModelConfig(vocab_size=vocab_size, context_length=context_length,
                                max_width=max(group), depth=model_cfg.depth,
                                head_dim=model_cfg.head_dim, mlp_ratio=model_cfg.mlp_ratio,
                                dtype=dtype)
    buckets.append((cfg, idx))
  return Layout(tuple(buckets), int(model_axis))


def init(layout: Layout, optim_cfg, optimizer, widths_M, seeds_M) -> list:
  """One TrainState per bucket, each with a leading model axis."""
  widths_M, seeds_M = np.asarray(widths_M), np.asarray(seeds_M)
  return [step_lib.init_sweep(cfg, optim_cfg, optimizer, widths_M[list(idx)], seeds_M[list(idx)])
          for cfg, idx in layout.buckets]


def _check_mesh(layout: Layout, mesh) -> None:
  if mesh is not None and mesh.shape["model"] != layout.model_axis:
    raise ValueError(f"the layout was made for a model axis of {layout.model_axis} devices, "
                     f"the mesh has {mesh.shape['model']}")


def _models_sharding(layout: Layout, b: int, mesh):
  return mesh_lib.models_sharding(mesh, over_model=layout.groups(b) > 1)


def _rows_sharding(layout: Layout, b: int, mesh):
  return mesh_lib.rows_sharding(mesh, over_model=layout.groups(b) == 1)


def place(layout: Layout, states: list, mesh=None) -> list:
  """Real per-bucket states -> placed: on a mesh, global arrays with each bucket's models
  sharded over the model axis or replicated (`Layout.groups`)."""
  _check_mesh(layout, mesh)
  states = [jax.device_get(state) for state in states]   # a copy: the step donates its input
  if mesh is None:
    return states
  return [mesh_lib.put(state, _models_sharding(layout, b, mesh)) for b, state in enumerate(states)]


def _real_rows(layout: Layout, per_bucket: list) -> list:
  """Per-bucket trees with placed model axes -> the same trees cut to the real models."""
  return [jax.tree.map(lambda x, n=len(idx): x[:n], t)
          for t, (_, idx) in zip(per_bucket, layout.buckets)]


@functools.lru_cache(maxsize=16)
def _unplace_fn(layout: Layout, mesh):
  return jax.jit(lambda s: _real_rows(layout, s), out_shardings=mesh_lib.replicated(mesh))


def unplace(layout: Layout, states: list, mesh=None) -> list:
  """Placed states -> the real models' rows (replicated on a mesh): what checkpoints hold."""
  if mesh is None:
    return _real_rows(layout, states)
  return _unplace_fn(layout, mesh)(states)


def _concat_real(layout: Layout, outs: list):
  """Per-bucket outputs with placed model axes -> one leading axis over the real models."""
  return jax.tree.map(lambda *x: jnp.concatenate(x), *_real_rows(layout, outs))


def pad_rows(batch: dict, multiple: int) -> dict:
  """The batch with PAD rows appended up to a multiple of `multiple` rows: roles PAD (no
  loss, no token counted, no gradient), tokens 0."""
  rows = next(iter(batch.values())).shape[0]
  extra = -rows % multiple
  if not extra:
    return batch
  fill = lambda k, x: jnp.full((extra,) + x.shape[1:], roles.PAD if k == "roles_BxL" else 0,
                               x.dtype)
  return {k: jnp.concatenate([x, fill(k, x)]) for k, x in batch.items()}


def _after(x: jax.Array, done) -> jax.Array:
  """Integer array `x` unchanged, but made to depend on every leaf of `done` (the previous
  bucket's outputs): nothing that reads it starts before `done` is complete. An ordering
  XLA keeps (XLA:CPU runs thunks by data dependencies alone and drops optimization
  barriers): one element of each leaf is summed into t, and (t != t) & (t == t) is false
  for every t, NaN included, yet not folded away."""
  t = sum(jnp.ravel(leaf)[-1].astype(jnp.float32) for leaf in jax.tree.leaves(done))
  return x + ((t != t) & (t == t)).astype(x.dtype)


def _chain_default(mesh) -> bool:
  device = mesh.devices.flat[0] if mesh is not None else jax.devices()[0]
  return device.platform == "cpu"


def make_step(layout: Layout, optimizer, optim_cfg, num_steps: int, mesh=None,
              chain_buckets: bool | None = None):
  """jit of `(states, batch) -> (states, metrics)`; metrics have a leading axis over ALL
  (real) models. On a mesh: each bucket's states sharded over `model` or replicated, its
  batch rows over `data` or (`data`, `model`) (`Layout.groups`; a replicated or
  `data`-sharded batch is sliced in place, padded with PAD rows where the rows do not
  divide), metrics replicated.

  `chain_buckets` (default: on CPU) runs the buckets one after another: XLA:CPU otherwise
  runs independent buckets concurrently, each op of each already spread over all cores,
  and on a 2-core CPU that made the one-step sweep up to 2x slower than the same buckets
  jitted and run one after another (`python -m kcompress.bench sweep`; README).
  """
  _check_mesh(layout, mesh)
  schedule = step_lib.lr_schedule(optim_cfg, num_steps)
  if chain_buckets is None:
    chain_buckets = _chain_default(mesh)

  def sweep_step(states, batch):
    new_states, metrics = [], []
    for b, ((cfg, _), state) in enumerate(zip(layout.buckets, states)):
      rows = batch
      if chain_buckets and b:
        rows = dict(rows, inputs_BxL=_after(rows["inputs_BxL"], (new_states[-1], metrics[-1])))
      if mesh is not None:
        rows = pad_rows(rows, layout.row_shards(b, mesh.shape["data"]))
        rows = jax.lax.with_sharding_constraint(rows, _rows_sharding(layout, b, mesh))
      one = lambda s, x, cfg=cfg: step_lib.train_step(cfg, optimizer, schedule, s, x)
      s, m = jax.vmap(one, in_axes=(0, None))(state, rows)
      if mesh is not None:   # pinned here, so no bucket's sharding leaks into another's
        s, m = jax.lax.with_sharding_constraint((s, m), _models_sharding(layout, b, mesh))
      new_states.append(s)
      metrics.append(m)
    return new_states, _concat_real(layout, metrics)

  if mesh is None:
    return jax.jit(sweep_step, donate_argnums=0)
  shard = [_models_sharding(layout, b, mesh) for b in range(len(layout.buckets))]
  return jax.jit(sweep_step, donate_argnums=0, out_shardings=(shard, mesh_lib.replicated(mesh)))


def _pad_leading(tree, multiple: int):
  """Every leaf's leading axis padded to a multiple of `multiple` with copies of its last
  row (valid inputs whose outputs are cut off)."""
  def pad(x):
    x = jnp.asarray(x)
    extra = -x.shape[0] % multiple
    return jnp.concatenate([x, jnp.repeat(x[-1:], extra, 0)]) if extra else x
  return jax.tree.map(pad, tree)


def make_probe_step(layout: Layout, spec, confident: float, mesh=None,
                    chain_buckets: bool | None = None):
  """jit of `(states, probe arrays) -> outputs` with a leading axis over ALL (real) models.
  On a mesh each bucket's probes are split like its batch rows (`Layout.row_shards`);
  `chain_buckets` as in `make_step`."""
  from kcompress import probes as probes_lib
  _check_mesh(layout, mesh)
  if chain_buckets is None:
    chain_buckets = _chain_default(mesh)

  def probe_step(states, probe_set):
    num_probes = jax.tree.leaves(probe_set)[0].shape[0]
    outs = []
    for b, ((cfg, _), state) in enumerate(zip(layout.buckets, states)):
      ps = probe_set
      if chain_buckets and b:
        ps = ps._replace(inputs_PxL=_after(jnp.asarray(ps.inputs_PxL), outs[-1]))
      if mesh is not None:
        ps = _pad_leading(ps, layout.row_shards(b, mesh.shape["data"]))
        ps = jax.lax.with_sharding_constraint(ps, _rows_sharding(layout, b, mesh))
      one = lambda params, width, cfg=cfg, ps=ps: probes_lib.probe_stats(
          probes_lib.probe_logits(params, cfg, width, ps), ps, spec, confident)
      out = jax.tree.map(lambda x: x[:, :num_probes], jax.vmap(one)(state.params, state.width))
      if mesh is not None:
        out = jax.lax.with_sharding_constraint(out, _models_sharding(layout, b, mesh))
      outs.append(out)
    return _concat_real(layout, outs)

  if mesh is None:
    return jax.jit(probe_step)
  return jax.jit(probe_step, out_shardings=mesh_lib.replicated(mesh))


# ----------------------------------------------------------------------------- FLOPs


def model_flops(cfg: model_lib.ModelConfig, rows: int) -> float:
  """Training FLOPs of one padded model of the bucket `cfg` on `rows` full rows."""
  return model_lib.flops_per_token(cfg, cfg.max_width) * rows * cfg.context_length


def device_flops(layout: Layout, batch_size: int, data_axis: int = 1) -> np.ndarray:
  """FLOPs of one train step carried by each device of a (model_axis x data_axis) mesh,
  [model_axis, data_axis], padded models and PAD rows included (what executes).

  Every device holds placed_size / groups models of every bucket and 1 / row_shards of its
  (PAD-padded) rows; their sum over the devices is the sweep's FLOPs on one device
  (`executed_flops(layout, B)`) when the rows divide.
  """
  out = np.zeros((layout.model_axis, data_axis))
  for b, (cfg, _) in enumerate(layout.buckets):
    shards = layout.row_shards(b, data_axis)
    rows = -(-batch_size // shards)
    out += layout.placed_size(b) // layout.groups(b) * model_flops(cfg, rows)
  return out


def executed_flops(layout: Layout, batch_size: int) -> float:
  """FLOPs of one train step of the unplaced sweep on one device (padded widths)."""
  return float(sum(len(idx) * model_flops(cfg, batch_size) for cfg, idx in layout.buckets))


def placement(layout: Layout, data_axis: int = 1) -> list[dict]:
  """Per bucket: its widest width, real and placed models, model groups, row shards."""
  return [dict(max_width=cfg.max_width, models=len(idx), placed=layout.placed_size(b),
               groups=layout.groups(b), row_shards=layout.row_shards(b, data_axis))
          for b, (cfg, idx) in enumerate(layout.buckets)]
