"""Claims 4, 5, 9-11 on probes.jsonl: facts learned in frequency order and by width,
hallucination on unseen entities and its floor, and the fine-tuning changes.
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
  """Confident answers (top-1 > config.probe.confident) on fresh (never seen) entities by the
  widest model at the last eval (seeds pooled), Wilson 95% interval with n = num_fresh per
  model (the probes averaged at most that many); above the Bayes predictor's rate (H_a)."""
  q = "confident-answer rate on fresh entities, widest model, last eval"
  claim = "Hallucination on unseen entities persists at every size"
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
  rates = [r.get("hallucination", {}).get("fresh", {}).get("confident") for r in last]
  bayes = last[0].get("bayes_hallucination", {}).get("confident")
  model = ",".join(model_name(k) for k in keys)
  if not n1 or any(r is None for r in rates):
    return claim_row("hallucination_persists", claim, q, as_float(bayes), None, None, "above",
                     model=model, ok=False, why_not="no fresh-entity probes (or probe.num_fresh)")
  k = int(sum(round(r * n1) for r in rates))
  n = n1 * len(rates)
  return claim_row("hallucination_persists", claim, q, as_float(bayes), k / n,
                   wilson_interval(k, n), "above", model=model,
                   formula="Bayes predictor's confident rate (H_a)",
                   note=f"{k} of {n} fresh probes answered confidently at step {last[0]['step']}")


def claim_hallucination_floor(run: dict, key) -> dict:
  """Kalai & Vempala: a calibrated model hallucinates at least about the monofact rate.
  Measured: confident-answer rate on seen entities' never-revealed facts (fresh entities if
  there are none) at the last eval, Wilson interval (n = num_fresh); bound: the singleton
  fraction of the revealed facts at that eval; kind at_least."""
  q = "confident-answer rate on unrevealed facts at the last eval"
  claim = "Hallucination at least the singleton (monofact) rate"
  model = model_name(key)
  rows = run["probes"].get(key, [])
  if not rows:
    return claim_row("hallucination_floor", claim, q, math.nan, None, None, "at_least", model=model,
                     ok=False, why_not=NO_PROBES)
  last = rows[-1]
  h = last.get("hallucination", {})
  kind = "unrevealed" if "unrevealed" in h else "fresh"
  rate = h.get(kind, {}).get("confident")
  floor = last.get("facts", {}).get("singleton_fraction")
  n = _num_probes(run)
  formula = "singleton fraction of revealed facts (Good-Turing; tends to alpha)"
  if rate is None or floor is None or not n:
    return claim_row("hallucination_floor", claim, q, as_float(floor), None, None, "at_least",
                     model=model, formula=formula, ok=False,
                     why_not="no hallucination probes or no facts figures in probes.jsonl")
  k = int(round(rate * n))
  return claim_row("hallucination_floor", claim, q, floor, k / n, wilson_interval(k, n), "at_least",
                   model=model, formula=formula,
                   note=f"{kind} probes: {k} of {n} confident at step {last['step']}")


# --------------------------------------------------------------- 11: fine-tuning


def claims_finetune(run: dict, key) -> list[dict]:
  """(a) acquisition: Spearman(delivery bin, injected accuracy) after fine-tuning, binomial
  bootstrap, > 0; (b) forgetting: mean over pretraining bins (probes before and after) of
  accuracy after - before, binomial bootstrap of both, < 0; (c) the confident rate on fresh
  entities after - before, Wald two-proportion interval (n = num_fresh each), > 0."""
  model = model_name(key)
  rows = run["probes"].get(key, [])
  qa = "Spearman(deliveries bin, injected-fact accuracy) at the last eval"
  qb = "mean over pretraining bins of accuracy after - before fine-tuning"
  qc = "confident rate on fresh entities after - before fine-tuning"
  ca, cb, cc = ("Fine-tuning: acquisition grows with deliveries", "Fine-tuning: forgetting",
                "Fine-tuning: hallucination on unseen entities rises")
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

