"""Knowledge and hallucination probes (SPEC section 5), built from the generator's state.

A probe is a prompt = BOS + an entity's name + a template's prefix up to its value slot;
the model's next-token distribution is read at the value slot, and its code length of
the name tokens after BOS is read on the way (the same forward pass).

- knowledge: entities seen so far, binned by occurrences (bin b holds counts in
  [2^b, 2^(b+1)): 1, 2-3, 4-7, ...; the last bin is open, e.g. 512+), asked about a fact
  already revealed. Per bin: top-1 accuracy (argmax over the whole vocabulary), mean
  bits of the true value, and the knowledge stored in the model as an aggregate lower
  bound (Allen-Zhu & Li count it from the aggregate loss): facts,
  max(0, sum over the bin's revealed facts of (-log2 H_a(v) - model bits of v)), and names,
  max(0, sum over the bin's entities of (L log2 V_n - model bits of the name after BOS)),
  each sum a ratio estimate from the sampled probes (`weight_P`, `name_weight_P`),
  clipped at 0 only in aggregate (`aggregate_stored_bits`).
- injected (fine-tuning, `kcompress.finetune`): injected entities delivered at least
  once, asked about a fact revealed in what was delivered, binned by deliveries so far.
- hallucination: fresh entities (never seen; their names are new) and seen entities'
  never-revealed facts. The Bayes answer is H_a itself. Per kind: mean top-1
  probability, entropy and KL(model || H_a) of the model's distribution over the
  attribute's V values (renormalised), in bits, and the rate of top-1 probability
  above `config.probe.confident` (Zucchet et al. 2025's overconfidence on the unknown).
- next (`kcompress.hallucination`): the stream's own next, untrained sentences, each
  prompted with its own name and template prefix: the sampled error rate.
- held-out and fine-tuning-set facts (`kcompress.gekhman`): accuracy per kind.

Prompt syntax: each template prefix uses its slots' most probable synonyms, except the
next-sentence prompts (their own syntax) and SliCK's prompt variants.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from kcompress import model as model_lib
from kcompress.data.spec import BOS, DataSpec
from kcompress.data.stream import StreamState
from kcompress.data.world import World, fact_values, name_codes, name_tokens, value_log2_probs

(KNOWLEDGE, FRESH, UNREVEALED, INJECTED, NEXT_SEEN, NEXT_UNREVEALED, NEXT_UNSEEN, HELDOUT,
 SET_KNOWN, SET_UNKNOWN) = range(10)
KIND_NAMES = ("knowledge", "fresh", "unrevealed", "injected", "next_seen", "next_unrevealed",
              "next_unseen", "heldout", "set_known", "set_unknown")
CALIBRATION_BINS = 10    # equal-width bins of answer probability (Kalai & Vempala's Mis_b)
SAMPLE_TEMPERATURE = 0.5  # Gekhman et al.'s sampling temperature for SliCK


class ProbeSet(NamedTuple):
  """P prompts, left-aligned after BOS. Shapes [P, L] / [P]."""
  inputs_PxL: np.ndarray    # int32 [BOS, name, fillers..., pad]
  read_at_P: np.ndarray     # int32 position whose logits predict the value
  value_token_P: np.ndarray  # int32 true value token
  attribute_P: np.ndarray   # int32
  kind_P: np.ndarray        # int32 KNOWLEDGE / FRESH / ... (KIND_NAMES); -1 = padding
  bin_P: np.ndarray         # int32 occurrence bin (-1 for fresh)
  count_P: np.ndarray       # int32 occurrences so far (0 for fresh)
  weight_P: np.ndarray      # float64 revealed facts a knowledge probe stands for (else 0)
  name_weight_P: np.ndarray  # float64 entities a knowledge probe's name stands for (else 0)


def occurrence_bin(counts) -> np.ndarray:
  """floor(log2 n): 1 -> 0, 2-3 -> 1, 4-7 -> 2, ...; -1 for n = 0."""
  counts = np.asarray(counts)
  return np.where(counts > 0, np.floor(np.log2(np.maximum(counts, 1))), -1).astype(np.int32)


def bin_label(b: int, open_ended: bool = False) -> str:
  """'1', '2-3', '4-7', ...; '512+' for an open last bin."""
  lo, hi = 2 ** b, 2 ** (b + 1) - 1
  if open_ended:
    return f"{lo}+"
  return str(lo) if lo == hi else f"{lo}-{hi}"


def sentence_prefixes(spec: DataSpec, world: World, template_P,
                      synonym_PxF) -> tuple[np.ndarray, np.ndarray]:
  """Filler tokens before the value slot of each (template, synonyms): ([P, F] padded with
  0, lengths [P])."""
  t = np.asarray(template_P, np.int64)
  syn = np.asarray(synonym_PxF, np.int64)
  F, S = spec.max_fillers, spec.synonyms_per_slot
  length = np.asarray(world.value_pos_T)[t].astype(np.int32)
  f = np.arange(F)[None, :]
  tokens = spec.syn0 + (t[:, None] * F + f) * S + np.maximum(syn, 0)
  return np.where(f < length[:, None], tokens, 0).astype(np.int32), length


def canonical_syntax(spec: DataSpec, world: World, attribute_P) -> tuple[np.ndarray, np.ndarray]:
  """(template [P], synonyms [P, F]) of each attribute's canonical prompt: its first
  template, every slot's most probable synonym."""
  attr_T = np.asarray(world.attribute_T)
  first_A = np.array([np.flatnonzero(attr_T == a)[0] for a in range(spec.num_attributes)])
  t = first_A[np.asarray(attribute_P, np.int64)]
  return t, np.asarray(world.theta_TxFxS)[t].argmax(-1)


def build_probes(spec: DataSpec, world: World, stream: StreamState, seed: int,
                 per_bin: int, num_bins: int, num_fresh: int) -> ProbeSet:
  """Probes for the stream's current state (host numpy; deterministic in seed and state)."""
  rng = np.random.default_rng(seed)
  counts = np.asarray(stream.entity_counts_E)
  revealed = np.asarray(stream.revealed_ExA)
  num_entities = int(stream.crp.num_entities)
  A = spec.num_attributes
  ent, attr, kind, weight, name_weight = [], [], [], [], []
  bins = np.minimum(occurrence_bin(counts[:num_entities]), num_bins - 1)
  facts_K = revealed[:num_entities].sum(-1)
  for b in range(num_bins):
    members = np.flatnonzero((bins == b) & (facts_K > 0))
    chosen = rng.permutation(members)[:per_bin]
    # Ratio estimator of a sum over the bin's revealed facts: an entity drawn uniformly
    # from the bin stands for its r_k revealed facts; weights sum to the bin's total.
    # Its name stands for len(members) / len(chosen) of the bin's entities.
    if len(chosen):
      weight += list(facts_K[chosen] * facts_K[members].sum() / facts_K[chosen].sum())
      name_weight += [len(members) / len(chosen)] * len(chosen)
    for k in chosen:
      ent.append(k); attr.append(rng.choice(np.flatnonzero(revealed[k]))); kind.append(KNOWLEDGE)
  unrevealed = np.flatnonzero((counts[:num_entities] > 0) & ~revealed[:num_entities].all(-1))
  for k in rng.permutation(unrevealed)[:num_fresh]:
    ent.append(k); attr.append(rng.choice(np.flatnonzero(~revealed[k]))); kind.append(UNREVEALED)
  fresh = num_entities + np.arange(min(num_fresh, spec.name_space - num_entities))
  for k in fresh:
    ent.append(k); attr.append(rng.integers(A)); kind.append(FRESH)
  # Pad to a fixed size (kind -1) so one compiled probe step serves every eval.
  size = per_bin * num_bins + 2 * num_fresh
  pad = size - len(ent)
  weight = np.asarray(weight + [0.0] * (size - len(weight)), np.float64)
  name_weight = np.asarray(name_weight + [0.0] * (size - len(name_weight)), np.float64)
  kind = np.asarray(kind + [-1] * pad, np.int32)
  ent = np.asarray(ent + [0] * pad, np.int32)
  attr = np.asarray(attr + [0] * pad, np.int32)
  safe = np.minimum(ent, len(counts) - 1)
  count = np.where((kind == KNOWLEDGE) | (kind == UNREVEALED), counts[safe], 0).astype(np.int32)
  return make_probes(spec, world, ent, attr, kind, count, weight)._replace(
      name_weight_P=name_weight)


@functools.partial(jax.jit, static_argnums=0)
def _names_values(spec: DataSpec, world: World, entity_P, attribute_P):
  """Name tokens [P, L] and fact values [P] of the given entities and attributes."""
  return (name_tokens(spec, name_codes(spec, world, entity_P)),
          fact_values(spec, world, entity_P, attribute_P))


def make_probes(spec: DataSpec, world: World, entity_P, attribute_P, kind_P,
                count_P, weight_P=None, syntax=None) -> ProbeSet:
  """Prompts (name + a template prefix of the attribute) for given entities and attributes.
  `syntax` = (template [P], synonyms [P, F]) of each prompt; default `canonical_syntax`."""
  ent, attr = np.asarray(entity_P, np.int32), np.asarray(attribute_P, np.int32)
  with jax.enable_x64(True):
    names, values = (np.asarray(x) for x in _names_values(spec, world, ent, attr))
  fill, fill_len = sentence_prefixes(spec, world, *(
      syntax if syntax is not None else canonical_syntax(spec, world, attr)))
  L = spec.name_length
  length = 1 + L + fill_len
  inputs = np.zeros((len(ent), 1 + L + spec.max_fillers), np.int32)
  inputs[:, 0] = BOS
  inputs[:, 1:1 + L] = names
  inputs[:, 1 + L:] = fill
  count = np.asarray(count_P, np.int32)
  zeros = np.zeros(len(ent))
  return ProbeSet(inputs, (length - 1).astype(np.int32),
                  (spec.val0 + attr * spec.values_per_attribute + values).astype(np.int32),
                  attr, np.asarray(kind_P, np.int32), occurrence_bin(count), count,
                  zeros if weight_P is None else np.asarray(weight_P, np.float64), zeros)


def concat_probes(*sets: ProbeSet) -> ProbeSet:
  return ProbeSet(*(np.concatenate(parts) for parts in zip(*sets)))


def probe_logits(params, cfg: model_lib.ModelConfig, width, probes: ProbeSet) -> jax.Array:
  """The model's logits at every prompt position: [P, L, vocab]."""
  inputs = jnp.asarray(probes.inputs_PxL)[:, :cfg.context_length]
  return model_lib.apply(params, cfg, inputs, width)


def _log2_softmax(logits):
  return jax.nn.log_softmax(logits, -1) / jnp.log(2.0)


def probe_stats(logits_PxLxV: jax.Array, probes: ProbeSet, spec: DataSpec,
                confident: float) -> dict[str, jax.Array]:
  """Per probe, from any predictor's logits at every prompt position [P, L, vocab]:

  at the value slot (`read_at_P`), over the whole vocabulary: correct (top-1), bits and
  p_true (probability) of the true value, prior_bits = -log2 H_a(true value), stored =
  max(0, prior_bits - bits) (per fact, clipped: kept for comparison), mass_above (the
  probability of the answers given more than 1/V, Kalai et al.'s set A), bin_mass_B (the
  probability of the answers in each of CALIBRATION_BINS bins of answer probability),
  p_true_T (probability of the true value at SAMPLE_TEMPERATURE); over the attribute's V
  values (renormalised): top-1 probability, entropy (bits), KL(predictor || H_a) (bits),
  confident (top-1 > `confident`); name_bits: the code length of the name tokens after BOS.
  """
  read = jnp.asarray(probes.read_at_P)
  logits_PxV = jnp.take_along_axis(logits_PxLxV, read[:, None, None], 1)[:, 0]
  logp = _log2_softmax(logits_PxV)
  target = jnp.asarray(probes.value_token_P)
  correct = jnp.argmax(logp, -1) == target
  bits = -jnp.take_along_axis(logp, target[:, None], 1)[:, 0]
  V = spec.values_per_attribute
  first = spec.val0 + jnp.asarray(probes.attribute_P) * V
  sub = jnp.take_along_axis(logp, first[:, None] + jnp.arange(V)[None, :], 1)
  sub = sub - jax.scipy.special.logsumexp(sub * jnp.log(2.0), -1, keepdims=True) / jnp.log(2.0)
  p = jnp.exp2(sub)
  top1 = p.max(-1)
  entropy = -jnp.where(p > 0, p * sub, 0.0).sum(-1)
  log_h = jnp.asarray(value_log2_probs(spec), sub.dtype)
  kl = jnp.where(p > 0, p * (sub - log_h[None, :]), 0.0).sum(-1)
  prior_bits = -log_h[jnp.clip(target - first, 0, V - 1)]
  full = jnp.exp2(logp)
  edges = jnp.linspace(0.0, 1.0, CALIBRATION_BINS + 1)[1:-1]
  bin_of = jnp.searchsorted(edges, full, side="right")   # [P, vocab] in 0..B-1
  bin_mass = jnp.stack([jnp.where(bin_of == b, full, 0.0).sum(-1)
                        for b in range(CALIBRATION_BINS)], -1)
  logp_t = _log2_softmax(logits_PxV / SAMPLE_TEMPERATURE)
  L = spec.name_length
  inputs = jnp.asarray(probes.inputs_PxL)
  name_logp = _log2_softmax(logits_PxLxV[:, :L])
  name_bits = -jnp.take_along_axis(name_logp, inputs[:, 1:1 + L, None], -1)[..., 0].sum(-1)
  return {"correct": correct, "bits": bits, "top1": top1, "entropy": entropy, "kl": kl,
          "confident": top1 > confident, "prior_bits": prior_bits,
          "stored": jnp.maximum(prior_bits - bits, 0.0), "p_true": jnp.exp2(-bits),
          "mass_above": jnp.where(full > 1.0 / V, full, 0.0).sum(-1), "bin_mass_B": bin_mass,
          "p_true_T": jnp.exp2(jnp.take_along_axis(logp_t, target[:, None], 1)[:, 0]),
          "name_bits": name_bits}


def bayes_hallucination(spec: DataSpec, confident: float) -> dict[str, float]:
  """What the Bayes predictor answers for an unseen fact: H_a itself (bits)."""
  logh = value_log2_probs(spec)
  h = np.exp2(logh)
  return {"top1": float(h.max()), "entropy": float(-(h * logh).sum()), "kl": 0.0,
          "confident": float(h.max() > confident)}


def aggregate_stored_bits(weight_P, prior_bits_P, model_bits_P) -> tuple[float, float, float]:
  """(aggregate, per-item clipped, standard error) of the bits a set of items (facts or
  names) stores, from a weighted sample: aggregate = max(0, sum w (prior - model)), the
  lower bound Allen-Zhu & Li's count gives (a fact coded worse than its prior offsets one
  coded better); per-item clipped = sum w max(0, prior - model) >= aggregate, equal when
  no item is coded worse than its prior; the standard error of the unclipped sum is the
  ratio estimator's (linearised, sqrt(n / (n - 1)) small-sample factor). Bits."""
  w = np.asarray(weight_P, np.float64)
  gain = np.asarray(prior_bits_P, np.float64) - np.asarray(model_bits_P, np.float64)
  total = float(np.dot(w, gain))
  n = len(w)
  mean = total / w.sum() if w.sum() > 0 else 0.0
  se = float(np.sqrt(np.sum((w * (gain - mean)) ** 2) * n / (n - 1))) if n > 1 else float("nan")
  return max(total, 0.0), float(np.dot(w, np.maximum(gain, 0.0))), se


def _knowledge_bin(outputs, probes: ProbeSet, sel, name_prior_bits: float) -> dict:
  """One occurrence bin's figures (see the module docstring)."""
  w, wn = probes.weight_P[sel], probes.name_weight_P[sel]
  stored, clipped, se = aggregate_stored_bits(w, outputs["prior_bits"][sel], outputs["bits"][sel])
  name, name_clipped, name_se = aggregate_stored_bits(wn, np.full(sel.sum(), name_prior_bits),
                                                      outputs["name_bits"][sel])
  return {"n": int(sel.sum()), "accuracy": float(outputs["correct"][sel].mean()),
          "bits": float(outputs["bits"][sel].mean()), "facts": float(w.sum()),
          "stored_bits": stored, "per_fact_clipped_bits": clipped, "stored_bits_se": se,
          "fact_entropy_bits": float(np.dot(w, outputs["prior_bits"][sel])),
          "entities": float(wn.sum()), "name_stored_bits": name, "name_stored_bits_se": name_se,
          "name_entropy_bits": float(wn.sum() * name_prior_bits)}


def summarise(outputs: dict[str, np.ndarray], probes: ProbeSet, num_bins: int,
              spec: DataSpec) -> dict:
  """Host-side per-bin and per-kind means of one model's probe outputs."""
  out = {"knowledge": {}, "hallucination": {}}
  know = probes.kind_P == KNOWLEDGE
  bins = np.minimum(probes.bin_P, num_bins - 1)
  name_prior = spec.name_length * float(np.log2(spec.name_alphabet))
  for b in range(num_bins):
    sel = know & (bins == b)
    if sel.any():
      out["knowledge"][bin_label(b, open_ended=b == num_bins - 1)] = _knowledge_bin(
          outputs, probes, sel, name_prior)
  if know.any():
    k = out["knowledge"].values()
    out["capacity"] = {key: float(sum(v[key] for v in k)) for key in (
        "facts", "stored_bits", "per_fact_clipped_bits", "fact_entropy_bits", "entities",
        "name_stored_bits", "name_entropy_bits")}
  injected = probes.kind_P == INJECTED
  if injected.any():
    out["injected"] = {}
    for b in sorted(set(probes.bin_P[injected].tolist())):
      sel = injected & (probes.bin_P == b)
      out["injected"][bin_label(b)] = {
          "n": int(sel.sum()), "accuracy": float(outputs["correct"][sel].mean()),
          "bits": float(outputs["bits"][sel].mean()),
          "mean_repetitions": float(probes.count_P[sel].mean())}
  for kind in (FRESH, UNREVEALED):
    sel = probes.kind_P == kind
    if sel.any():
      out["hallucination"][KIND_NAMES[kind]] = {
          k: float(np.mean(outputs[k][sel])) for k in ("top1", "entropy", "kl", "confident")}
  for kind in (HELDOUT, SET_KNOWN, SET_UNKNOWN):
    sel = probes.kind_P == kind
    if sel.any():
      out[KIND_NAMES[kind]] = {"n": int(sel.sum()),
                               "accuracy": float(outputs["correct"][sel].mean()),
                               "bits": float(outputs["bits"][sel].mean())}
  return out
