"""The headline numbers of a run (what report/summary.json holds), in bits and tokens.

`summarize(run)` (run: `load.load_run`'s dict) gives per-model final bits per token by role,
code lengths, power-law fits, knowledge and hallucination figures, the two-part codes, the
oracle, fine-tuning changes and the claims (`claims.run_claims`). `design_summary(workdir)`
gives a Gekhman design's (`kcompress.design`). Also the per-step curve
helpers the figures share (`column`, `smooth`, `smoothing_window`).
"""

from __future__ import annotations

import json
import os

import numpy as np

from kcompress import theory
from kcompress.analysis import claims, claims_probes, design_files, fits, ksf, load
from kcompress.analysis.claims_rule import model_name
from kcompress.analysis.load import bin_start

ROLES = ("name", "syntax", "value", "end")
REFERENCE_BITS_PER_PARAM = 2.0   # Allen-Zhu & Li (2024): ~2 bits/param at ~1000 exposures


# ------------------------------------------------------------------ per-step curves


def column(rows: list[dict], key: str) -> np.ndarray:
  """One metrics column over a model's rows (None -> NaN)."""
  return np.array([np.nan if r[key] is None else r[key] for r in rows], float)


def smooth(x: np.ndarray, window: int) -> np.ndarray:
  """Trailing mean over `window` steps (NaN-aware), same length as x."""
  x = np.asarray(x, float)
  ok = np.isfinite(x)
  csum = np.concatenate([[0.0], np.cumsum(np.where(ok, x, 0.0))])
  ccnt = np.concatenate([[0.0], np.cumsum(ok)])
  idx = np.arange(1, len(x) + 1)
  lo = np.maximum(idx - window, 0)
  cnt = ccnt[idx] - ccnt[lo]
  return np.where(cnt > 0, (csum[idx] - csum[lo]) / np.maximum(cnt, 1), np.nan)


def smoothing_window(run: dict) -> int:
  """Smoothing window of the per-step curves: 1/30 of the run."""
  return max(1, len(next(iter(run["models"].values()))) // 30)


def first_within(model: np.ndarray, floor: np.ndarray, steps: np.ndarray, tol: float = 0.05):
  """First step where the (smoothed) model bits are within `tol` of the floor, else None."""
  hit = np.flatnonzero(model <= floor * (1 + tol))
  return int(steps[hit[0]]) if len(hit) else None


# ---------------------------------------------------------------- knowledge probes


def frequency_at_half_accuracy(knowledge: dict) -> float | None:
  """Smallest occurrence count (bin's lower edge) whose accuracy reaches 50%, else None."""
  for label, v in sorted(knowledge.items(), key=lambda kv: bin_start(kv[0])):
    if v["accuracy"] >= 0.5:
      return float(bin_start(label))
  return None


def capacity(probe_row: dict, params: int) -> dict | None:
  """Knowledge stored by one model at one eval: the probe row's capacity (facts: stored_bits,
  fact_entropy_bits, per_fact_clipped_bits; names: name_stored_bits, name_entropy_bits),
  their totals (total_stored_bits, offered_bits; each bin clipped at 0 in aggregate, so a
  lower bound), bits per unpadded parameter of the total, and `by_exposure`: the same over
  the entities seen >= 100 and >= 1000 times (None where no such bin was probed)."""
  c = probe_row.get("capacity")
  if not c:
    return None
  stored = c["stored_bits"] + c.get("name_stored_bits", 0.0)
  offered = c["fact_entropy_bits"] + c.get("name_entropy_bits", 0.0)
  by_level = {}
  for level, _ in claims_probes.CAPACITY_LEVELS:
    at = claims_probes.capacity_at_level(probe_row.get("knowledge", {}), level)
    by_level[str(level)] = at and {**at, "bits_per_param": at["stored_bits"] / params,
                                   "capacity_bound": at["offered_bits"] > 2 * params}
  return {**c, "params": params, "total_stored_bits": stored, "offered_bits": offered,
          "bits_per_param": stored / params, "fraction_stored": stored / offered if offered
          else None, "by_exposure": by_level}


# ------------------------------------------------------------------------ summary


def summarize(run: dict) -> dict:
  """The headline numbers of a run (what summary.json holds)."""
  cfg = run["config"]
  alpha = cfg["data"]["alpha"]
  window = smoothing_window(run)
  per_model, finals, params = {}, [], []
  for (width, seed), rows in run["models"].items():
    steps = np.array([r["step"] for r in rows])
    tokens = np.array([r["tokens_seen"] for r in rows], float)
    tail = slice(-max(1, len(rows) // 10), None)
    final = {role: float(np.nanmean(column(rows, f"bits_{role}")[tail])) for role in ROLES}
    final_bayes = {role: float(np.nanmean(column(rows, f"bayes_{role}")[tail])) for role in ROLES}
    loss = smooth(column(rows, "loss_bits"), window)
    start = len(rows) // 10
    try:
      fit = fits.bootstrap_power_law(tokens[start:], loss[start:], num_boot=100, seed=0)
      data_fit = fit.to_json()
    except (ValueError, RuntimeError):
      data_fit = None
    syn = smooth(column(rows, "bits_syntax"), window)
    syn_floor = smooth(column(rows, "bayes_syntax"), window)
    val = smooth(column(rows, "bits_value"), window)
    val_floor = smooth(column(rows, "bayes_value"), window)
    probe_rows = run["probes"].get((width, seed), [])
    last_probe = probe_rows[-1] if probe_rows else None
    last = rows[-1]
    per_model[f"{width}/{seed}"] = {
        "width": width, "seed": seed, "params": last["params"],
        "final_bits_per_token": final, "final_bayes_bits_per_token": final_bayes,
        "prequential_bits": last["preq_bits"], "bayes_bits": last["bayes_bits"],
        "redundancy_ratio": last["preq_bits"] / last["bayes_bits"] if last["bayes_bits"] else None,
        "data_fit": data_fit,
        "syntax_within_5pct_step": first_within(syn, syn_floor, steps),
        "value_within_5pct_step": first_within(val, val_floor, steps),
        "frequency_at_50pct_accuracy": (frequency_at_half_accuracy(last_probe["knowledge"])
                                        if last_probe else None),
        "fresh_confident_rate": (last_probe["hallucination"].get("fresh", {}).get("confident")
                                 if last_probe else None),
        "fresh_kl_bits": (last_probe["hallucination"].get("fresh", {}).get("kl")
                          if last_probe else None),
        "sampled": last_probe.get("sampled") if last_probe else None,
        "knowledge_capacity": capacity(last_probe, last["params"]) if last_probe else None,
        "frozen_step": last["frozen_step"],
    }
    finals.append(float(np.nanmean(column(rows, "loss_bits")[tail])))
    params.append(last["params"])
  size_fit = None
  if len(set(params)) >= 4:
    try:
      size_fit = fits.bootstrap_power_law(np.array(params, float), np.array(finals), num_boot=100,
                                          seed=0).to_json()
    except (ValueError, RuntimeError):
      size_fit = None
  summary = {
      "alpha": alpha,
      "predicted_data_exponent": theory.data_scaling_exponent(alpha),
      "predicted_size_exponent_in_capacity": theory.size_scaling_exponent(alpha),
      "models": per_model,
      "size_fit": size_fit,
      "compressors_bits": run["compressors"].get("bits", {}),
      "oracle": _oracle_summary(run["oracle"]),
      "two_part": _two_part_summary(run),
      "finetune": _finetune_summary(run),
      "hallucination": _hallucination_summary(run),
      "tokens": run["compressors"].get("num_tokens"),
  }
  summary["claims"] = claims.run_claims(run, summary)
  summary["size_oracle"] = {k: (run.get("reference") or {}).get("oracle", {}).get(k)
                            for k in ("m", "value_excess", "window_steps", "entities")}
  return summary


def _hallucination_summary(run: dict) -> dict | None:
  """The figures the hallucination bounds compare, at the last eval: the Good-Turing figures
  of the facts read (singleton fraction, N1/n), the exact Pitman-Yor missing mass, and per
  model its sampled error, greedy error and miscalibration beside the Bayes predictor's
  sampled error (Kalai et al.), then its overconfidence on never-seen entities (Zucchet et
  al.: confident rate, KL to H_a; the Bayes predictor's is 0)."""
  rows = next(iter(run["probes"].values()), [])
  if not rows or "facts" not in rows[-1]:
    return None
  last = rows[-1]
  out = {"step": last["step"], "alpha": run["config"]["data"]["alpha"],
         "singleton_fraction": last["facts"]["singleton_fraction"],
         "revealed_facts": last["facts"]["revealed"],
         "missing_mass": last["facts"]["missing_mass"],
         "missing_mass_py": (last.get("sampled") or {}).get("missing_mass_py"), "models": {}}
  for (width, seed), model_rows in run["probes"].items():
    r = model_rows[-1]
    s = r.get("sampled") or {}
    fresh = r.get("hallucination", {}).get("fresh", {})
    out["models"][f"{width}/{seed}"] = {
        "width": width, **{k: s.get(k) for k in ("error", "greedy_error", "bayes_error", "delta",
                                                  "delta_binned", "n")},
        "fresh_confident_rate": fresh.get("confident"), "fresh_kl_bits": fresh.get("kl")}
  return out


def two_part_points(run: dict) -> list[dict]:
  """Every finite (complexity, data) point of ksf.jsonl: quantised codes and prequential
  estimates (a diverged model's NaN points are left out)."""
  points = []
  for (width, seed), rows in run["ksf"].items():
    for r in rows:
      base = {"width": width, "seed": seed, "step": r["step"]}
      for q in r["quantised"]:
        points.append({**base, "kind": f"quantised p={q['precision']}",
                       "complexity_bits": q["complexity_bits"], "data_bits": q["data_bits"]})
      if r["prequential_complexity_bits"] is not None:
        points.append({**base, "kind": "prequential", "data_bits": r["data_bits"],
                       "complexity_bits": max(r["prequential_complexity_bits"], 0.0)})
  return [p for p in points if np.isfinite(p["complexity_bits"]) and np.isfinite(p["data_bits"])]


def _two_part_summary(run: dict) -> dict | None:
  """The empirical structure function (lower hull of the model points) and the best code."""
  points = two_part_points(run)
  if not points:
    return None
  c = np.array([p["complexity_bits"] for p in points])
  d = np.array([p["data_bits"] for p in points])
  hull_c, hull_d = ksf.lower_convex_hull(c, d)
  best = points[ksf.best_two_part(c, d)]
  per_model = {}
  for (width, seed), rows in run["ksf"].items():
    last = rows[-1]
    q = min(last["quantised"], key=lambda q: q["complexity_bits"] + q["data_bits"])
    per_model[f"{width}/{seed}"] = {
        "step": last["step"], "data_bits": last["data_bits"],
        "prequential_complexity_bits": last["prequential_complexity_bits"],
        "best_quantised": {**q, "total_bits": q["complexity_bits"] + q["data_bits"]}}
  return {"data_tokens": next(iter(run["ksf"].values()))[-1]["data_tokens"],
          "hull": [[float(a), float(b)] for a, b in zip(hull_c, hull_d)],
          "best": {**best, "total_bits": best["complexity_bits"] + best["data_bits"]},
          "final": per_model}


def _finetune_summary(run: dict) -> dict | None:
  """Acquisition of injected facts, forgetting per pretraining bin, hallucination change."""
  if not run["config"].get("init_from") or not run["probes"]:
    return None
  out = {"init_from": run["config"]["init_from"],
         "replay_fraction": run["config"]["finetune"]["replay_fraction"], "models": {}}
  for (width, seed), rows in run["probes"].items():
    before, after = rows[0], rows[-1]
    injected = after.get("injected", {})
    shared = sorted(set(before["knowledge"]) & set(after["knowledge"]), key=bin_start)
    fresh = lambda r: r["hallucination"].get("fresh", {}).get("confident")
    out["models"][f"{width}/{seed}"] = {
        "width": width, "seed": seed, "before_step": before["step"], "after_step": after["step"],
        "injected_accuracy": {k: v["accuracy"] for k, v in injected.items()},
        "repetitions_for_50pct": frequency_at_half_accuracy(injected) if injected else None,
        "forgetting": {b: after["knowledge"][b]["accuracy"] - before["knowledge"][b]["accuracy"]
                       for b in shared},
        "fresh_confident_before": fresh(before), "fresh_confident_after": fresh(after),
        "fresh_confident_change": (fresh(after) - fresh(before)
                                   if fresh(after) is not None and fresh(before) is not None
                                   else None),
    }
  return out


def _oracle_summary(o: dict) -> dict | None:
  if not o:
    return None
  total = np.array(o["complexity_bits"]) + np.array(o["data_bits"])
  best = int(np.argmin(total))
  return {"data_bits_m0": o["data_bits"][0], "complexity_bits_all": o["complexity_bits"][-1],
          "data_bits_all": o["data_bits"][-1], "best_m": o["m"][best],
          "best_total_bits": float(total[best])}


# ------------------------------------------------------------- a Gekhman design


def _arm_outcome(probe_rows: dict) -> dict:
  """One arm's held-out accuracy per model: early stop (the best eval after step 0, first
  if tied), convergence (the last eval), pretrained (step 0), and the fit of its own set at
  the last eval (all examples; Known and Unknown ones apart)."""
  out = {k: {} for k in ("early_stop", "early_stop_step", "convergence", "convergence_step",
                         "pretrained", "fit", "fit_known", "fit_unknown")}
  out["n"] = None
  for key, rows in probe_rows.items():
    m = model_name(key)
    held = [(r["step"], r["heldout"]["accuracy"]) for r in rows if "heldout" in r]
    if not held:
      continue
    after = [h for h in held if h[0] > 0] or held
    best = max(after, key=lambda h: h[1])
    out["early_stop"][m], out["early_stop_step"][m] = best[1], best[0]
    out["convergence"][m], out["convergence_step"][m] = held[-1][1], held[-1][0]
    out["pretrained"][m] = held[0][1] if held[0][0] == 0 else None
    last = rows[-1]
    parts = [last[k] for k in ("set_known", "set_unknown") if k in last]
    total = sum(p["n"] for p in parts)
    out["fit"][m] = sum(p["n"] * p["accuracy"] for p in parts) / total if total else None
    out["fit_known"][m] = last.get("set_known", {}).get("accuracy")
    out["fit_unknown"][m] = last.get("set_unknown", {}).get("accuracy")
    out["n"] = last["heldout"]["n"]
  return out


def design_summary(workdir: str) -> dict:
  """The numbers of a Gekhman design's report (WORKDIR/report/summary.json): per arm
  (`unknown_share`: '0', '0.25', ..., '1', 'control') the held-out accuracy of every model
  at early stop and at convergence, with n (`_arm_outcome`); the SliCK categories of the
  Known, held-out and Unknown examples per model; the claims (`claims_gekhman`). Arms not
  run yet are left out."""
  with open(os.path.join(workdir, "config.json")) as f:
    config = json.load(f)
  with open(os.path.join(workdir, design_files.DESIGN_FILE)) as f:
    design = json.load(f)
  unknown_share = {}
  for arm in design_files.arm_names(config["finetune"]["unknown_shares"]):
    path = design_files.arm_dir(workdir, arm)
    if os.path.exists(os.path.join(path, "probes.jsonl")):
      unknown_share[arm] = _arm_outcome(load.load_run(path)["probes"])
  summary = {"design": "Gekhman et al. (2024)", "init_from": design["init_from"],
             "init_step": design["init_step"], "models": design["models"],
             "set_size": len(design["known"]["entity"]),
             "heldout_size": len(design["heldout"]["entity"]),
             "epochs": config["finetune"]["epochs"], "categories": design["categories"],
             "unknown_share": unknown_share}
  summary["claims"] = claims_probes.claims_gekhman(summary)
  return summary
