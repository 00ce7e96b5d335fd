"""The device mesh of a run: a `model` axis over the sweep's models, a `data` axis over rows.

`config.mesh.model` x `config.mesh.data` devices (-1: all the devices the other axis
leaves). Train states (leading model axis M) are sharded over `model`, batches (leading
row axis B) over `data`; the generator state, metrics and probe outputs are replicated,
so every process can read them. Everything on the device is a global `jax.Array`
(multi-process runs included): host values enter through `put`; what the host reads
back (metrics, probe outputs, checkpointed states) is replicated first.
On one device the mesh is 1x1 and nothing changes.

A bucket of the sweep (`kcompress.sweep`) whose models do not fill the model axis evenly
is replicated over it instead, and the model axis joins `data` in splitting the bucket's
batch rows (`rows_sharding(mesh, over_model=True)`): every sharding of a step lives on
this one mesh, no device computes a copy of another's work.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXES = ("model", "data")


def mesh_shape(mesh_cfg, num_devices: int) -> tuple[int, int]:
  """(model, data) sizes; a clear error if they do not tile the devices."""
  model, data = int(mesh_cfg.model), int(mesh_cfg.data)
  if model == -1 and data == -1:
    raise ValueError("config.mesh: at most one of model, data may be -1")
  if model == -1:
    model = num_devices // max(data, 1)
  if data == -1:
    data = num_devices // max(model, 1)
  if model < 1 or data < 1 or model * data != num_devices:
    raise ValueError(f"config.mesh.model={mesh_cfg.model} x config.mesh.data={mesh_cfg.data} "
                     f"does not tile the {num_devices} devices")
  return model, data


def make_mesh(mesh_cfg) -> Mesh:
  model, data = mesh_shape(mesh_cfg, jax.device_count())
  devices = np.asarray(jax.devices()).reshape(model, data)
  return Mesh(devices, AXES)


def models_sharding(mesh: Mesh, over_model: bool = True) -> NamedSharding:
  """Leading (model) axis over `model`, the rest replicated (`over_model=False`: all
  replicated)."""
  return NamedSharding(mesh, P("model") if over_model else P())


def rows_sharding(mesh: Mesh, over_model: bool = False) -> NamedSharding:
  """Leading (row) axis over `data` (`over_model=True`: over `data` x `model`, each data
  shard's rows split further over the model axis, so a batch sharded over `data` is sliced
  in place)."""
  return NamedSharding(mesh, P(("data", "model")) if over_model else P("data"))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def put(tree, sharding: NamedSharding):
  """Host (or process-local) values -> global arrays with `sharding`. Every process must
  pass the same values (they are computed deterministically on each)."""
  def one(x):
    x = np.asarray(jax.device_get(x))
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])
  return jax.tree.map(one, tree)
