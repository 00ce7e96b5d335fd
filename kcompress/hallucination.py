"""Hallucination as the bounds define it (SPEC sections 5-6; Kalai & Vempala 2024, Kalai,
Nachum, Vempala & Zhang 2025): the error rate of SAMPLED answers on the stream's own next
prompts, beside the Bayes predictor's, the missing mass of facts and the measured
miscalibration of the model.

At an eval, the next `num` sentences of the stream (drawn, not yet trained on: the
batch state's buffered sentences, then fresh draws from its generator state, which is
left unchanged) are each prompted with their own name and template prefix up to the
value slot (`probes.make_probes`). A prompt's kind says what the models have read
(`seen_counts`): NEXT_SEEN (the fact was stated before), NEXT_UNREVEALED (the entity
was seen, this fact never), NEXT_UNSEEN (a new entity). The Pitman-Yor stream is
exchangeable, so each next sentence is a draw from the predictive of the next one.

Per model (`sampled_summary`): the sampled error (a value drawn from the model's whole
next-token distribution is wrong: u >= p_model(true value) with u ~ U(0, 1) from a fixed
seed), overall and by kind; the greedy error (argmax wrong); the Bayes predictor's exact
sampled error (its predictive is 1 on a revealed fact's value, else H_a: error
1 - H_a(v), 0 on revealed facts; in expectation missing mass x (1 - sum_v H_a(v)^2));
delta = |p_model(A) - p_true(A)|, A the answers given probability > 1/V (Kalai et al.
2025; p_true(A) = [true value in A]; averaged over the prompts) and delta_binned =
1/2 sum_b |p_model(B_b) - p_true(B_b)| over CALIBRATION_BINS equal-width bins of answer
probability (Kalai & Vempala's Mis_b). Per eval (`missing_masses`): Good-Turing's N1/n
over fact occurrences and the exact Pitman-Yor missing mass given the counts
(`theory.fact_missing_mass`). The bound: error >= missing mass - delta (small terms aside).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from kcompress import probes as probes_lib, theory
from kcompress.data import stats as data_stats
from kcompress.data.price import parse_sentences
from kcompress.data.spec import DataSpec
from kcompress.data.stream import RawSentences, StreamState, draw_sentences
from kcompress.data.tokens import sentence_starts

NEXT_KINDS = (probes_lib.NEXT_SEEN, probes_lib.NEXT_UNREVEALED, probes_lib.NEXT_UNSEEN)


def attribute_probs(spec: DataSpec, world) -> np.ndarray:
  """pi_a = sum of the template probabilities theta_t over the templates of attribute a."""
  return np.bincount(np.asarray(world.attribute_T), weights=np.asarray(world.theta_T),
                     minlength=spec.num_attributes)


def _pick(first: RawSentences, count, rest: RawSentences, num: int) -> RawSentences:
  """The first `count` entries of `first`, then the entries of `rest`: `num` in all."""
  j = jnp.arange(num)
  size = first.entity_N.shape[0]

  def one(a, b):
    take = (j < count).reshape((-1,) + (1,) * (a.ndim - 1))
    return jnp.where(take, a[jnp.minimum(j, size - 1)], b[jnp.clip(j - count, 0, num - 1)])
  return jax.tree.map(one, first, rest)


def next_raw(spec: DataSpec, world, batch_state, num: int) -> RawSentences:
  """The stream's next `num` sentences after everything a `source.BatchState` served: its
  buffered sentences, then draws from its generator state (returned state discarded).
  Pure; jit with static spec, num."""
  buffer, fill = batch_state.buffer, batch_state.fill
  size = buffer.token.shape[0]
  start_S, valid_S = sentence_starts(buffer, jnp.arange(size) < fill,
                                     size // spec.min_sentence_length + 1)
  buffered = parse_sentences(spec, world, buffer, start_S, valid_S)
  return _pick(buffered, valid_S.sum(), draw_after(spec, world, batch_state.stream, num), num)


def draw_after(spec: DataSpec, world, stream: StreamState, num: int) -> RawSentences:
  """The `num` sentences a generator state would draw next (the state is left as it is)."""
  _, raw = draw_sentences(spec, world, stream.crp, stream.entity_counts_E.shape[0], num)
  return raw


def make_next_sentences(spec: DataSpec, world):
  """`fn(batch_state, num) -> RawSentences` (host numpy), jitted once per num."""
  from kcompress.data import source
  fn = jax.jit(lambda state, num: next_raw(spec, jax.tree.map(jnp.asarray, world), state, num),
               static_argnums=1)
  return source.x64(lambda state, num: jax.device_get(fn(state, num)))


def next_probes(spec: DataSpec, world, raw: RawSentences, seen: StreamState) -> probes_lib.ProbeSet:
  """One prompt per next sentence (its name, its template prefix, its value), of kind
  NEXT_SEEN / NEXT_UNREVEALED / NEXT_UNSEEN by what `seen` (the counts of the sentences
  trained on) holds; count = the entity's occurrences so far."""
  ent = np.asarray(raw.entity_N, np.int64)
  attr = np.asarray(raw.attribute_N, np.int64)
  counts = np.asarray(seen.entity_counts_E)
  facts = np.asarray(seen.fact_counts_ExA)
  inside = ent < len(counts)
  safe = np.minimum(ent, len(counts) - 1)
  count = np.where(inside, counts[safe], 0)
  fact = np.where(inside, facts[safe, attr], 0)
  kind = np.where(fact > 0, probes_lib.NEXT_SEEN,
                  np.where(count > 0, probes_lib.NEXT_UNREVEALED, probes_lib.NEXT_UNSEEN))
  return probes_lib.make_probes(spec, world, ent, attr, kind, count,
                                syntax=(np.asarray(raw.template_N), np.asarray(raw.synonym_NxF)))


def missing_masses(spec: DataSpec, world, seen: StreamState) -> dict[str, float]:
  """Good-Turing's N1/n of the facts read so far, and the exact Pitman-Yor missing mass
  given their counts (`theory.fact_missing_mass`)."""
  return {"missing_mass": data_stats.fact_singletons(seen.fact_counts_ExA)["missing_mass"],
          "missing_mass_py": theory.fact_missing_mass(
              spec.alpha, spec.beta, seen.entity_counts_E, seen.fact_counts_ExA,
              attribute_probs(spec, world))}


def kalai_delta(mass_above_P, p_true_P, num_values: int) -> float:
  """|p_model(A) - p_true(A)| averaged over prompts, A = answers with model probability
  > 1/V: the true answer is in A when the model gives it more than 1/V."""
  truth_in_a = np.asarray(p_true_P) > 1.0 / num_values
  return float(abs(np.mean(np.asarray(mass_above_P, np.float64) - truth_in_a)))


def binned_miscalibration(bin_mass_PxB, p_true_P) -> float:
  """1/2 sum_b |p_model(B_b) - p_true(B_b)|, B_b the answers whose model probability lies
  in bin b of CALIBRATION_BINS equal-width bins (the truth falls in its own bin)."""
  bins = probes_lib.CALIBRATION_BINS
  edges = np.linspace(0.0, 1.0, bins + 1)[1:-1]
  truth_bin = np.searchsorted(edges, np.asarray(p_true_P), side="right")
  p_true_B = np.bincount(truth_bin, minlength=bins) / len(truth_bin)
  return float(0.5 * np.abs(np.asarray(bin_mass_PxB, np.float64).mean(0) - p_true_B).sum())


def sampled_wrong(p_true_P, u_P) -> np.ndarray:
  """Whether an answer sampled with uniform draws u is wrong: u >= p(true value)."""
  return np.asarray(u_P) >= np.asarray(p_true_P)


def bayes_error_P(kind_P, prior_bits_P) -> np.ndarray:
  """The Bayes predictor's sampled error per prompt: 0 on a revealed fact (it answers the
  stated value), 1 - H_a(v) otherwise (it samples H_a)."""
  return np.where(np.asarray(kind_P) == probes_lib.NEXT_SEEN, 0.0,
                  1.0 - np.exp2(-np.asarray(prior_bits_P, np.float64)))


def sampled_summary(outputs: dict[str, np.ndarray], probes: probes_lib.ProbeSet, u_P,
                    spec: DataSpec) -> dict | None:
  """One model's `sampled` figures over the next-sentence prompts (module docstring);
  None without such prompts."""
  kind = probes.kind_P
  sel = np.isin(kind, NEXT_KINDS)
  if not sel.any():
    return None
  wrong = sampled_wrong(outputs["p_true"], u_P)

  def rate(mask):
    return float(wrong[mask].mean()) if mask.any() else None
  out = {"n": int(sel.sum()), "error": rate(sel),
         "greedy_error": float(1.0 - np.mean(outputs["correct"][sel])),
         "bayes_error": float(bayes_error_P(kind, outputs["prior_bits"])[sel].mean()),
         "delta": kalai_delta(outputs["mass_above"][sel], outputs["p_true"][sel],
                              spec.values_per_attribute),
         "delta_binned": binned_miscalibration(outputs["bin_mass_B"][sel],
                                               outputs["p_true"][sel])}
  for k, name in zip(NEXT_KINDS, ("seen", "unrevealed", "unseen")):
    out[f"error_{name}"] = rate(kind == k)
    out[f"n_{name}"] = int((kind == k).sum())
  return out
