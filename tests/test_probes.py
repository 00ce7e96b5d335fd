"""Probes are right on known predictors, and the probe set asks what it claims to ask;
stored knowledge is an aggregate lower bound."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.sweep import get_config
from kcompress import data, probes
from kcompress.data import source


@pytest.fixture(scope="module")
def probe_set():
  cfg = get_config().data
  cfg.value_base = "zipf"
  spec = data.data_spec(cfg)
  world = source.x64(data.draw_world)(spec, jax.random.PRNGKey(0))

  @source.x64
  def stream_state():
    st, _ = jax.jit(data.generate_sentences, static_argnums=(0, 3))(
        spec, world, data.init_stream(spec, 3000), 3000)
    return jax.device_get(st)

  state = stream_state()
  return spec, world, state, probes.build_probes(spec, world, state, 0, 16, 6, 32)


def _stats(logits_PxV, ps, spec, confident):
  """probe_stats of a predictor with the same logits at every prompt position."""
  L = ps.inputs_PxL.shape[1]
  logits = jnp.broadcast_to(jnp.asarray(logits_PxV)[:, None], (len(ps.kind_P), L, spec.vocab_size))
  return jax.device_get(probes.probe_stats(logits, ps, spec, confident))


def test_probe_set_targets(probe_set):
  spec, world, state, ps = probe_set
  know = ps.kind_P == probes.KNOWLEDGE
  assert know.sum() > 0 and (ps.kind_P == probes.FRESH).sum() == 32
  assert (ps.kind_P == probes.UNREVEALED).sum() > 0
  counts = np.asarray(state.entity_counts_E)
  # Knowledge probes ask about seen entities, in the right bin; fresh ones about unseen names.
  assert np.all(ps.count_P[know] >= 1)
  assert np.all(ps.bin_P[know] == np.floor(np.log2(ps.count_P[know])))
  # Every prompt is BOS + name + the value slot's template prefix; the value token is of
  # the probed attribute.
  assert np.all(ps.inputs_PxL[:, 0] == 0)
  a = (ps.value_token_P - spec.val0) // spec.values_per_attribute
  assert np.all(a[ps.kind_P >= 0] == ps.attribute_P[ps.kind_P >= 0])
  del counts


def test_true_value_predictor_gets_accuracy_one(probe_set):
  spec, _, _, ps = probe_set
  logits = jax.nn.one_hot(ps.value_token_P, spec.vocab_size) * 50.0
  out = _stats(logits, ps, spec, 0.5)
  s = probes.summarise(out, ps, 6, spec)
  assert s["knowledge"] and all(v["accuracy"] == 1.0 for v in s["knowledge"].values())
  assert all(v["bits"] < 1e-6 for v in s["knowledge"].values())


def _base_measure_logits(spec, ps):
  """Logits of the predictor that answers H_a over the probed attribute's values."""
  V = spec.values_per_attribute
  log_h = data.world.value_log2_probs(spec)
  logits = np.full((len(ps.kind_P), spec.vocab_size), -1e9, np.float32)
  for i, a in enumerate(ps.attribute_P):
    logits[i, spec.val0 + a * V: spec.val0 + (a + 1) * V] = log_h * np.log(2.0)
  return jnp.asarray(logits)


def test_base_measure_predictor_gets_bayes_hallucination(probe_set):
  spec, _, _, ps = probe_set
  out = _stats(_base_measure_logits(spec, ps), ps, spec, 0.1)
  s = probes.summarise(out, ps, 6, spec)
  bayes = probes.bayes_hallucination(spec, 0.1)
  for kind in ("fresh", "unrevealed"):
    for key in ("top1", "entropy", "kl", "confident"):
      assert abs(s["hallucination"][kind][key] - bayes[key]) < 1e-5, (kind, key)
  assert bayes["kl"] == 0.0 and bayes["confident"] == 1.0  # Zipf top value > 0.1


def test_knowledge_probe_weights_cover_every_revealed_fact(probe_set):
  """Weights of each bin sum to its revealed facts; the open last bin leaves none out."""
  spec, _, state, ps = probe_set
  know = ps.kind_P == probes.KNOWLEDGE
  assert np.all(ps.weight_P[know] > 0) and np.all(ps.weight_P[~know] == 0)
  revealed = np.asarray(state.revealed_ExA).sum()
  assert ps.weight_P.sum() == pytest.approx(revealed, rel=1e-9)
  counts = np.asarray(state.entity_counts_E)
  facts_K = np.asarray(state.revealed_ExA).sum(-1)
  last = counts >= 2 ** 5   # bins 0-4 closed, bin 5 = '32+'
  sel = know & (ps.count_P >= 2 ** 5)
  assert ps.weight_P[sel].sum() == pytest.approx(facts_K[last].sum(), rel=1e-9)
  s = probes.summarise({k: np.zeros(len(ps.kind_P)) for k in
                        ("correct", "bits", "prior_bits", "stored", "top1", "entropy", "kl",
                         "confident", "name_bits")}, ps, 6, spec)
  assert "32+" in s["knowledge"] and s["capacity"]["facts"] == pytest.approx(revealed)


def test_capacity_zero_for_base_measure_and_full_for_truth(probe_set):
  """Stored bits: 0 for the H_a predictor, the facts' whole entropy for the truth predictor."""
  spec, _, state, ps = probe_set
  log_h = data.world.value_log2_probs(spec)
  out = _stats(_base_measure_logits(spec, ps), ps, spec, 0.5)
  cap = probes.summarise(out, ps, 6, spec)["capacity"]
  assert cap["stored_bits"] == pytest.approx(0.0, abs=1e-3 * cap["facts"])
  assert cap["fact_entropy_bits"] > 0
  truth = jax.nn.one_hot(ps.value_token_P, spec.vocab_size) * 50.0
  out = _stats(truth, ps, spec, 0.5)
  cap = probes.summarise(out, ps, 6, spec)["capacity"]
  assert cap["stored_bits"] == pytest.approx(cap["fact_entropy_bits"], rel=1e-5)
  # The estimate of the facts' entropy is sum_i w_i (-log2 H_a(v_i)): between the facts
  # times the cheapest and the dearest value's code length.
  assert -log_h.max() * cap["facts"] <= cap["fact_entropy_bits"] <= -log_h.min() * cap["facts"]


def test_capacity_uniform_base_is_log2_v_per_fact():
  """With uniform H_a, a truth predictor stores exactly log2 V_a bits per revealed fact."""
  cfg = get_config().data
  spec = data.data_spec(cfg)
  assert spec.value_base == "uniform"
  world = source.x64(data.draw_world)(spec, jax.random.PRNGKey(1))
  st, _ = source.x64(jax.jit(data.generate_sentences, static_argnums=(0, 3)))(
      spec, world, data.init_stream(spec, 2000), 2000)
  st = jax.device_get(st)
  ps = probes.build_probes(spec, world, st, 0, 8, 4, 8)
  out = _stats(jax.nn.one_hot(ps.value_token_P, spec.vocab_size) * 50.0, ps, spec, 0.5)
  cap = probes.summarise(out, ps, 4, spec)["capacity"]
  revealed = int(np.asarray(st.revealed_ExA).sum())
  assert cap["facts"] == pytest.approx(revealed)
  assert cap["stored_bits"] == pytest.approx(revealed * np.log2(spec.values_per_attribute), rel=1e-5)


def test_stored_bits_are_clipped_only_in_aggregate():
  """Aggregate stored bits <= the per-fact clipped sum; equal when no fact is coded worse
  than its prior; below it when some are (they offset the others), and never below 0."""
  w = np.array([2.0, 1.0, 3.0])
  prior = np.array([6.0, 6.0, 6.0])
  better = np.array([1.0, 5.0, 6.0])            # every fact at or below its prior
  agg, clipped, _ = probes.aggregate_stored_bits(w, prior, better)
  assert agg == clipped == pytest.approx(2 * 5 + 1 * 1 + 0)
  mixed = np.array([1.0, 9.0, 7.0])             # two facts coded worse than the prior
  agg, clipped, se = probes.aggregate_stored_bits(w, prior, mixed)
  assert clipped == pytest.approx(10.0)
  assert agg == pytest.approx(10.0 - 3.0 - 3.0) and agg < clipped and se > 0
  agg, clipped, _ = probes.aggregate_stored_bits(w, prior, np.array([7.0, 9.0, 6.0]))
  assert agg == 0.0 and clipped == 0.0
  # The same rule in a probe row: a bin whose facts are coded worse than H_a on average
  # stores 0 in aggregate, while the per-fact clipped figure keeps the lucky ones.
  cfg = get_config().data
  spec = data.data_spec(cfg)
  world = source.x64(data.draw_world)(spec, jax.random.PRNGKey(1))
  st, _ = source.x64(jax.jit(data.generate_sentences, static_argnums=(0, 3)))(
      spec, world, data.init_stream(spec, 2000), 2000)
  ps = probes.build_probes(spec, world, jax.device_get(st), 0, 8, 4, 8)
  rng = np.random.default_rng(0)
  P = len(ps.kind_P)
  noisy = {"correct": np.zeros(P), "bits": 6.0 + rng.normal(0, 2, P), "prior_bits": np.full(P, 6.0),
           "top1": np.zeros(P), "entropy": np.zeros(P), "kl": np.zeros(P),
           "confident": np.zeros(P), "name_bits": np.zeros(P)}
  noisy["bits"] = np.abs(noisy["bits"]) + 0.5   # on average worse than the prior
  kn = probes.summarise(noisy, ps, 4, spec)["knowledge"]
  for b in kn.values():
    assert 0.0 <= b["stored_bits"] <= b["per_fact_clipped_bits"]
  assert any(b["stored_bits"] < b["per_fact_clipped_bits"] for b in kn.values())


def test_name_bits_stored_for_a_predictor_that_knows_the_names(probe_set):
  """Name bits: a predictor certain of every name token stores L log2 V_n per entity; one
  uniform over the name alphabet stores 0. The weights stand for every seen entity."""
  spec, _, state, ps = probe_set
  L, Vn = spec.name_length, spec.name_alphabet
  P, C = ps.inputs_PxL.shape
  nxt = np.concatenate([ps.inputs_PxL[:, 1:], np.zeros((P, 1), np.int32)], 1)   # next token
  sure = jax.nn.one_hot(nxt, spec.vocab_size) * 50.0                               # [P, C, vocab]
  out = jax.device_get(probes.probe_stats(sure, ps, spec, 0.5))
  cap = probes.summarise(out, ps, 6, spec)["capacity"]
  seen = int(np.sum(np.asarray(state.entity_counts_E) > 0))
  assert cap["entities"] == pytest.approx(seen)
  assert cap["name_stored_bits"] == pytest.approx(seen * L * np.log2(Vn), rel=1e-4)
  assert cap["name_entropy_bits"] == pytest.approx(seen * L * np.log2(Vn))
  uniform = np.full((P, C, spec.vocab_size), -1e9, np.float32)
  uniform[:, :, 2:2 + Vn] = 0.0                  # name tokens: NAME0 .. NAME0 + V_n
  out = jax.device_get(probes.probe_stats(jnp.asarray(uniform), ps, spec, 0.5))
  cap = probes.summarise(out, ps, 6, spec)["capacity"]
  assert cap["name_stored_bits"] == pytest.approx(0.0, abs=1e-3 * seen)
