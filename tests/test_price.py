"""Pricing what the models read (kcompress.data.price): the Bayes code in reading order."""

import jax
import jax.numpy as jnp
import numpy as np

from configs.sweep import get_config
from kcompress import data
from kcompress.data import price, source, stream as stream_lib


def _spec(**overrides):
  cfg = get_config().data
  for k, v in overrides.items():
    cfg[k] = v
  return data.data_spec(cfg)


@source.x64
def test_pricing_in_stream_order_is_the_generators_code_and_served_counts():
  """Priced in the order they are served, batches cost what the generator says; the served
  counts (generator state minus its buffer) are the counts of what was priced."""
  spec = _spec(context_length=24)
  B, steps = 3, 6
  world = data.draw_world(spec, jax.random.PRNGKey(2))
  state = data.batch_init(spec, B, steps)
  priced = stream_lib.init_stream(spec, source.batch_capacity(spec, B, steps))
  step = jax.jit(lambda s: data.next_batch(spec, world, s, B))
  price_rows = jax.jit(lambda p, rows: price.price_rows(spec, world, p, rows))
  served = jax.jit(lambda s: price.served_state(spec, world, s))
  ahead = 0
  for _ in range(steps):
    state, batch = step(state)
    priced, bits = price_rows(priced, batch)
    np.testing.assert_allclose(np.asarray(bits), np.asarray(batch.bayes_bits), atol=1e-9)
    counts = served(state)
    for field in ("entity_counts_E", "fact_counts_ExA", "template_counts_T",
                  "synonym_counts_TxFxS"):
      np.testing.assert_array_equal(getattr(counts, field), getattr(priced, field), field)
    assert int(counts.crp.index) == int(priced.crp.index)
    assert int(counts.crp.num_entities) == int(priced.crp.num_entities)
    ahead = max(ahead, int(state.stream.crp.index) - int(counts.crp.index))
  assert ahead > 0   # the generator did run ahead of what was served


def test_pricing_any_order_matches_the_vectorised_code():
  """Rows read in a shuffled order, priced batch by batch by the sequential scan, equal the
  vectorised Bayes code of the same sentence sequence (source.bayes_bits_in_order): two
  independent implementations of SPEC section 3."""
  spec = _spec(context_length=24)
  rows, stream = source.dataset_rows(spec, seed=3, num_sentences=300)   # as test_packing
  order = np.random.default_rng(0).permutation(rows.token.shape[0])[:36]
  want = source.bayes_bits_in_order(spec, stream, rows, order)[order]
  with jax.enable_x64(True):
    world = jax.tree.map(jnp.asarray, stream.world)
    priced = stream_lib.init_stream(spec, 300)
    price_rows = jax.jit(lambda p, r: price.price_rows(spec, world, p, r))
    got = []
    for b in range(0, len(order), 4):
      batch = jax.tree.map(lambda x: jnp.asarray(x[order[b:b + 4]]), rows)
      priced, bits = price_rows(priced, batch)
      got.append(np.asarray(bits))
  np.testing.assert_allclose(np.concatenate(got), want, rtol=1e-12, atol=1e-9)
  assert int(priced.crp.index) == len(np.unique(rows.sentence[order][rows.sentence[order] >= 0]))


def test_pricing_maps_entity_ids_through_entity_slot():
  """Fine-tuning prices injected entities (ids at the top of the name space) in slots after
  the stream's: relabelling entities to such ids and mapping them back through
  `entity_slot` gives the same bits as pricing the original ids."""
  spec = _spec(context_length=24)
  rows, stream = source.dataset_rows(spec, seed=3, num_sentences=300)   # as test_packing
  top = spec.name_space - 1
  moved = (rows.entity >= 0) & (rows.entity % 3 == 0)
  relabelled = rows._replace(entity=np.where(moved, top - rows.entity, rows.entity))
  with jax.enable_x64(True):
    world = jax.tree.map(jnp.asarray, stream.world)
    capacity = int(rows.entity.max()) + 1
    slot = lambda e: jnp.where(e > top // 2, top - e, e)
    price_rows = jax.jit(lambda p, r, mapped: price.price_rows(
        spec, world, p, r, slot if mapped else (lambda e: e)), static_argnums=2)
    batch = lambda r: jax.tree.map(lambda x: jnp.asarray(x[:12]), r)
    _, want = price_rows(stream_lib.init_stream(spec, capacity), batch(rows), False)
    _, got = price_rows(stream_lib.init_stream(spec, capacity), batch(relabelled), True)
  np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
  assert moved[:12].any() and np.asarray(want).sum() > 0
