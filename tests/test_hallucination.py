"""The sampled-error probes (kcompress.hallucination) on predictors whose answers we know.

A served stream of N sentences and the next M sentences of the same stream: the Bayes
predictor's Monte Carlo sampled error is its exact one, and that sits at the missing mass
x (1 - sum H^2); a model copying the Bayes predictive has delta ~ 0; a model answering one
value on every unseen fact has the delta the test works out. Then: the job's next sentences
are the stream's own next ones, after what the batches served.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.sweep import get_config
from kcompress import data, hallucination, pretrain, probes, setup as setup_lib, theory
from kcompress.data import source

N, M = 6000, 3000
# The next sentences are not independent (a new entity can recur among them), which
# inflates the binomial variance of their shares; for M / N = 0.5 we allow 1.5x the
# binomial standard error, at 4 of them (a false alarm below 1e-4 for a normal share).
DEPENDENCE = 1.5
SIGMAS = 4.0


@pytest.fixture(scope="module")
def served_and_next():
  cfg = get_config().data
  cfg.value_base = "zipf"    # 1 - sum H^2 < 1 - 1/V: the test tells the two apart
  spec = data.data_spec(cfg)
  world = jax.device_get(source.x64(data.draw_world)(spec, jax.random.PRNGKey(3)))

  @source.x64
  def draw():
    st, _ = jax.jit(data.generate_sentences, static_argnums=(0, 3))(
        spec, world, data.init_stream(spec, N + M), N)
    raw = jax.jit(hallucination.draw_after, static_argnums=(0, 3))(spec, world, st, M)
    return jax.device_get(st), jax.device_get(raw)

  st, raw = draw()
  return spec, world, st, hallucination.next_probes(spec, world, raw, st), raw


def _stats(spec, ps, logits_PxV):
  """probe_stats of a predictor whose value-slot logits are given (every position the same)."""
  L = ps.inputs_PxL.shape[1]
  full = jnp.broadcast_to(jnp.asarray(logits_PxV)[:, None], (len(ps.kind_P), L, spec.vocab_size))
  return jax.device_get(probes.probe_stats(full, ps, spec, 0.5))


def _answer_logits(spec, ps, unseen_log2p):
  """Logits putting probability 1 on a stated fact's value, and 2^unseen_log2p over the
  attribute's values otherwise (-inf elsewhere)."""
  V = spec.values_per_attribute
  lg = np.full((len(ps.kind_P), spec.vocab_size), -1e9, np.float32)
  for i, (a, k, v) in enumerate(zip(ps.attribute_P, ps.kind_P, ps.value_token_P)):
    if k == probes.NEXT_SEEN:
      lg[i, v] = 0.0
    else:
      lg[i, spec.val0 + a * V: spec.val0 + (a + 1) * V] = unseen_log2p * np.log(2.0)
  return lg


def test_next_prompts_are_split_by_what_was_read(served_and_next):
  """Each next sentence is prompted with its own name and syntax, asks for its own value,
  and is seen / unrevealed / unseen by the served counts."""
  spec, world, st, ps, raw = served_and_next
  counts, facts = np.asarray(st.entity_counts_E), np.asarray(st.fact_counts_ExA)
  e, a = np.asarray(raw.entity_N), np.asarray(raw.attribute_N)
  n_e = np.where(e < len(counts), counts[np.minimum(e, len(counts) - 1)], 0)
  stated = (n_e > 0) & (facts[np.minimum(e, len(counts) - 1), a] > 0)
  want = np.where(stated, probes.NEXT_SEEN,
                  np.where(n_e > 0, probes.NEXT_UNREVEALED, probes.NEXT_UNSEEN))
  np.testing.assert_array_equal(ps.kind_P, want)
  np.testing.assert_array_equal(ps.value_token_P, spec.val0 + a * spec.values_per_attribute
                                + np.asarray(raw.value_N))
  # The prompt is the sentence's own prefix: name, then its fillers up to the value slot.
  with jax.enable_x64(True):
    names = np.asarray(data.world.name_tokens(spec, data.world.name_codes(
        spec, world, jnp.asarray(e, jnp.int32))))
  L = spec.name_length
  np.testing.assert_array_equal(ps.inputs_PxL[:, 1:1 + L], names)
  pos = np.asarray(world.value_pos_T)[np.asarray(raw.template_N)]
  np.testing.assert_array_equal(ps.read_at_P, L + pos)


def test_bayes_sampled_error_is_exact_and_the_missing_mass(served_and_next):
  spec, world, st, ps, _ = served_and_next
  log_h = data.world.value_log2_probs(spec)
  out = _stats(spec, ps, _answer_logits(spec, ps, log_h))
  u = np.random.default_rng(0).random(len(ps.kind_P))
  s = hallucination.sampled_summary(out, ps, u, spec)
  # Monte Carlo vs exact: given the prompts, the sampled errors are independent Bernoulli
  # draws with p_i = the Bayes error of prompt i.
  p_i = hallucination.bayes_error_P(ps.kind_P, out["prior_bits"])
  assert s["bayes_error"] == pytest.approx(p_i.mean())
  sd = np.sqrt(np.sum(p_i * (1 - p_i))) / M
  assert abs(s["error"] - s["bayes_error"]) <= SIGMAS * sd, (s, sd)
  assert s["error_seen"] == 0.0
  # The exact error vs missing mass x (1 - sum H^2): each next sentence states an unseen
  # fact with probability the missing mass (exchangeability), whose value v ~ H_a is
  # missed with probability 1 - H_a(v).
  masses = hallucination.missing_masses(spec, world, st)
  h = np.exp2(log_h)
  mm = masses["missing_mass_py"]
  predicted = mm * (1 - np.sum(h ** 2))
  sd = DEPENDENCE * np.sqrt(mm * (1 - mm) / M)
  assert abs(s["bayes_error"] - predicted) <= SIGMAS * sd, (s["bayes_error"], predicted, sd)
  # Good-Turing's N1/n estimates that missing mass: within its own spread, sqrt(N1) / n.
  n1 = np.sum(np.asarray(st.fact_counts_ExA) == 1)
  assert abs(masses["missing_mass"] - mm) <= SIGMAS * np.sqrt(n1) / N, masses
  # The Bayes predictive is calibrated: delta ~ 0 (|mean of mass_above - [truth in A]|,
  # whose terms are bounded by 1: the standard error is at most their sd / sqrt(M)).
  gap = out["mass_above"] - (out["p_true"] > 1.0 / spec.values_per_attribute)
  assert s["delta"] <= SIGMAS * np.std(gap) / np.sqrt(M) + 1e-6, s
  assert s["delta_binned"] <= 0.05, s   # ten bins, each within a few standard errors


def test_one_value_on_unseen_facts_has_the_stated_delta(served_and_next):
  """Answering value 0 with probability 1 on every unseen fact (and the truth on stated
  ones): p_model(A) = 1 on every prompt; the truth is in A on stated facts and where the
  unseen fact's value is 0. So delta = #{unseen prompts with v != 0} / M, about
  missing mass x (1 - H(0))."""
  spec, world, st, ps, _ = served_and_next
  V = spec.values_per_attribute
  lg = _answer_logits(spec, ps, np.where(np.arange(V) == 0, 0.0, -1e9))
  out = _stats(spec, ps, lg)
  s = hallucination.sampled_summary(out, ps, np.zeros(len(ps.kind_P)), spec)
  unseen = ps.kind_P != probes.NEXT_SEEN
  value = (ps.value_token_P - spec.val0) % V
  assert s["delta"] == pytest.approx(np.sum(unseen & (value != 0)) / M, abs=1e-6)
  mm = hallucination.missing_masses(spec, world, st)["missing_mass_py"]
  h0 = np.exp2(data.world.value_log2_probs(spec))[0]
  assert s["delta"] == pytest.approx(mm * (1 - h0), abs=SIGMAS * DEPENDENCE * np.sqrt(mm / M))
  # Its sampled error on unseen facts is 1 - [v = 0]: u = 0 samples the answer given.
  assert s["error_unrevealed"] == pytest.approx(
      np.mean(value[ps.kind_P == probes.NEXT_UNREVEALED] != 0))


def test_expected_missing_mass_is_the_mean_over_streams():
  """theory.expected_fact_missing_mass = E[fact_missing_mass(counts)] over streams: the
  mean over 8 independent streams, within 4 standard errors of that mean."""
  cfg = get_config("tiny").data
  spec = data.data_spec(cfg)
  n = 1500
  world, state, *_ = jax.device_get(data.generate_streams(spec, list(range(8)), n))
  got, want = [], []
  for s in range(8):
    w = jax.tree.map(lambda x: x[s], world)
    st = jax.tree.map(lambda x: x[s], state)
    pi = hallucination.attribute_probs(spec, w)
    got.append(theory.fact_missing_mass(spec.alpha, spec.beta, st.entity_counts_E,
                                        st.fact_counts_ExA, pi))
    want.append(theory.expected_fact_missing_mass(spec.alpha, spec.beta, n, pi))
  diff = np.array(got) - np.array(want)
  assert abs(diff.mean()) <= SIGMAS * diff.std(ddof=1) / np.sqrt(8), (got, want)
  assert theory.expected_fact_missing_mass(0.5, 5.0, 0, [1.0]) == 1.0


def test_job_next_sentences_are_the_streams_next(tmp_path):
  """After some batches, the pretraining job's next sentences are the one-shot stream's
  sentences right after the ones served (its buffered sentences first, then new draws)."""
  cfg = get_config("tiny")
  setup = setup_lib.make_setup(cfg)
  job = pretrain.job(cfg, setup)
  state = job.pipe.init
  for _ in range(3):
    state, _, _ = job.pipe.step(state)
  seen = job.seen_counts(state, 3)
  raw = job.next_sentences(state, 40)
  served = int(seen.crp.index)
  stream = data.generate_stream(setup.spec, cfg.seed, served + 40)
  s = stream.sentences
  for field in ("entity_N", "attribute_N", "value_N", "template_N", "synonym_NxF"):
    np.testing.assert_array_equal(np.asarray(getattr(raw, field)),
                                  np.asarray(getattr(s, field))[served:served + 40], field)
