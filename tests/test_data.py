"""The Syntax-Knowledge generator and its exact Bayes code (SPEC sections 2-3)."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats as sps

from configs.sweep import get_config
from kcompress import compressors, theory
from kcompress import data
from kcompress.data import pycrp, roles, source, stats, text
from kcompress.data.spec import END


def _spec(**overrides):
  cfg = get_config().data
  for k, v in overrides.items():
    cfg[k] = v
  return data.data_spec(cfg)


@pytest.fixture(scope="module")
def small_stream():
  spec = _spec(num_templates=5, min_fillers=1, max_fillers=3, synonyms_per_slot=3)
  return spec, data.generate_stream(spec, seed=3, num_sentences=3000)


# ----------------------------------------------------------------- the sampler


@source.x64
def test_pycrp_predictive_matches_spec():
  """From a fixed state, the next draw's law is (n_k - alpha)/(i+beta) and (beta+alpha K)/(i+beta)."""
  alpha, beta, n0, draws = 0.5, 2.0, 60, 40_000
  state = pycrp.crp_init(n0 + 1)
  state, entity_N, _ = pycrp.pycrp_draw(alpha, beta, n0 + 1, jax.random.PRNGKey(0), state, n0)
  counts = np.bincount(np.asarray(entity_N))
  num_entities = len(counts)
  # The next draw (index n0) under many independent keys, the state held fixed.
  keys = jax.random.split(jax.random.PRNGKey(1), draws)
  nxt = jax.vmap(lambda k: pycrp.pycrp_draw(alpha, beta, n0 + 1, k, state, 1)[1][0])(keys)
  observed = np.bincount(np.asarray(nxt), minlength=num_entities + 1)
  expected_p = np.append(counts - alpha, beta + alpha * num_entities) / (n0 + beta)
  assert abs(expected_p.sum() - 1) < 1e-12
  # Pearson chi-square with K degrees of freedom; with a fixed seed the test is
  # deterministic, and p > 1e-3 is what a correct sampler passes 99.9% of the time.
  chi2 = np.sum((observed - draws * expected_p) ** 2 / (draws * expected_p))
  assert sps.chi2.sf(chi2, df=num_entities) > 1e-3
  # "New" alone: a binomial test on the new-entity count.
  new = observed[-1]
  p_new = expected_p[-1]
  z = (new - draws * p_new) / math.sqrt(draws * p_new * (1 - p_new))
  assert abs(z) < 4


HEAPS_BETA, HEAPS_N, HEAPS_SEEDS = 5.0, 50_000, 8


@functools.lru_cache(maxsize=None)
def _heaps_streams(alpha):
  """(world, state, sentences) of HEAPS_SEEDS streams of HEAPS_N sentences (host numpy)."""
  spec = _spec(alpha=alpha, beta=HEAPS_BETA, name_alphabet=64, name_length=4)
  return jax.device_get(data.generate_streams(spec, range(HEAPS_SEEDS), HEAPS_N)[:3])


@pytest.mark.parametrize("alpha", [0.3, 0.5, 0.7])
def test_heaps_law(alpha):
  """Mean K_n matches the exact E[K_n]; Heaps slopes center on alpha.

  Tolerances: K_n / n^alpha has a random limit, so seeds disagree; we use the spread
  across seeds (standard error of the mean, 4 se) around the exact prediction. The
  slope is compared with the local slope of the exact E[K_n] over the same decades
  (which differs from alpha by a known finite-n correction), within 4 se plus that
  correction's size.
  """
  beta, n, seeds = HEAPS_BETA, HEAPS_N, HEAPS_SEEDS
  sentences = _heaps_streams(alpha)[2]
  k_n = sentences.is_new_N.sum(-1)
  exact = theory.expected_num_entities(alpha, beta, n)
  se = k_n.std(ddof=1) / math.sqrt(seeds)
  assert abs(k_n.mean() - exact) < 4 * se + 1e-9
  slopes = np.array([stats.heaps_slope(sentences.is_new_N[s]) for s in range(seeds)])
  grid = np.geomspace(n / 100, n, 30)
  exact_slope = np.polyfit(np.log(grid), np.log(theory.expected_num_entities(alpha, beta, grid)), 1)[0]
  slope_se = slopes.std(ddof=1) / math.sqrt(seeds)
  assert abs(slopes.mean() - exact_slope) < 4 * slope_se + 0.01
  assert abs(slopes.mean() - alpha) < 4 * slope_se + abs(exact_slope - alpha) + 0.01
  # Zipf: ranked counts fall with rank (the fitted exponent is reported, not tuned).
  assert stats.zipf_slope(sentences.entity_N[0]) < 0


@pytest.mark.parametrize("alpha", [0.3, 0.5, 0.7])
def test_fact_singleton_fraction_tends_to_alpha(alpha):
  """Facts seen once among revealed facts: measured = exact finite-n expectation -> alpha.

  The expectation at n (`theory.expected_fact_singleton_fraction`, from Pitman's E[M_j,n]
  and multinomial thinning by each world's attribute probabilities) is a ratio of
  expectations; the mean ratio differs from it by O(1/K) with K ~ 10^3-10^4 revealed facts,
  so the tolerance is 4 standard errors of the mean over seeds plus 2/K. The limit is
  alpha (Sibuya thinning identity); the finite-n gap shrinks with n.
  """
  world, state, _ = _heaps_streams(alpha)
  A = state.fact_counts_ExA.shape[-1]
  measured, expected, revealed = [], [], []
  for s in range(HEAPS_SEEDS):
    g = stats.fact_singletons(state.fact_counts_ExA[s])
    pi = np.bincount(world.attribute_T[s], weights=world.theta_T[s], minlength=A)
    measured.append(g["singleton_fraction"]); revealed.append(g["revealed"])
    expected.append(theory.expected_fact_singleton_fraction(alpha, HEAPS_BETA, HEAPS_N, pi))
    assert g["occurrences"] == HEAPS_N   # one fact per sentence
  diff = np.array(measured) - np.array(expected)
  se = diff.std(ddof=1) / math.sqrt(HEAPS_SEEDS)
  assert abs(diff.mean()) < 4 * se + 2 / min(revealed)
  gaps = [theory.expected_fact_singleton_fraction(alpha, HEAPS_BETA, n, [0.1, 0.2, 0.3, 0.4])
          - alpha for n in (10**3, 10**4, 10**5, 10**6)]
  assert all(g > 0 for g in gaps) and np.all(np.diff(gaps) < 0) and gaps[-1] < 0.015


def test_expected_blocks_of_size_sum_rules():
  """sum_j E[M_j,n] = E[K_n] and sum_j j E[M_j,n] = n (Pitman's formula, checked exactly)."""
  for alpha, beta, n in [(0.5, 10.0, 2000), (0.3, 1.0, 500), (0.0, 3.0, 300)]:
    j = np.arange(1, n + 1)
    m = theory.expected_blocks_of_size(alpha, beta, n, j)
    assert m.sum() == pytest.approx(theory.expected_num_entities(alpha, beta, n), rel=1e-9)
    assert (j * m).sum() == pytest.approx(n, rel=1e-9)


def test_expected_num_entities_recursion():
  """Closed form equals the exact recursion, including beta <= 0."""
  for alpha, beta in [(0.5, 3.0), (0.3, -0.2), (0.0, 2.0)]:
    k = [0.0, 1.0]
    for i in range(1, 200):
      k.append(k[-1] * (1 + alpha / (i + beta)) + beta / (i + beta))
    got = theory.expected_num_entities(alpha, beta, np.arange(201))
    np.testing.assert_allclose(got, k, rtol=1e-9)


# ------------------------------------------------------------------ knowledge


def test_names_unique_and_facts_deterministic(small_stream):
  spec, s = small_stream
  world = s.world
  with jax.enable_x64(True):
    ids = jnp.arange(min(spec.name_space, 20_000), dtype=jnp.int32)
    codes = np.asarray(data.world.name_codes(spec, world, ids))
    assert len(np.unique(codes)) == len(codes)
    assert codes.min() >= 0 and codes.max() < spec.name_space
    a = jnp.arange(len(ids), dtype=jnp.int32) % spec.num_attributes
    v1 = np.asarray(data.world.fact_values(spec, world, ids, a))
    v2 = np.asarray(data.world.fact_values(spec, world, ids[::-1], a[::-1]))[::-1]
  np.testing.assert_array_equal(v1, v2)
  # Every occurrence of (entity, attribute) in the stream shows the same value.
  key = s.sentences.entity_N * spec.num_attributes + s.sentences.attribute_N
  for k in np.unique(key)[:200]:
    assert len(np.unique(s.sentences.value_N[key == k])) == 1


def test_zipf_base_measure_frequencies():
  """Facts drawn under a Zipf base measure follow H_a (binomial test on the top value)."""
  spec = _spec(value_base="zipf", value_zipf_exponent=1.2, values_per_attribute=16)
  world = source.x64(data.draw_world)(spec, jax.random.PRNGKey(0))
  n = 20_000
  with jax.enable_x64(True):
    v = np.asarray(data.world.fact_values(spec, world, jnp.arange(n, dtype=jnp.int32),
                                          jnp.zeros(n, jnp.int32)))
    p = np.exp2(np.asarray(data.world.value_log2_probs(spec)))
  freq = np.bincount(v, minlength=16) / n
  # 5 standard errors of a binomial proportion per value.
  assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / n))


def test_parse_recovers_sentence(small_stream):
  spec, s = small_stream
  codes = np.asarray(source.x64(data.world.name_codes)(spec, s.world, jnp.arange(
      int(s.state.crp.num_entities), dtype=jnp.int32)))
  entity_of_code = {int(c): k for k, c in enumerate(codes)}
  ends = np.cumsum(s.sentences.length_N)
  starts = ends - s.sentences.length_N
  for r in range(0, 3000, 7):
    toks = s.tokens.token[starts[r]:ends[r]]
    got = text.parse_sentence(spec, toks)
    assert got["template"] == s.sentences.template_N[r]
    used = s.sentences.synonym_NxF[r][s.sentences.synonym_NxF[r] >= 0]
    assert got["synonyms"] == used.tolist()
    assert entity_of_code[got["name_code"]] == s.sentences.entity_N[r]
    assert got["attribute"] == s.sentences.attribute_N[r]
    assert got["value"] == s.sentences.value_N[r]
    assert toks[-1] == END
  shown = text.decode_text(spec, s.tokens.token[:ends[2]])
  assert shown.count(".") == 3 and "-" in shown


# ---------------------------------------------------------------- Bayes code


def _direct_bayes_bits(spec, world, s):
  """Plain-Python -log2 P(s_i | s_<i), sentence by sentence, from the definitions."""
  a, b = spec.alpha, spec.beta
  T, S, gt, gs = spec.num_templates, spec.synonyms_per_slot, spec.gamma_template, spec.gamma_synonym
  log2_h = np.asarray(data.world.value_log2_probs(spec)) if spec.value_base == "zipf" else None
  n_k, c_t, c_tfu, revealed = {}, {}, {}, set()
  totals, parts = [], {"syntax": [], "entity": [], "name": [], "value": []}
  for i in range(len(s.entity_N)):
    k, t = int(s.entity_N[i]), int(s.template_N[i])
    K = len(n_k)
    if i == 0:
      ent = 0.0
    elif k not in n_k:
      ent = -math.log2((b + a * K) / (i + b))
    else:
      ent = -math.log2((n_k[k] - a) / (i + b))
    name = math.log2(spec.name_space - K) if k not in n_k else 0.0
    syn = -math.log2((c_t.get(t, 0) + gt) / (i + T * gt))
    for f, u in enumerate(s.synonym_NxF[i]):
      if u < 0:
        continue
      syn += -math.log2((c_tfu.get((t, f, int(u)), 0) + gs) / (c_t.get(t, 0) + S * gs))
      c_tfu[(t, f, int(u))] = c_tfu.get((t, f, int(u)), 0) + 1
    fact = (k, int(s.attribute_N[i]))
    if fact in revealed:
      val = 0.0
    else:
      val = math.log2(spec.values_per_attribute) if log2_h is None else -log2_h[int(s.value_N[i])]
    revealed.add(fact)
    n_k[k] = n_k.get(k, 0) + 1
    c_t[t] = c_t.get(t, 0) + 1
    for key, x in zip(("syntax", "entity", "name", "value"), (syn, ent, name, val)):
      parts[key].append(x)
    totals.append(syn + ent + name + val)
  return np.array(totals), {k: np.array(v) for k, v in parts.items()}


@pytest.mark.parametrize("value_base", ["uniform", "zipf"])
def test_bayes_code_equals_direct_computation(value_base):
  spec = _spec(value_base=value_base, num_templates=5, min_fillers=1, max_fillers=3,
               synonyms_per_slot=3, alpha=0.4, beta=1.5)
  s = data.generate_stream(spec, seed=11, num_sentences=600)
  with jax.enable_x64(True):
    direct, direct_parts = _direct_bayes_bits(spec, s.world, s.sentences)
  np.testing.assert_allclose(s.bits.total_N, direct, atol=1e-6, rtol=0)
  assert abs(s.bits.total_N.sum() - direct.sum()) < 1e-6 * len(direct)
  for key, value in s.bits.parts().items():
    np.testing.assert_allclose(value, direct_parts[key], atol=1e-6, rtol=0)
  parts_sum = sum(np.asarray(v) for v in s.bits.parts().values())
  np.testing.assert_allclose(parts_sum, s.bits.total_N, atol=1e-9)
  # Per-token placement: sums by sentence and by role reproduce the parts exactly.
  assert abs(s.tokens.bayes_bits.sum() - s.bits.total_N.sum()) < 1e-6
  by_role = {r: s.tokens.bayes_bits[s.tokens.role == r].sum() for r in range(roles.NUM_ROLES)}
  assert abs(by_role[roles.NAME] - (s.bits.entity_N.sum() + s.bits.name_N.sum())) < 1e-6
  assert abs(by_role[roles.SYNTAX] - s.bits.syntax_N.sum()) < 1e-6
  assert abs(by_role[roles.VALUE] - s.bits.value_N.sum()) < 1e-6
  assert by_role[roles.END] == 0
  # The first name token of each sentence carries exactly its entity-choice bits
  # (name_length >= 2), and the batch sums report them as the entity part.
  first = np.asarray(data.first_name_tokens(s.tokens.role))
  assert spec.name_length >= 2 and first.sum() == len(direct)
  np.testing.assert_allclose(s.tokens.bayes_bits[first], s.bits.entity_N, atol=1e-9, rtol=0)
  with jax.enable_x64(True):
    parts = np.asarray(source.bayes_bits_by_role(s.tokens))
  assert abs(parts[roles.ENTITY_PART] - s.bits.entity_N.sum()) < 1e-6
  np.testing.assert_allclose(parts[:roles.NUM_ROLES], [by_role[r] for r in range(roles.NUM_ROLES)],
                             atol=1e-6)


def test_bayes_below_classical_compressors():
  spec = data.data_spec(get_config().data)
  s = data.generate_stream(spec, seed=0, num_sentences=50_000)
  bayes = float(s.bits.total_N.sum())
  packed = compressors.compressed_bits(s.tokens.token, spec.vocab_size)
  assert set(packed) == {"gzip", "bz2", "xz", "zstd"}
  for name, bits in packed.items():
    assert bayes < bits, (name, bayes, bits)


# ------------------------------------------------------- chunks, seeds, batches


@source.x64
def test_chunked_generation_equals_one_shot():
  spec = _spec(num_templates=5, min_fillers=1, max_fillers=3)
  world = data.draw_world(spec, jax.random.PRNGKey(5))
  n = 900
  generate = jax.jit(data.generate_sentences, static_argnums=(0, 3))
  one_state, one = generate(spec, world, data.init_stream(spec, n), n)
  state = data.init_stream(spec, n)
  chunks = []
  for size in (1, 299, 600):
    state, chunk = generate(spec, world, state, size)
    chunks.append(chunk)
  joined = jax.tree.map(lambda *xs: jnp.concatenate(xs), *chunks)
  for a, b in zip(jax.tree.leaves((one, one_state)), jax.tree.leaves((joined, state))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  np.testing.assert_array_equal(data.bayes_code_bits(spec, world, one).total_N,
                                data.bayes_code_bits(spec, world, joined).total_N)


def test_vmap_over_seeds_equals_separate_calls():
  spec = _spec(num_templates=5)
  out = jax.device_get(data.generate_streams(spec, [4, 9], 400))
  for row, seed in enumerate([4, 9]):
    single = data.generate_stream(spec, seed, 400)
    np.testing.assert_array_equal(out[2].entity_N[row], single.sentences.entity_N)
    n_tok = int(single.sentences.length_N.sum())
    np.testing.assert_array_equal(out[4].token[row][:n_tok], single.tokens.token)
    # Same draws; the bits agree to float64 rounding (vmap may fuse differently).
    np.testing.assert_allclose(out[3].total_N[row], single.bits.total_N, rtol=1e-13)


def test_batches_cut_the_one_shot_stream():
  """Stream packing: consecutive training batches are the one-shot token stream cut into rows."""
  spec = _spec(context_length=16, packing="stream")
  batch_size, steps = 3, 7
  s = data.generate_stream(spec, seed=2, num_sentences=400)

  @source.x64
  def run():
    world = data.draw_world(spec, jax.random.PRNGKey(2))
    state = data.batch_init(spec, batch_size, steps)
    step = jax.jit(lambda st: data.next_batch(spec, world, st, batch_size))
    out = []
    for _ in range(steps):
      state, batch = step(state)
      out.append(jax.device_get(batch))
    return out

  batches = run()
  flat = np.concatenate([b.token.reshape(-1) for b in batches])
  np.testing.assert_array_equal(flat, s.tokens.token[:len(flat)])
  bits = np.concatenate([b.bayes_bits.reshape(-1) for b in batches])
  np.testing.assert_allclose(bits, s.tokens.bayes_bits[:len(flat)], atol=1e-9)
  roles_ = np.concatenate([b.role.reshape(-1) for b in batches])
  np.testing.assert_array_equal(roles_, s.tokens.role[:len(flat)])


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("field,value,match", [
    ("alpha", 1.0, "config.data.alpha"),
    ("alpha", -0.1, "config.data.alpha"),
    ("beta", -0.6, "config.data.beta"),
    ("name_alphabet", 0, "config.data.name_alphabet"),
    ("values_per_attribute", 0, "config.data.values_per_attribute"),
    ("synonyms_per_slot", 0, "config.data.synonyms_per_slot"),
    ("max_fillers", 1, "config.data.max_fillers"),
    ("num_templates", 2, "config.data.num_templates"),
    ("value_base", "normal", "config.data.value_base"),
    ("gamma_synonym", 0.0, "config.data.gamma_synonym"),
])
def test_bad_config_names_the_field(field, value, match):
  with pytest.raises(ValueError, match=match):
    _spec(**{field: value})


def test_name_space_too_small():
  spec = _spec(name_alphabet=4, name_length=2)
  with pytest.raises(ValueError, match="config.data.name_length"):
    data.check_name_space(spec, 100_000)


def test_finite_dataset_epochs():
  """Each epoch visits every row once (last R mod B dropped), reshuffled; Bayes bits in epoch 0 only."""
  spec = _spec(context_length=16)
  rows, _ = source.dataset_rows(spec, seed=1, num_sentences=120)
  num_rows, batch_size = rows.token.shape[0], 4
  per_epoch = num_rows // batch_size
  key = jax.random.PRNGKey(0)
  with jax.enable_x64(True):
    get = jax.jit(lambda step: source.dataset_batch(rows, key, step, batch_size))
    epochs = []
    for e in range(2):
      batches = [jax.device_get(get(jnp.int32(e * per_epoch + t))) for t in range(per_epoch)]
      epochs.append(batches)
  for e, batches in enumerate(epochs):
    # A row is named by its sentences (two rows may render the same tokens).
    seen = np.concatenate([b.sentence for b in batches])
    as_rows = {tuple(r) for r in seen}
    assert len(as_rows) == len(seen)                     # no row twice in an epoch
    assert as_rows <= {tuple(r) for r in rows.sentence}
    bayes = sum(float(b.bayes_bits.sum()) for b in batches)
    assert (bayes > 0) if e == 0 else (bayes == 0)
  first = np.concatenate([b.token for b in epochs[0]])
  second = np.concatenate([b.token for b in epochs[1]])
  assert not np.array_equal(first, second)
