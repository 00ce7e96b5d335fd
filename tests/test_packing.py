"""Sentence packing (SPEC section 2): rows of whole sentences, padding outside every sum."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.sweep import get_config
from kcompress import data, job, model as model_lib, step as step_lib
from kcompress.data import roles, source


def _spec(**overrides):
  cfg = get_config().data
  for k, v in overrides.items():
    cfg[k] = v
  return data.data_spec(cfg)


def _batches(spec, seed, batch_size, steps, rows_used=None):
  @source.x64
  def run():
    world = data.draw_world(spec, jax.random.PRNGKey(seed))
    state = data.batch_init(spec, batch_size, steps)
    step = jax.jit(lambda st, k: data.next_batch(spec, world, st, batch_size, k))
    out = []
    for t in range(steps):
      k = batch_size if rows_used is None else rows_used[t]
      state, batch = step(state, jnp.int32(k))
      out.append(jax.device_get(batch))
    return out
  return run()


def _greedy_rows(length_N, context):
  """Reference packing, written apart: (row, offset) of each sentence, greedily."""
  row, offset, out = 0, 0, []
  for length in length_N:
    if offset + length > context:
      row, offset = row + 1, 0
    out.append((row, offset))
    offset += length
  return out


def test_rows_are_whole_sentences_of_the_one_shot_stream():
  """Batches drawn step by step are the one-shot stream packed greedily: every row starts at
  a sentence start, no sentence is split, the tail is padding, the layout is the
  reference's; Bayes bits are those of the one-shot stream (chunked == one-shot)."""
  spec = _spec(context_length=20, min_fillers=1, max_fillers=5)
  batch_size, steps = 3, 9
  batches = _batches(spec, 2, batch_size, steps)
  s = data.generate_stream(spec, seed=2, num_sentences=600)
  rows = jax.tree.map(lambda *x: np.concatenate(x), *batches)   # Tokens [steps * B, C]
  length_N = np.asarray(s.sentences.length_N)
  start_N = np.cumsum(length_N) - length_N
  layout = _greedy_rows(length_N, spec.context_length)
  num_rows = steps * batch_size
  served = [i for i, (r, _) in enumerate(layout) if r < num_rows]
  assert len(served) > num_rows   # several sentences per row
  expect_token = np.full(rows.token.shape, -1)
  expect_bits = np.zeros(rows.token.shape)
  for i in served:
    r, o = layout[i]
    sl = slice(start_N[i], start_N[i] + length_N[i])
    expect_token[r, o:o + length_N[i]] = s.tokens.token[sl]
    expect_bits[r, o:o + length_N[i]] = s.tokens.bayes_bits[sl]
  pad = expect_token < 0
  np.testing.assert_array_equal(rows.token[~pad], expect_token[~pad])
  np.testing.assert_array_equal(rows.role[pad], roles.PAD)
  assert (rows.role[~pad] != roles.PAD).all()
  assert (rows.bayes_bits[pad] == 0).all() and (rows.sentence[pad] == -1).all()
  np.testing.assert_allclose(rows.bayes_bits, expect_bits, atol=1e-9)
  # Every row opens with a name and its real part ends with END; padding is a tail only.
  assert (rows.role[:, 0] == roles.NAME).all()
  for r in range(num_rows):
    real = np.flatnonzero(~pad[r])
    assert real[-1] == len(real) - 1 and rows.role[r, real[-1]] == roles.END
    # The next sentence really did not fit (greedy): padding < its length.
  nxt = served[-1] + 1
  assert layout[nxt][0] == num_rows


def test_batch_bayes_bits_are_its_whole_sentences_codes():
  spec = _spec(context_length=24)
  batches = _batches(spec, 5, 4, 6)
  s = data.generate_stream(spec, seed=5, num_sentences=500)
  total_N = np.asarray(s.bits.total_N)
  for b in batches:
    sentences = np.unique(b.sentence[b.sentence >= 0])
    # The sentences of a batch are consecutive and whole: every token of each is there.
    assert np.array_equal(sentences, np.arange(sentences[0], sentences[-1] + 1))
    np.testing.assert_array_equal(
        np.bincount(b.sentence[b.sentence >= 0] - sentences[0]),
        np.asarray(s.sentences.length_N)[sentences])
    np.testing.assert_allclose(np.asarray(source.x64(source.bayes_bits_by_role)(b))[:roles.NUM_ROLES].sum(),
                               total_N[sentences].sum(), rtol=1e-12)


def test_rows_used_serves_fewer_rows_and_keeps_the_stream_whole():
  """Fine-tuning replays fewer rows on some steps: the rows not used are padding and the
  stream continues with the next sentence (none drawn and dropped)."""
  spec = _spec(context_length=24)
  used = [4, 1, 0, 3, 2]
  batches = _batches(spec, 7, 4, len(used), rows_used=used)
  full = _batches(spec, 7, 4, 3)
  real = lambda bs: np.concatenate([b.sentence[b.sentence >= 0] for b in bs])
  for b, k in zip(batches, used):
    assert (b.role[k:] == roles.PAD).all() and (b.role[:k, 0] == roles.NAME).all()
  got = real(batches)
  np.testing.assert_array_equal(got, real(full)[:len(got)])


def test_padding_is_outside_loss_gradients_and_counts():
  """Changing what sits in the padding changes neither the loss, nor the gradients, nor the
  per-role sums; token counts are the stream tokens'."""
  spec = _spec(context_length=23)
  batch = _batches(spec, 3, 2, 1)[0]
  mb = jax.tree.map(np.asarray, job.model_batch(jax.tree.map(jnp.asarray, batch)))
  pad = mb["roles_BxL"] == roles.PAD
  assert pad.any()
  other = dict(mb, targets_BxL=np.where(pad, 7, mb["targets_BxL"]))
  cfg = model_lib.ModelConfig(spec.vocab_size, spec.context_length, 16, 1, 8, 4)
  params = model_lib.init_params(jax.random.PRNGKey(0), cfg, 16)

  def loss(p, b):
    bits = step_lib.token_bits(p, cfg, 16, b)
    return bits.sum() / step_lib.is_real(b["roles_BxL"]).sum(), bits

  (l1, bits1), g1 = jax.value_and_grad(loss, has_aux=True)(params, mb)
  (l2, _), g2 = jax.value_and_grad(loss, has_aux=True)(params, other)
  assert float(l1) == float(l2)
  jax.tree.map(np.testing.assert_array_equal, g1, g2)
  assert (np.asarray(bits1)[pad] == 0).all()
  role_bits, role_tokens = step_lib.bits_by_role(bits1, mb["roles_BxL"])
  assert float(role_tokens.sum()) == float((~pad).sum())
  assert float(role_bits.sum()) == pytest.approx(float(np.asarray(bits1).sum()), rel=1e-6)


def test_finite_dataset_epoch0_is_priced_in_reading_order():
  """Finite dataset: epoch 0's Bayes bits are the sequential code of the sentences in the
  order the rows are read. Their total equals the stream-order total (every part of the
  Bayes code is exchangeable) while the per-token bits differ."""
  spec = _spec(context_length=24)
  rows, stream = source.dataset_rows(spec, seed=1, num_sentences=300)
  assert (rows.role[:, 0] == roles.NAME).all()
  key = jax.random.PRNGKey(4)
  order = source.epoch_order(key, 0, rows.token.shape[0], 1)   # B = 1: every row read
  bits = source.bayes_bits_in_order(spec, stream, rows, order)
  total = float(np.asarray(stream.bits.total_N).sum())
  assert bits.sum() == pytest.approx(total, rel=1e-9)
  assert not np.allclose(bits, rows.bayes_bits)
  assert (bits[rows.role == roles.PAD] == 0).all()
  # The first row read opens the sequence: its first sentence costs what sentence 0 of a
  # stream costs for its template, synonyms, name and value (entity bits 0, it is new).
  first = order[0]
  n_first = int(np.sum(rows.sentence[first] == rows.sentence[first, 0]))
  # (the name bits sit on the last name token, the entity-choice bits on the first).
  assert bits[first, 0] == 0
  assert bits[first, spec.name_length - 1] == pytest.approx(np.log2(float(spec.name_space)),
                                                            rel=1e-12)
  assert bits[first, :n_first].sum() > 0


def test_sentence_longer_than_context_is_an_error():
  with pytest.raises(ValueError, match=r"config.data.context_length=8.*longest sentence has 9"):
    _spec(context_length=8, name_length=3, max_fillers=4)
  _spec(context_length=8, name_length=3, max_fillers=4, packing="stream")   # allowed
