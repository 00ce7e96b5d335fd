"""The Bayes code's data law measured from the stream itself (SPEC section 6).

R independent streams of N sentences of one data spec are drawn; each sentence's Bayes
bits are split into the knowledge part (new names + first-revealed facts: name + value
bits, limit 0) and the entity-choice part (PYCRP bits, limit the entropy of the entity
distribution). Per part, the replicate-mean bits per sentence in log-spaced bins of the
sentence index n are fitted with `analysis.exponents` (floor 0: y = A n^-a); the 95%
interval is a bootstrap over the replicates (independent streams), never over the points
of one curve. Prediction: a = 1 - alpha for the knowledge part (P(new entity at n) ~
n^(alpha-1)); the new-entity rate is fitted the same way as a check. The entity-choice
bits are reported beside their expected limit E[H], not fitted (each stream's own limit
is random).

  python -m kcompress.data laws --config=configs/sweep.py --out=/tmp/laws.json
"""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np
from scipy import special

from kcompress import theory
from kcompress.analysis import exponents
from kcompress.analysis.claims_rule import verdict
from kcompress.data import source, spec as spec_lib
from kcompress.errors import UserError

DEFAULT_REPLICATES = 8
DEFAULT_SENTENCES = 3_000_000
START_BETAS = 100.0        # fitted range: n from 100 beta (at least 10) to N. Below, the
                           # Pitman-Yor predictive is pre-asymptotic: from n = 10 beta the exact
                           # expected new-entity rate's exponent is 0.002-0.003 below 1 - alpha,
                           # which 16 streams of 1e6 sentences resolve (0.494 [0.490, 0.497] at
                           # alpha 0.5); from 100 beta it is within 0.001
MIN_DECADES = 2.0          # fewer decades fitted: "inconclusive: too short"
REPLICATE_SEED_BASE = 2000  # stream r is keyed by PRNGKey(REPLICATE_SEED_BASE + r)


def entity_entropy_bits(alpha: float, beta: float) -> float:
  """E[H(P)] of a Pitman-Yor(alpha, beta) random distribution, in bits:
  (psi(beta + 1) - psi(1 - alpha)) / ln 2, the limit of the entity-choice bits per sentence
  averaged over streams (each stream's own limit H(P) is random around it)."""
  return float((special.digamma(beta + 1) - special.digamma(1 - alpha)) / math.log(2))


def name_space_cap(spec, num_sentences: int) -> int:
  """The largest N <= num_sentences whose streams the name space holds (2 E[K_N] <=
  name_alphabet**name_length, as `spec.check_name_space` requires): at alpha 0.7 a long
  stream creates more entities than a run's name space, and the law does not depend on it."""
  fits = lambda n: 2 * theory.expected_num_entities(spec.alpha, spec.beta, n) <= spec.name_space
  if fits(num_sentences):
    return int(num_sentences)
  lo, hi = 1, int(num_sentences)
  while hi - lo > 1:
    mid = (lo + hi) // 2
    lo, hi = (mid, hi) if fits(mid) else (lo, mid)
  return lo


def replicate_curves(spec, num_replicates: int, num_sentences: int, edges) -> dict:
  """Per replicate, the mean bits per sentence of each part in the bins [edges[b],
  edges[b+1]) of the 1-based sentence index: {knowledge, entity, new_rate} [R, B]."""
  out = {"knowledge": [], "entity": [], "new_rate": []}
  idx = np.arange(1, num_sentences + 1)
  which = np.searchsorted(edges, idx, side="right") - 1          # bin of each sentence
  valid = (which >= 0) & (which < len(edges) - 1)
  counts = np.bincount(which[valid], minlength=len(edges) - 1)
  for r in range(num_replicates):
    p = source.sentence_parts(spec, REPLICATE_SEED_BASE + r, num_sentences)
    for name, v in (("knowledge", p.name_bits + p.value_bits), ("entity", p.entity_bits),
                    ("new_rate", p.is_new.astype(float))):
      sums = np.bincount(which[valid], weights=v[valid], minlength=len(edges) - 1)
      out[name].append(sums / np.maximum(counts, 1))
  return {k: np.array(v) for k, v in out.items()}


def bayes_laws(config, num_replicates: int = DEFAULT_REPLICATES,
               num_sentences: int = DEFAULT_SENTENCES) -> dict:
  """The data law of the Bayes code of `config.data` (see the module docstring): JSON-ready
  {alpha, predicted, exponent, ci, verdict, reason, decades, replicates, sentences, range,
  parts: {knowledge, new_rate}, entity_limit_bits, entity_end_bits, curve: {n, knowledge,
  entity, new_rate, expected_new_rate}, seconds}."""
  spec = spec_lib.data_spec(config.data)
  requested = num_sentences
  num_sentences = name_space_cap(spec, num_sentences)
  start = time.perf_counter()
  n_lo = max(10.0, START_BETAS * spec.beta)
  if num_sentences < 10 * n_lo:
    raise UserError(f"--sentences={num_sentences}: the law needs at least {int(10 * n_lo)} "
                    f"sentences (one decade above n = 100 beta = {n_lo:g})")
  edges = exponents.log_edges(n_lo, num_sentences + 1)
  curves = replicate_curves(spec, num_replicates, num_sentences, edges)
  centre = np.sqrt(edges[:-1] * edges[1:])
  alpha, beta = spec.alpha, spec.beta
  expected = (theory.expected_num_entities(alpha, beta, np.floor(centre) + 1)
              - theory.expected_num_entities(alpha, beta, np.floor(centre)))
  predicted = theory.data_scaling_exponent(alpha)
  limit = entity_entropy_bits(alpha, beta)
  decades = math.log10(num_sentences / n_lo)
  parts = {
      "knowledge": exponents.replicate_exponent(centre, curves["knowledge"]),
      "new_rate": exponents.replicate_exponent(centre, curves["new_rate"]),
  }
  finite_range = exponents.floor0_fit(centre, expected)["a"]
  head = parts["knowledge"]
  short = decades < MIN_DECADES
  v, reason = verdict(predicted, head["ci"], "point", ok_regime=not short,
                      regime_reason=f"inconclusive: too short ({decades:.2f} decades < "
                                    f"{MIN_DECADES})")
  return {
      "alpha": alpha, "beta": beta, "predicted": predicted,
      "predicted_finite_range": finite_range,
      "exponent": head["a"], "ci": head["ci"], "verdict": v, "reason": reason,
      "decades": decades, "replicates": num_replicates, "sentences": num_sentences,
      "sentences_requested": requested,
      "range": [n_lo, float(num_sentences)],
      "quantity": ("a in A n^-a (floor 0) of the Bayes code's name + value bits per sentence "
                   "(new names and first-revealed facts), replicate mean in log-bins of the "
                   "sentence index n; 95% interval: bootstrap over independent streams"),
      "entity_limit_bits": limit,
      "entity_end_bits": {"mean": float(curves["entity"][:, -1].mean()),
                          "sd_over_streams": float(curves["entity"][:, -1].std(ddof=1))},
      "entity_note": ("entity-choice bits tend to each stream's own H(P), a random limit "
                      "around E[H] = (psi(beta+1) - psi(1-alpha)) / ln 2 bits: left out of "
                      "the fit (subtracting E[H] leaves each stream's offset)"),
      "parts": {k: {kk: vv for kk, vv in p.items() if kk != "draws"} for k, p in parts.items()},
      "curve": {"n": centre.tolist(), "knowledge": curves["knowledge"].mean(0).tolist(),
                "entity": curves["entity"].mean(0).tolist(),
                "new_rate": curves["new_rate"].mean(0).tolist(),
                "expected_new_rate": expected.tolist()},
      "seconds": time.perf_counter() - start,
  }


def write(result: dict, path: str) -> None:
  """`result` as JSON at `path` and its figure at the same path with .png."""
  from kcompress import metrics
  from kcompress.analysis import figures_exponents
  parent = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(parent):
    raise UserError(f"--out={path}: the directory {parent} does not exist")
  metrics.write_json(path, result, indent=1)
  figures_exponents.bayes_law(result, os.path.splitext(path)[0] + ".png")


def is_current(workdir: str, replicates: int, sentences: int) -> bool:
  """WORKDIR/bayes_laws.json exists and was measured with these sizes."""
  path = os.path.join(workdir, "bayes_laws.json")
  if not os.path.exists(path):
    return False
  with open(path) as f:
    try:
      old = json.load(f)
    except json.JSONDecodeError:
      return False
  return (old.get("replicates") == replicates
          and old.get("sentences_requested", old.get("sentences")) == sentences)
