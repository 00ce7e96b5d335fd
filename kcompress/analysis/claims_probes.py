"""Claims 4, 5, 9-13 on probes.jsonl: facts learned in frequency order and by width,
overconfidence on unseen entities (Zucchet et al.), the sampled error against the missing
mass (Kalai et al.), the fine-tuning changes, knowledge capacity (Allen-Zhu & Li), and
Gekhman et al.'s design (on a design's summary).
"""

from __future__ import annotations

import math

import numpy as np

from kcompress.analysis.claims_rule import (NUM_BOOT, SEED, Z95, as_float, claim_row, fmt,
                                            model_name, percentile_ci, spearman, wilson_interval)
from kcompress.analysis.load import bin_start

NO_PROBES = "no probes in this run"


# ---------------------------------------------------------------- 4, 5: knowledge


def _knowledge_bins(probe_row: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
  """(bin start, n, accuracy, labels) of the bins with n > 0, by bin start."""
  kn = probe_row.get("knowledge", {})
  labels = sorted((l for l in kn if kn[l].get("n", 0) > 0), key=bin_start)
  return (np.array([bin_start(l) for l in labels], float),
          np.array([kn[l]["n"] for l in labels], np.int64),
          np.array([kn[l]["accuracy"] for l in labels], float), labels)


def _rank_claim(cid, claim, q, start, n, acc, model, note) -> dict:
  """Spearman(start, acc) > 0 with a parametric (binomial) bootstrap of the accuracies."""
  if len(start) < 3:
    return claim_row(cid, claim, q, 0.0, None, None, "above", model=model, ok=False,
                     why_not=f"too few points: {len(start)} bins with probes (< 3)", note=note)
  measured = float(spearman(start, acc[None])[0])
  rng = np.random.default_rng(SEED)
  draws = rng.binomial(n[None, :], np.clip(acc, 0, 1)[None, :], size=(NUM_BOOT, len(n))) / n
  return claim_row(cid, claim, q, 0.0, measured, percentile_ci(spearman(start, draws)), "above",
                   model=model, note=note)


def claim_frequency_order(run: dict, key) -> dict:
  """Facts are learned in order of frequency: Spearman rank correlation of occurrence bin
  (lower edge) with top-1 accuracy over the bins with probes at the last eval; interval by a
  parametric bootstrap (accuracy ~ Binomial(n, acc) / n per bin, seed SEED); > 0."""
  q = "Spearman(occurrence bin, top-1 accuracy) at the last eval"
  claim = "Facts are learned in order of frequency"
  model = model_name(key)
  rows = run["probes"].get(key, [])
  if not rows:
    return claim_row("frequency_order", claim, q, 0.0, None, None, "above", model=model, ok=False,
                     why_not=NO_PROBES)
  start, n, acc, labels = _knowledge_bins(rows[-1])
  return _rank_claim("frequency_order", claim, q, start, n, acc, model,
                     f"step {rows[-1]['step']}; bins {', '.join(labels)}")


def claim_wider_rarer(run: dict) -> dict:
  """Wider models learn rarer facts: least-squares slope of the mean top-1 accuracy over
  occurrence bins (unweighted, bins with probes in every model: rare bins weigh as much as
  frequent ones, so the mean rises when rarer facts are learned) vs log2(width), every model
  one point, at the last eval; interval by a binomial bootstrap of every bin; > 0."""
  q = "slope of mean bin accuracy vs log2(width) at the last eval"
  claim = "Wider models learn rarer facts"
  models = {k: rows[-1] for k, rows in run["probes"].items() if rows}
  if not models:
    return claim_row("wider_rarer", claim, q, 0.0, None, None, "above", ok=False, why_not=NO_PROBES)
  shared = None
  for row in models.values():
    labels = {l for l, v in row.get("knowledge", {}).items() if v.get("n", 0) > 0}
    shared = labels if shared is None else shared & labels
  labels = sorted(shared, key=bin_start)
  widths = sorted({k[0] for k in models})
  if len(widths) < 2 or not labels:
    return claim_row("wider_rarer", claim, q, 0.0, None, None, "above", ok=False,
                     why_not=f"too few points: {len(widths)} widths, {len(labels)} shared bins")
  keys = sorted(models)
  x = np.log2([k[0] for k in keys])
  n = np.array([[models[k]["knowledge"][l]["n"] for l in labels] for k in keys], np.int64)
  acc = np.array([[models[k]["knowledge"][l]["accuracy"] for l in labels] for k in keys], float)
  xc = x - x.mean()
  slope = lambda m: (m - m.mean(-1, keepdims=True)) @ xc / (xc @ xc)
  measured = float(slope(acc.mean(-1)))
  rng = np.random.default_rng(SEED)
  draws = rng.binomial(n[None], np.clip(acc, 0, 1)[None], size=(NUM_BOOT,) + n.shape) / n[None]
  means = ", ".join(f"{k[0]}: {fmt(m)}" for k, m in zip(keys, acc.mean(-1)))
  return claim_row("wider_rarer", claim, q, 0.0, measured, percentile_ci(slope(draws.mean(-1))),
                   "above", note=f"mean accuracy per width ({means}) over bins {', '.join(labels)}")


# ------------------------------------------------------------ 9, 10: hallucination


def _num_probes(run: dict) -> int | None:
  """Probes per model of each hallucination rate (config.probe.num_fresh)."""
  return run["config"].get("probe", {}).get("num_fresh")


def claim_hallucination_persists(run: dict) -> dict:
  """Zucchet et al. (2025)'s quantity, overconfidence on the unknown: confident answers
  (top-1 > config.probe.confident) on fresh (never seen) entities by the widest model at the
  last eval (seeds pooled), Wilson 95% interval with n = num_fresh per model (the probes
  averaged at most that many); above the Bayes predictor's rate (it answers H_a: 0 for
  uniform H_a). No singleton floor applies to it: a calibrated model answers H_a here."""
  q = "confident-answer rate on never-seen entities, widest model, last eval"
  claim = "Overconfidence on never-seen entities persists at every size (Zucchet et al.)"
  models = {k: rows for k, rows in run["probes"].items() if rows}
  every = sorted(set(run["models"]) | set(models))
  wmax = max((k[0] for k in every), default=None)
  if not models or not any(k[0] == wmax for k in models):
    return claim_row("hallucination_persists", claim, q, math.nan, None, None, "above",
                     model=",".join(model_name(k) for k in every if k[0] == wmax) or None, ok=False,
                     why_not=NO_PROBES)
  keys = sorted(k for k in models if k[0] == wmax)
  n1 = _num_probes(run)
  last = [models[k][-1] for k in keys]
  fresh = [r.get("hallucination", {}).get("fresh", {}) for r in last]
  rates = [f.get("confident") for f in fresh]
  bayes = last[0].get("bayes_hallucination", {}).get("confident")
  model = ",".join(model_name(k) for k in keys)
  if not n1 or any(r is None for r in rates):
    return claim_row("hallucination_persists", claim, q, as_float(bayes), None, None, "above",
                     model=model, ok=False, why_not="no fresh-entity probes (or probe.num_fresh)")
  k = int(sum(round(r * n1) for r in rates))
  n = n1 * len(rates)
  kl = np.mean([f.get("kl", math.nan) for f in fresh])
  return claim_row("hallucination_persists", claim, q, as_float(bayes), k / n,
                   wilson_interval(k, n), "above", model=model,
                   formula="Bayes predictor's confident rate (H_a)",
                   note=f"{k} of {n} fresh probes answered confidently at step {last[0]['step']}; "
                        f"KL(model || H_a) {fmt(kl)} bits (Bayes 0)")


def claim_hallucination_floor(run: dict, key) -> dict:
  """Kalai & Vempala (2024), Kalai et al. (2025): the error rate of sampled answers on prompts
  of the training distribution is at least the missing mass of facts minus the model's
  miscalibration (small terms aside). Measured: the sampled error on the stream's next
  `n` prompts at the last eval (`probes.jsonl` `sampled`), Wilson interval; bound:
  missing_mass (Good-Turing N1/n over fact occurrences) - delta (|p_model(A) - p_true(A)|,
  A = answers given probability > 1/V) at that eval; kind at_least. The note gives the
  Bayes predictor's exact sampled error beside missing mass x (1 - sum H_a^2), the check
  that the estimator recovers a known answer."""
  q = "sampled error rate on the stream's next prompts at the last eval"
  claim = "Sampled error at least the missing mass minus miscalibration (Kalai et al.)"
  formula = "missing mass N1/n - delta"
  model = model_name(key)
  rows = run["probes"].get(key, [])
  if not rows:
    return claim_row("hallucination_floor", claim, q, math.nan, None, None, "at_least", model=model,
                     ok=False, why_not=NO_PROBES)
  last = rows[-1]
  s = last.get("sampled")
  if not s or s.get("error") is None:
    return claim_row("hallucination_floor", claim, q, math.nan, None, None, "at_least",
                     model=model, formula=formula, ok=False,
                     why_not="no sampled-error probes in probes.jsonl")
  bound = s["missing_mass"] - s["delta"]
  k = int(round(s["error"] * s["n"]))
  by_kind = ", ".join(f"{kind} {fmt(s.get(f'error_{kind}'))} (n {s.get(f'n_{kind}')})"
                      for kind in ("seen", "unrevealed", "unseen"))
  return claim_row("hallucination_floor", claim, q, bound, k / s["n"], wilson_interval(k, s["n"]),
                   "at_least", model=model, formula=formula,
                   note=f"step {last['step']}: missing mass {fmt(s['missing_mass'])} (Pitman-Yor "
                        f"{fmt(s['missing_mass_py'])}), delta {fmt(s['delta'])} (binned "
                        f"{fmt(s.get('delta_binned'))}); by kind {by_kind}; greedy error "
                        f"{fmt(s['greedy_error'])}; Bayes predictor's sampled error "
                        f"{fmt(s['bayes_error'])}")


# ---------------------------------------------------------------- 12: capacity

CAPACITY_LEVELS = ((100, 1.0), (1000, 2.0))   # exposures, bits/param (Allen-Zhu & Li 2024)


def capacity_at_level(knowledge: dict, level: int) -> dict | None:
  """Fact + name bits stored and offered over the occurrence bins starting at >= `level`
  (each bin's stored bits clipped at 0 in aggregate: a lower bound), with the standard error
  of the stored bits; None when no such bin was probed (or the row predates name bits)."""
  labels = sorted((l for l in knowledge if bin_start(l) >= level
                   and "name_stored_bits" in knowledge[l]), key=bin_start)
  if not labels:
    return None
  get = lambda key: sum(knowledge[l][key] for l in labels)
  return {"bins": labels, "stored_bits": get("stored_bits") + get("name_stored_bits"),
          "offered_bits": get("fact_entropy_bits") + get("name_entropy_bits"),
          "stored_bits_se": math.sqrt(sum(knowledge[l]["stored_bits_se"] ** 2
                                          + knowledge[l]["name_stored_bits_se"] ** 2
                                          for l in labels))}


def claims_capacity(run: dict, key) -> list[dict]:
  """Allen-Zhu & Li (2024): about 1 bit per parameter stored for knowledge seen ~100 times,
  2 at ~1000. Measured at the last eval: (fact + name bits stored, clipped at 0 in aggregate
  per occurrence bin: a lower bound) over the bins whose entities occurred >= the level
  (bin start >= level; a fact is stated in about 1/A of its entity's sentences), per
  unpadded parameter; interval from the ratio estimators' standard errors (normal, 95%).
  Claimed only where the facts and names offered at that level carry more than twice the
  parameters' count in bits (else the model is not capacity-bound there); kind point."""
  model = model_name(key)
  rows = run["probes"].get(key, [])
  out = []
  for level, reference in CAPACITY_LEVELS:
    cid, claim = f"capacity_{level}", f"Knowledge capacity at >= {level} exposures"
    q = f"stored bits / parameter over entities seen >= {level} times, last eval"
    row = lambda *a, **k: claim_row(cid, claim, q, reference, *a, "point", model=model,
                                    formula="Allen-Zhu & Li (2024)", **k)
    if not rows:
      out.append(row(None, None, ok=False, why_not=NO_PROBES))
      continue
    last = rows[-1]
    c = capacity_at_level(last.get("knowledge", {}), level)
    if c is None:
      out.append(row(None, None, ok=False,
                     why_not=f"no probed occurrence bin starts at >= {level} (bins: "
                             f"{', '.join(sorted(last.get('knowledge', {}), key=bin_start))})"))
      continue
    params, stored, se = last["params"], c["stored_bits"], c["stored_bits_se"]
    ci = (max(stored - Z95 * se, 0.0) / params, (stored + Z95 * se) / params)
    out.append(row(stored / params, ci, ok=c["offered_bits"] > 2 * params,
                   why_not=(f"inconclusive: not capacity-bound: the facts and names offered "
                            f"there carry {c['offered_bits']:,.0f} bits <= 2 x {params:,} "
                            f"parameters"),
                   note=f"step {last['step']}; bins {', '.join(c['bins'])}; {stored:,.0f} of "
                        f"{c['offered_bits']:,.0f} bits offered stored"))
  return out


# --------------------------------------------------------------- 11: fine-tuning


def claims_finetune(run: dict, key) -> list[dict]:
  """(a) acquisition: Spearman(delivery bin, injected accuracy) after fine-tuning, binomial
  bootstrap, > 0; (b) forgetting: mean over pretraining bins (probes before and after) of
  accuracy after - before, binomial bootstrap of both, < 0; (c) the confident rate on fresh
  entities after - before, Wald two-proportion interval (n = num_fresh each), > 0: Zucchet
  et al.'s overconfidence on the unknown, not Gekhman et al.'s quantity (held-out accuracy
  vs the share of Unknown examples: `claims_gekhman`, on a design)."""
  model = model_name(key)
  rows = run["probes"].get(key, [])
  qa = "Spearman(deliveries bin, injected-fact accuracy) at the last eval"
  qb = "mean over pretraining bins of accuracy after - before fine-tuning"
  qc = "confident rate on never-seen entities after - before fine-tuning"
  ca, cb, cc = ("Fine-tuning: acquisition grows with deliveries", "Fine-tuning: forgetting",
                "Fine-tuning: overconfidence on never-seen entities rises (Zucchet et al.)")
  if len(rows) < 2:
    why = NO_PROBES if not rows else "one probe row: no before/after"
    return [claim_row("finetune_acquisition", ca, qa, 0.0, None, None, "above", model=model,
                      ok=False, why_not=why),
            claim_row("finetune_forgetting", cb, qb, 0.0, None, None, "below", model=model,
                      ok=False, why_not=why),
            claim_row("finetune_hallucination", cc, qc, 0.0, None, None, "above", model=model,
                      ok=False, why_not=why)]
  before, after = rows[0], rows[-1]
  out = []
  inj = after.get("injected", {})
  labels = sorted((l for l in inj if inj[l].get("n", 0) > 0), key=bin_start)
  start = np.array([bin_start(l) for l in labels], float)
  n = np.array([inj[l]["n"] for l in labels], np.int64)
  acc = np.array([inj[l]["accuracy"] for l in labels], float)
  out.append(_rank_claim("finetune_acquisition", ca, qa, start, n, acc, model,
                         f"step {after['step']}; delivery bins {', '.join(labels)}"))
  kb, ka = before.get("knowledge", {}), after.get("knowledge", {})
  shared = sorted((l for l in set(kb) & set(ka) if kb[l].get("n", 0) > 0 and ka[l].get("n", 0) > 0),
                  key=bin_start)
  if not shared:
    out.append(claim_row("finetune_forgetting", cb, qb, 0.0, None, None, "below", model=model,
                         ok=False, why_not="no pretraining bin probed both before and after"))
  else:
    nb = np.array([kb[l]["n"] for l in shared], np.int64)
    na = np.array([ka[l]["n"] for l in shared], np.int64)
    pb = np.array([kb[l]["accuracy"] for l in shared], float)
    pa = np.array([ka[l]["accuracy"] for l in shared], float)
    rng = np.random.default_rng(SEED)
    db = rng.binomial(nb[None], np.clip(pb, 0, 1)[None], size=(NUM_BOOT, len(shared))) / nb
    da = rng.binomial(na[None], np.clip(pa, 0, 1)[None], size=(NUM_BOOT, len(shared))) / na
    out.append(claim_row("finetune_forgetting", cb, qb, 0.0, float(np.mean(pa - pb)),
                         percentile_ci((da - db).mean(-1)), "below", model=model,
                         note=f"steps {before['step']} -> {after['step']}; "
                              f"bins {', '.join(shared)}"))
  fresh = lambda r: r.get("hallucination", {}).get("fresh", {}).get("confident")
  n1 = _num_probes(run)
  if fresh(before) is None or fresh(after) is None or not n1:
    out.append(claim_row("finetune_hallucination", cc, qc, 0.0, None, None, "above", model=model,
                         ok=False, why_not="no fresh-entity probes before and after"))
  else:
    p0, p1 = round(fresh(before) * n1) / n1, round(fresh(after) * n1) / n1
    se = math.sqrt(p0 * (1 - p0) / n1 + p1 * (1 - p1) / n1)
    d = p1 - p0
    ci = (d - Z95 * se, d + Z95 * se) if se > 0 else (d, d)
    out.append(claim_row("finetune_hallucination", cc, qc, 0.0, d, ci, "above", model=model,
                         note=f"{fmt(p0)} -> {fmt(p1)} (n = {n1} each)"))
  return out



# ------------------------------------------------------- 13: Gekhman et al.'s design

FIT_MIN = 0.9     # convergence: every set fitted to at least this accuracy
KNOWN_MIN = 0.5   # the held-out facts must be Known (SliCK) to the model at least this often


def _slope(x, y_BxK) -> np.ndarray:
  """Least-squares slope of each row of y against x."""
  xc = np.asarray(x, float) - np.mean(x)
  y = np.atleast_2d(y_BxK)
  return (y - y.mean(-1, keepdims=True)) @ xc / (xc @ xc)


def _design_regime(design: dict, model: str, arms: list[str]) -> str:
  """Why the design cannot judge `model` (empty when it can): the held-out facts are not
  Known to it, or a set was not fitted at convergence."""
  held = design["categories"].get(model, {}).get("heldout", {})
  total = sum(held.values())
  known = total - held.get("Unknown", 0)
  if not total or known / total < KNOWN_MIN:
    return (f"the held-out facts are not known to the model: {known} of {total} are not "
            f"Unknown by SliCK (< {KNOWN_MIN:g})")
  fits = {a: design["unknown_share"][a]["fit"].get(model) for a in arms}
  bad = {a: f for a, f in fits.items() if f is None or f < FIT_MIN}
  if bad:
    return ("not converged: fine-tuning-set accuracy at the last eval "
            + ", ".join(f"{a}: {fmt(f)}" for a, f in bad.items()) + f" (< {FIT_MIN:g})")
  return ""


def claims_gekhman(design: dict) -> list[dict]:
  """Gekhman et al. (2024), per model: (a) held-out accuracy at convergence (the last eval)
  falls as the share of Unknown examples grows: least-squares slope of accuracy vs share
  over the arms, parametric bootstrap (accuracy ~ Binomial(n, acc) / n per arm); < 0;
  (b) at convergence the 50% set scores below its own Known half (the control): accuracy
  control - 50%, Wald interval (n each); > 0. Early-stop accuracies are in the notes.
  Judged only where the held-out facts are Known and every set was fitted (`_design_regime`)."""
  us = design.get("unknown_share", {})
  arms = sorted((a for a in us if a != "control"), key=float)
  out = []
  for model in design.get("models", []):
    qa = "slope of held-out accuracy vs Unknown share, at convergence"
    ca = "Fine-tuning on Unknown examples lowers held-out accuracy (Gekhman et al.)"
    qb = "held-out accuracy of the control - the 50% set, at convergence"
    cb = "Unknown examples hurt beyond their share (Gekhman et al.'s control)"
    if len(arms) < 2 or "control" not in us or "0.5" not in us:
      why = f"too few arms: {arms}"
      out += [claim_row("gekhman_slope", ca, qa, 0.0, None, None, "below", model=model, ok=False,
                        why_not=why),
              claim_row("gekhman_control", cb, qb, 0.0, None, None, "above", model=model,
                        ok=False, why_not=why)]
      continue
    why = _design_regime(design, model, arms + ["control"])
    x = np.array([float(a) for a in arms])
    n = np.array([us[a]["n"] for a in arms], np.int64)
    acc = np.array([us[a]["convergence"][model] for a in arms], float)
    early = np.array([us[a]["early_stop"][model] for a in arms], float)
    rng = np.random.default_rng(SEED)
    draws = rng.binomial(n[None], np.clip(acc, 0, 1)[None], size=(NUM_BOOT, len(n))) / n
    by_share = lambda v: ", ".join(f"{a}: {fmt(y)}" for a, y in zip(arms, v))
    out.append(claim_row(
        "gekhman_slope", ca, qa, 0.0, float(_slope(x, acc)[0]), percentile_ci(_slope(x, draws)),
        "below", model=model, ok=not why, why_not=why,
        note=f"convergence accuracy by share {by_share(acc)}; early stop {by_share(early)} "
             f"(slope {fmt(_slope(x, early)[0])}); n = {n[0]} held-out facts"))
    p1, p0 = us["control"]["convergence"][model], us["0.5"]["convergence"][model]
    n1, n0 = us["control"]["n"], us["0.5"]["n"]
    se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    d = p1 - p0
    out.append(claim_row(
        "gekhman_control", cb, qb, 0.0, d, (d - Z95 * se, d + Z95 * se) if se > 0 else (d, d),
        "above", model=model, ok=not why, why_not=why,
        note=f"control {fmt(p1)} vs 50% set {fmt(p0)} at convergence; at early stop "
             f"{fmt(us['control']['early_stop'][model])} vs {fmt(us['0.5']['early_stop'][model])}"))
  return out
