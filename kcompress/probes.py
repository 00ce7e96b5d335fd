"""Knowledge and hallucination probes (SPEC section 5), built from the generator's state.

A probe is a prompt = an entity's name + a template's prefix up to its value slot;
the model's next-token distribution is read at the value slot.

- knowledge: entities seen so far, binned by occurrences (bin b holds counts in
  [2^b, 2^(b+1)): 1, 2-3, 4-7, ...; the last bin is open, e.g. 512+), asked about a fact
  already revealed. Per bin: top-1 accuracy (argmax over the whole vocabulary), mean
  bits of the true value, and the knowledge stored in the model: per fact
  max(0, -log2 H_a(v) - model bits of v) (= max(0, log2 V_a - bits) for uniform H_a),
  summed over the bin's revealed facts by a ratio estimator (`weight_P`).
- injected (fine-tuning, `kcompress.finetune`): injected entities delivered at least
  once, asked about a fact revealed in what was delivered, binned by deliveries so far.
- hallucination: fresh entities (never seen; their names are new) and seen entities'
  never-revealed facts. The Bayes answer is H_a itself. Per kind: mean top-1
  probability, entropy and KL(model || H_a) of the model's distribution over the
  attribute's V values (renormalised), in bits, and the rate of top-1 probability
  above `config.probe.confident`.

Prompt syntax: each template prefix uses its slots' most probable synonyms.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from kcompress import model as model_lib
from kcompress.data.spec import BOS, DataSpec
from kcompress.data.stream import StreamState
from kcompress.data.world import World, fact_values, name_codes, name_tokens, value_log2_probs

KNOWLEDGE, FRESH, UNREVEALED, INJECTED = 0, 1, 2, 3
KIND_NAMES = ("knowledge", "fresh", "unrevealed", "injected")


class ProbeSet(NamedTuple):
  """P prompts, left-aligned after BOS. Shapes [P, L] / [P]."""
  inputs_PxL: np.ndarray    # int32 [BOS, name, fillers..., pad]
  read_at_P: np.ndarray     # int32 position whose logits predict the value
  value_token_P: np.ndarray  # int32 true value token
  attribute_P: np.ndarray   # int32
  kind_P: np.ndarray        # int32 KNOWLEDGE / FRESH / UNREVEALED
  bin_P: np.ndarray         # int32 occurrence bin (-1 for fresh)
  count_P: np.ndarray       # int32 occurrences so far (0 for fresh)
  weight_P: np.ndarray      # float64 revealed facts a knowledge probe stands for (else 0)


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


def _prefixes(spec: DataSpec, world: World) -> tuple[np.ndarray, np.ndarray]:
  """Per attribute a: filler tokens of its first template's prefix (padded), prefix length."""
  theta = np.asarray(world.theta_TxFxS)
  attr_T = np.asarray(world.attribute_T)
  pos_T = np.asarray(world.value_pos_T)
  A, F, S = spec.num_attributes, spec.max_fillers, spec.synonyms_per_slot
  tokens = np.zeros((A, F), np.int32)
  length = np.zeros((A,), np.int32)
  for a in range(A):
    t = int(np.flatnonzero(attr_T == a)[0])
    p = int(pos_T[t])
    u = theta[t, :p].argmax(-1)
    tokens[a, :p] = spec.syn0 + (t * F + np.arange(p)) * S + u
    length[a] = p
  return tokens, length


def build_probes(spec: DataSpec, world: World, stream: StreamState, seed: int,
                 per_bin: int, num_bins: int, num_fresh: int) -> ProbeSet:
  """Probes for the stream's current state (host numpy; deterministic in seed and state)."""
  rng = np.random.default_rng(seed)
  counts = np.asarray(stream.entity_counts_E)
  revealed = np.asarray(stream.revealed_ExA)
  num_entities = int(stream.crp.num_entities)
  A = spec.num_attributes
  ent, attr, kind, weight = [], [], [], []
  bins = np.minimum(occurrence_bin(counts[:num_entities]), num_bins - 1)
  facts_K = revealed[:num_entities].sum(-1)
  for b in range(num_bins):
    members = np.flatnonzero((bins == b) & (facts_K > 0))
    chosen = rng.permutation(members)[:per_bin]
    # Ratio estimator of a sum over the bin's revealed facts: an entity drawn uniformly
    # from the bin stands for its r_k revealed facts; weights sum to the bin's total.
    if len(chosen):
      weight += list(facts_K[chosen] * facts_K[members].sum() / facts_K[chosen].sum())
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
  kind = np.asarray(kind + [-1] * pad, np.int32)
  ent = np.asarray(ent + [0] * pad, np.int32)
  attr = np.asarray(attr + [0] * pad, np.int32)
  safe = np.minimum(ent, len(counts) - 1)
  count = np.where((kind == KNOWLEDGE) | (kind == UNREVEALED), counts[safe], 0).astype(np.int32)
  return make_probes(spec, world, ent, attr, kind, count, weight)


def make_probes(spec: DataSpec, world: World, entity_P, attribute_P, kind_P,
                count_P, weight_P=None) -> ProbeSet:
  """Prompts (name + the attribute's template prefix) for given entities and attributes."""
  ent, attr = np.asarray(entity_P, np.int32), np.asarray(attribute_P, np.int32)
  with jax.enable_x64(True):
    names = np.asarray(name_tokens(spec, name_codes(spec, world, jnp.asarray(ent))))
    values = np.asarray(fact_values(spec, world, jnp.asarray(ent), jnp.asarray(attr)))
  fill, fill_len = _prefixes(spec, world)
  L = spec.name_length
  length = 1 + L + fill_len[attr]
  inputs = np.zeros((len(ent), 1 + L + spec.max_fillers), np.int32)
  inputs[:, 0] = BOS
  inputs[:, 1:1 + L] = names
  for i, a in enumerate(attr):
    inputs[i, 1 + L:1 + L + fill_len[a]] = fill[a, :fill_len[a]]
  count = np.asarray(count_P, np.int32)
  return ProbeSet(inputs, (length - 1).astype(np.int32),
                  (spec.val0 + attr * spec.values_per_attribute + values).astype(np.int32),
                  attr, np.asarray(kind_P, np.int32), occurrence_bin(count), count,
                  np.zeros(len(ent)) if weight_P is None else np.asarray(weight_P, np.float64))


def concat_probes(*sets: ProbeSet) -> ProbeSet:
  return ProbeSet(*(np.concatenate(parts) for parts in zip(*sets)))


def probe_logits(params, cfg: model_lib.ModelConfig, width, probes: ProbeSet) -> jax.Array:
  """The model's logits at each probe's value slot: [P, vocab]."""
  inputs = jnp.asarray(probes.inputs_PxL)[:, :cfg.context_length]
  logits = model_lib.apply(params, cfg, inputs, width)
  return jnp.take_along_axis(logits, jnp.asarray(probes.read_at_P)[:, None, None], 1)[:, 0]


def probe_stats(logits_PxV: jax.Array, probes: ProbeSet, spec: DataSpec,
                confident: float) -> dict[str, jax.Array]:
  """Per probe, from any predictor's logits: correct (top-1 over the vocabulary), bits of the
  true value, prior_bits = -log2 H_a(true value), stored = max(0, prior_bits - bits), and
  over the attribute's V values (renormalised): top-1 probability, entropy (bits),
  KL(predictor || H_a) (bits), confident (top-1 > `confident`)."""
  logp = jax.nn.log_softmax(logits_PxV, -1) / jnp.log(2.0)
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
  return {"correct": correct, "bits": bits, "top1": top1, "entropy": entropy, "kl": kl,
          "confident": top1 > confident, "prior_bits": prior_bits,
          "stored": jnp.maximum(prior_bits - bits, 0.0)}


def bayes_hallucination(spec: DataSpec, confident: float) -> dict[str, float]:
  """What the Bayes predictor answers for an unseen fact: H_a itself (bits)."""
  logh = value_log2_probs(spec)
  h = np.exp2(logh)
  return {"top1": float(h.max()), "entropy": float(-(h * logh).sum()), "kl": 0.0,
          "confident": float(h.max() > confident)}


def summarise(outputs: dict[str, np.ndarray], probes: ProbeSet, num_bins: int) -> dict:
  """Host-side per-bin and per-kind means of one model's probe outputs."""
  out = {"knowledge": {}, "hallucination": {}}
  know = probes.kind_P == KNOWLEDGE
  bins = np.minimum(probes.bin_P, num_bins - 1)
  for b in range(num_bins):
    sel = know & (bins == b)
    if sel.any():
      w = probes.weight_P[sel]
      out["knowledge"][bin_label(b, open_ended=b == num_bins - 1)] = {
          "n": int(sel.sum()), "accuracy": float(outputs["correct"][sel].mean()),
          "bits": float(outputs["bits"][sel].mean()), "facts": float(w.sum()),
          "stored_bits": float(np.dot(w, outputs["stored"][sel])),
          "fact_entropy_bits": float(np.dot(w, outputs["prior_bits"][sel]))}
  if know.any():
    k = out["knowledge"].values()
    out["capacity"] = {key: float(sum(v[key] for v in k))
                       for key in ("facts", "stored_bits", "fact_entropy_bits")}
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
  return out
