"""The report of a run, rebuilt from its saved files alone (numpy, scipy, matplotlib).

Reads WORKDIR/{config.json, metrics.jsonl, probes.jsonl, ksf.jsonl, compressors.json,
oracle_ksf.json, stream_stats.json} and writes
WORKDIR/report/: PNG figures, `report.md` (the table of claims and verdicts, then
figures with readings generated from the numbers) and `summary.json` (headline
figures and `claims`, see kcompress.analysis.claims). Deterministic: the same files
give the same summary.json.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict

import numpy as np

from kcompress import theory
from kcompress.analysis import claims, fits, ksf

ROLES = ("name", "syntax", "value", "end")


def _rows(path: str) -> list[dict]:
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def load_run(workdir: str) -> dict:
  """Everything a report needs, from the workdir's files."""
  with open(os.path.join(workdir, "config.json")) as f:
    config = json.load(f)
  metrics = _rows(os.path.join(workdir, "metrics.jsonl"))
  if not metrics:
    raise ValueError(f"{workdir}: no metrics.jsonl rows; is it a kcompress workdir?")
  def optional(name):
    path = os.path.join(workdir, name)
    if not os.path.exists(path):
      return {}
    with open(path) as f:
      return json.load(f)
  by_model = defaultdict(list)
  for r in metrics:
    by_model[(r["width"], r["seed"])].append(r)
  for rows in by_model.values():
    rows.sort(key=lambda r: r["step"])
  probes = defaultdict(list)
  for r in _rows(os.path.join(workdir, "probes.jsonl")):
    probes[(r["width"], r["seed"])].append(r)
  ksf = defaultdict(list)
  for r in _rows(os.path.join(workdir, "ksf.jsonl")):
    ksf[(r["width"], r["seed"])].append(r)
  return {"config": config, "models": dict(sorted(by_model.items())),
          "ksf": dict(sorted(ksf.items())),
          "probes": dict(sorted(probes.items())), "compressors": optional("compressors.json"),
          "oracle": optional("oracle_ksf.json"), "stream_stats": optional("stream_stats.json")}


def _series(rows: list[dict], key: str) -> np.ndarray:
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


def first_within(model: np.ndarray, floor: np.ndarray, steps: np.ndarray, tol: float = 0.05):
  """First step where the (smoothed) model bits are within `tol` of the floor, else None."""
  hit = np.flatnonzero(model <= floor * (1 + tol))
  return int(steps[hit[0]]) if len(hit) else None


def frequency_at_half_accuracy(knowledge: dict) -> float | None:
  """Smallest occurrence count (bin's lower edge) whose accuracy reaches 50%, else None."""
  for label, v in sorted(knowledge.items(), key=lambda kv: claims.bin_start(kv[0])):
    if v["accuracy"] >= 0.5:
      return float(claims.bin_start(label))
  return None


def capacity(probe_row: dict, params: int) -> dict | None:
  """Knowledge stored by one model at one eval (bits, and bits per unpadded parameter)."""
  c = probe_row.get("capacity")
  if not c:
    return None
  return {**c, "params": params, "bits_per_param": c["stored_bits"] / params,
          "fraction_stored": (c["stored_bits"] / c["fact_entropy_bits"]
                              if c["fact_entropy_bits"] else None)}


def summarize(run: dict) -> dict:
  """The headline numbers of a run (what summary.json holds)."""
  cfg = run["config"]
  alpha = cfg["data"]["alpha"]
  window = _window(run)
  per_model, finals, params = {}, [], []
  for (width, seed), rows in run["models"].items():
    steps = np.array([r["step"] for r in rows])
    tokens = np.array([r["tokens_seen"] for r in rows], float)
    tail = slice(-max(1, len(rows) // 10), None)
    final = {role: float(np.nanmean(_series(rows, f"bits_{role}")[tail])) for role in ROLES}
    final_bayes = {role: float(np.nanmean(_series(rows, f"bayes_{role}")[tail])) for role in ROLES}
    loss = smooth(_series(rows, "loss_bits"), window)
    start = len(rows) // 10
    try:
      fit = fits.bootstrap_power_law(tokens[start:], loss[start:], num_boot=100, seed=0)
      data_fit = fit.to_json()
    except (ValueError, RuntimeError):
      data_fit = None
    syn = smooth(_series(rows, "bits_syntax"), window)
    syn_floor = smooth(_series(rows, "bayes_syntax"), window)
    val = smooth(_series(rows, "bits_value"), window)
    val_floor = smooth(_series(rows, "bayes_value"), window)
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
        "knowledge_capacity": capacity(last_probe, last["params"]) if last_probe else None,
        "frozen_step": last["frozen_step"],
    }
    finals.append(float(np.nanmean(_series(rows, "loss_bits")[tail])))
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
      "two_part": _ksf_summary(run),
      "finetune": _finetune_summary(run),
      "hallucination_floor": _floor_summary(run, per_model),
      "tokens": run["compressors"].get("num_tokens"),
  }
  summary["claims"] = claims.run_claims(run, summary)
  return summary


def _floor_summary(run: dict, per_model: dict) -> dict | None:
  """Good-Turing figures of the revealed facts at the last eval, beside each model's
  confident-answer rate on never-seen entities (Kalai & Vempala: a calibrated model
  hallucinates at about the singleton rate)."""
  rows = next(iter(run["probes"].values()), [])
  if not rows or "facts" not in rows[-1]:
    return None
  f = rows[-1]["facts"]
  return {"step": rows[-1]["step"], "alpha": run["config"]["data"]["alpha"],
          "singleton_fraction": f["singleton_fraction"], "missing_mass": f["missing_mass"],
          "revealed_facts": f["revealed"],
          "fresh_confident_rate": {str(m["width"]): m["fresh_confident_rate"]
                                   for m in per_model.values()}}


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


def _ksf_summary(run: dict) -> dict | None:
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
    shared = sorted(set(before["knowledge"]) & set(after["knowledge"]), key=claims.bin_start)
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


# ----------------------------------------------------------------------- figures


def _plt():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def _save(fig, path: str, legend_from=None, legend_rows: int = 2) -> None:
  """Saves at 120 dpi; `legend_from` (an axis): its legend goes below all panels."""
  if legend_from is not None:
    handles, labels = legend_from.get_legend_handles_labels()
    ncol = -(-len(labels) // legend_rows)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06 * legend_rows + 0.02, 1, 1))
  else:
    fig.tight_layout()
  fig.savefig(path, dpi=120)
  _plt().close(fig)


def _window(run: dict) -> int:
  """Smoothing window of the per-step curves: 1/30 of the run."""
  return max(1, len(next(iter(run["models"].values()))) // 30)


def figure_code_lengths(run: dict, path: str) -> None:
  plt = _plt()
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for (width, seed), rows in run["models"].items():
    t = np.array([r["tokens_seen"] for r in rows])
    ax.plot(t, _series(rows, "preq_bits") / t, label=f"width {width} (seed {seed})")
  rows = next(iter(run["models"].values()))
  t = np.array([r["tokens_seen"] for r in rows])
  ax.plot(t, _series(rows, "bayes_bits") / t, "k--", lw=2, label="Bayes code (floor)")
  ranked = sorted(run["compressors"].get("bits", {}).items(), key=lambda kv: kv[1])
  for j, (name, bits) in enumerate(ranked):
    y = bits / run["compressors"]["num_tokens"]
    ax.axhline(y, ls=":", lw=1, color="gray")
    ax.annotate(f"{name} {y:.2f}", (t[0] * 1.5 ** j, y), fontsize=7, ha="left", va="bottom",
                color="gray")
  ax.set_xscale("log")
  ax.set_xlabel("tokens seen")
  ax.set_ylabel("cumulative code length / tokens (bits per token)")
  ax.set_title("Prequential code vs Bayes code and classical compressors")
  ax.legend(fontsize=8)
  _save(fig, path)


def figure_roles(run: dict, path: str) -> None:
  plt = _plt()
  fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharex=True)
  window = _window(run)
  for ax, role in zip(axes, ("syntax", "name", "value")):
    for (width, seed), rows in run["models"].items():
      t = np.array([r["tokens_seen"] for r in rows])
      ax.plot(t, smooth(_series(rows, f"bits_{role}"), window), label=f"width {width}")
    rows = next(iter(run["models"].values()))
    t = np.array([r["tokens_seen"] for r in rows])
    ax.plot(t, smooth(_series(rows, f"bayes_{role}"), window), "k--", lw=2, label="Bayes")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("tokens seen")
    ax.set_ylabel(f"{role} bits per token")
    ax.set_title(f"{role} tokens")
  axes[0].legend(fontsize=8)
  _save(fig, path)


def figure_knowledge(run: dict, path: str) -> None:
  plt = _plt()
  models = [k for k in run["probes"]]
  if not models:
    return
  fig, axes = plt.subplots(1, len(models) + 1, figsize=(3.4 * (len(models) + 1), 3.8))
  labels = sorted({lab for rows in run["probes"].values() for r in rows for lab in r["knowledge"]},
                  key=claims.bin_start)
  for ax, key in zip(axes, models):
    rows = run["probes"][key]
    grid = np.array([[r["knowledge"].get(lab, {}).get("accuracy", np.nan) for lab in labels]
                     for r in rows])
    im = ax.imshow(grid.T, origin="lower", aspect="auto", vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r["step"] for r in rows], rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlabel("step")
    ax.set_ylabel("occurrences so far")
    ax.set_title(f"width {key[0]}: fact accuracy", fontsize=9)
  fig.colorbar(im, ax=axes[-2], label="top-1 accuracy")
  ax = axes[-1]
  for key in models:
    last = run["probes"][key][-1]["knowledge"]
    xs = [claims.bin_start(l) for l in labels if l in last]
    ax.plot(xs, [last[l]["accuracy"] for l in labels if l in last], "o-", label=f"width {key[0]}")
  ax.set_xscale("log", base=2)
  ax.set_xlabel("entity occurrences (bin start)")
  ax.set_ylabel("top-1 accuracy at the last eval")
  ax.set_ylim(-0.02, 1.02)
  ax.legend(fontsize=7)
  _save(fig, path)


def figure_hallucination(run: dict, path: str) -> None:
  plt = _plt()
  if not run["probes"]:
    return
  fig, axes = plt.subplots(1, 2, figsize=(11, 5))
  for key, rows in run["probes"].items():
    steps = [r["step"] for r in rows]
    for ax, metric in zip(axes, ("confident", "kl")):
      ax.plot(steps, [r["hallucination"]["fresh"][metric] for r in rows], "o-",
              label=f"width {key[0]} (fresh)")
  first = next(iter(run["probes"].values()))
  if "facts" in first[0]:
    axes[0].plot([r["step"] for r in first], [r["facts"]["singleton_fraction"] for r in first],
                 "k:", lw=2, label="singleton fraction of revealed facts (Good-Turing floor)")
    axes[0].axhline(run["config"]["data"]["alpha"], color="0.5", ls="-.",
                    label="alpha (singleton-fraction limit)")
  bayes = first[0]["bayes_hallucination"]
  for ax, metric, label in zip(axes, ("confident", "kl"),
                               ("confident-answer rate on unseen entities",
                                "KL(model || H_a) on unseen entities (bits)")):
    ax.axhline(bayes[metric], color="k", ls="--", label="Bayes predictor")
    ax.set_xlabel("step")
    ax.set_ylabel(label)
  axes[0].set_ylim(-0.02, 1.02)
  _save(fig, path, legend_from=axes[0], legend_rows=3)


REFERENCE_BITS_PER_PARAM = 2.0   # Allen-Zhu & Li (2024): ~2 bits/param at ~1000 exposures


def figure_capacity(run: dict, path: str) -> None:
  """Knowledge stored (bits per unpadded parameter) vs step, and by occurrence bin."""
  plt = _plt()
  if not any("capacity" in r for rows in run["probes"].values() for r in rows):
    return
  fig, axes = plt.subplots(1, 2, figsize=(11, 5))
  for (width, seed), rows in run["probes"].items():
    rows = [r for r in rows if "capacity" in r]
    bpp = np.array([r["capacity"]["stored_bits"] / r["params"] for r in rows])
    axes[0].plot([r["step"] for r in rows], np.where(bpp > 0, bpp, np.nan), "o-", ms=3,
                 label=f"width {width} ({rows[-1]['params']:,} params)")
    last = rows[-1]["knowledge"]
    labels = sorted((l for l in last if last[l]["fact_entropy_bits"] > 0), key=claims.bin_start)
    axes[1].plot([claims.bin_start(l) for l in labels],
                 [last[l]["stored_bits"] / last[l]["fact_entropy_bits"] for l in labels], "o-",
                 label=f"width {width}")
  axes[0].axhline(REFERENCE_BITS_PER_PARAM, color="k", ls="--",
                  label="~2 bits/param (facts seen ~1000 times, Allen-Zhu & Li)")
  axes[0].set_yscale("log")
  axes[0].set_xlabel("step")
  axes[0].set_ylabel("knowledge stored (bits / parameter)")
  axes[0].set_title("stored fact bits per parameter", fontsize=9)
  axes[1].axvline(1000, color="0.5", ls=":", label="~1000 exposures")
  axes[1].set_xscale("log", base=2)
  axes[1].set_ylim(-0.02, 1.02)
  axes[1].set_xlabel("entity occurrences so far (bin start)")
  axes[1].set_ylabel("stored bits / fact entropy")
  axes[1].set_title("share of each bin's fact entropy stored (last eval)", fontsize=9)
  axes[1].legend(fontsize=7, loc="upper left")
  _save(fig, path, legend_from=axes[0], legend_rows=3)


def figure_scaling(run: dict, summary: dict, path: str) -> None:
  plt = _plt()
  fig, axes = plt.subplots(1, 2, figsize=(11, 4))
  window = _window(run)
  for (width, seed), rows in run["models"].items():
    t = np.array([r["tokens_seen"] for r in rows], float)
    line, = axes[0].plot(t, smooth(_series(rows, "loss_bits"), window), alpha=0.7,
                         label=f"width {width}")
    fit = summary["models"][f"{width}/{seed}"]["data_fit"]
    if fit:   # drawn over the fitted range only (the first 10% of steps are left out)
      tf = t[len(rows) // 10:]
      axes[0].plot(tf, fit["E"] + fit["A"] * tf ** (-fit["a"]), "--", color=line.get_color())
  axes[0].set_xscale("log")
  axes[0].set_yscale("log")
  axes[0].set_xlabel("tokens seen")
  axes[0].set_ylabel("loss (bits per token)")
  axes[0].set_title(f"data scaling: fits E + A t^-a over the last 90% (dashed); predicted a = "
                    f"{summary['predicted_data_exponent']:.2f}", fontsize=9)
  axes[0].legend(fontsize=7)
  p = [m["params"] for m in summary["models"].values()]
  finals = [float(np.nanmean(_series(rows, "loss_bits")[-max(1, len(rows) // 10):]))
            for rows in run["models"].values()]
  axes[1].plot(p, finals, "o", label="final loss")
  if summary["size_fit"]:
    s = summary["size_fit"]
    grid = np.geomspace(min(p), max(p), 50)
    axes[1].plot(grid, s["E"] + s["A"] * grid ** (-s["a"]), "--",
                 label=f"fit: a = {s['a']:.2f} [{s['a_ci'][0]:.2f}, {s['a_ci'][1]:.2f}]")
  axes[1].set_xscale("log")
  axes[1].set_xlabel("parameters (unpadded)")
  axes[1].set_ylabel("final loss (bits per token)")
  axes[1].set_title("size scaling", fontsize=9)
  axes[1].legend(fontsize=7)
  _save(fig, path)


def figure_ksf(run: dict, path: str) -> None:
  """Two-part code points of every model and eval step, their lower hull (the empirical
  structure function), and the oracle structure function from ground truth."""
  plt = _plt()
  o, points = run["oracle"], two_part_points(run)
  if not o and not points:
    return
  fig, ax = plt.subplots(figsize=(11, 5))
  if o:
    c, d = np.array(o["complexity_bits"]), np.array(o["data_bits"])
    ax.plot(c, d, "k-", lw=1.5, label="oracle: syntax + m most frequent entities")
    for m in (1, 10, 100, 1000):
      if m in o["m"]:
        i = o["m"].index(m)
        ax.annotate(f"m={m}", (c[i], d[i]), fontsize=7, textcoords="offset points", xytext=(3, 3))
  widths = sorted({p["width"] for p in points})
  colors = {w: f"C{i}" for i, w in enumerate(widths)}
  for w in widths:
    for kind, marker in (("quantised", "o"), ("prequential", "x")):
      sel = [p for p in points if p["width"] == w and p["kind"].startswith(kind)]
      if sel:
        ax.scatter([p["complexity_bits"] for p in sel], [p["data_bits"] for p in sel], s=14,
                   marker=marker, color=colors[w], alpha=0.6,
                   label=f"width {w}: {'quantised params' if kind == 'quantised' else 'prequential estimate'}")
  if points:
    hc, hd = ksf.lower_convex_hull([p["complexity_bits"] for p in points],
                                   [p["data_bits"] for p in points])
    ax.plot(hc, hd, "r-", lw=2, alpha=0.7, label="empirical KSF (lower hull of model points)")
  ax.set_xscale("symlog", linthresh=100)
  ax.set_yscale("log")
  ax.set_xlabel("model complexity (bits)")
  ax.set_ylabel("data code of the run's tokens (bits)")
  ax.set_title("Structure function: two-part codes of the models vs the oracle", fontsize=10)
  ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
  _save(fig, path)


def figure_finetune(run: dict, summary: dict, path: str) -> None:
  """Injected-fact acquisition vs repetitions, forgetting by pretraining bin, hallucination."""
  ft = summary.get("finetune")
  if not ft:
    return
  plt = _plt()
  fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
  for i, ((width, seed), rows) in enumerate(run["probes"].items()):
    m, color = ft["models"][f"{width}/{seed}"], f"C{i}"
    inj = sorted(m["injected_accuracy"].items(), key=lambda kv: claims.bin_start(kv[0]))
    axes[0].plot([claims.bin_start(k) for k, _ in inj], [v for _, v in inj], "o-", color=color,
                 label=f"width {width}")
    before, after = rows[0]["knowledge"], rows[-1]["knowledge"]
    for probe, style, when in ((before, "--", "before"), (after, "-", "after")):
      labels = sorted(probe, key=claims.bin_start)
      axes[1].plot([claims.bin_start(b) for b in labels], [probe[b]["accuracy"] for b in labels], style,
                   marker="o", ms=3, color=color, label=f"width {width} {when}")
    axes[2].plot([r["step"] for r in rows],
                 [r["hallucination"].get("fresh", {}).get("confident", np.nan) for r in rows],
                 "o-", color=color, label=f"width {width}")
  bayes = next(iter(run["probes"].values()))[0]["bayes_hallucination"]["confident"]
  axes[2].axhline(bayes, color="k", ls="--", label="Bayes predictor")
  axes[0].set_xlabel("deliveries of the injected entity (bin start)")
  axes[0].set_ylabel("top-1 accuracy on its facts")
  axes[0].set_title("acquisition of injected facts (last eval)", fontsize=9)
  axes[1].set_xlabel("pretraining occurrences (bin start)")
  axes[1].set_ylabel("top-1 accuracy")
  axes[1].set_title("forgetting: before (dashed) vs after (solid) fine-tuning", fontsize=9)
  axes[2].set_xlabel("fine-tuning step")
  axes[2].set_ylabel("confident-answer rate on unseen entities")
  axes[2].set_title("hallucination during fine-tuning", fontsize=9)
  for ax in axes[:2]:
    ax.set_xscale("log", base=2)
    ax.set_ylim(-0.02, 1.02)
  for ax in axes:
    ax.legend(fontsize=7)
  _save(fig, path)


# ------------------------------------------------------------------------ report


def _readings(summary: dict) -> dict[str, str]:
  models = summary["models"]
  lines = {}
  ratio = ", ".join(f"width {m['width']}: {m['redundancy_ratio']:.3f}" for m in models.values()
                    if m["redundancy_ratio"])
  comp = summary["compressors_bits"]
  best = min(comp.items(), key=lambda kv: kv[1]) if comp else None
  lines["code"] = (f"Prequential code / Bayes code at the end of the stream: {ratio}. "
                   + (f"The best classical compressor ({best[0]}) needs "
                      f"{best[1] / summary['tokens']:.3f} bits/token." if best else ""))
  syn = [m["syntax_within_5pct_step"] for m in models.values()]
  val = [m["value_within_5pct_step"] for m in models.values()]
  lines["roles"] = (f"Syntax bits come within 5% of the Bayes floor at steps {syn}; value bits "
                    f"at steps {val} (None: not within the run). Final value bits/token: "
                    + ", ".join(f"width {m['width']}: {m['final_bits_per_token']['value']:.3f}"
                                f" (Bayes {m['final_bayes_bits_per_token']['value']:.3f})"
                                for m in models.values()) + ".")
  half = ", ".join(f"width {m['width']}: {m['frequency_at_50pct_accuracy']}" for m in models.values())
  lines["knowledge"] = (f"Occurrences needed for 50% top-1 accuracy on a revealed fact at the last "
                        f"eval: {half} (None: no bin reached 50%).")
  conf = ", ".join(f"width {m['width']}: {m['fresh_confident_rate']}" for m in models.values())
  floor = summary.get("hallucination_floor")
  lines["hallucination"] = (
      f"Confident-answer rate on never-seen entities at the last eval: {conf}. "
      + (f"Hallucination floor: {floor['singleton_fraction']:.3f} of the "
         f"{floor['revealed_facts']:,} revealed facts were seen exactly once (Good-Turing; "
         f"tends to alpha = {floor['alpha']} as the stream grows); the Good-Turing mass of "
         f"never-seen facts is {floor['missing_mass']:.4f}." if floor else ""))
  caps = [(m["width"], m["knowledge_capacity"]) for m in models.values() if m["knowledge_capacity"]]
  lines["capacity"] = (
      "Knowledge stored at the last eval (sum over revealed facts of max(0, prior bits - model "
      "bits of the true value)): " + "; ".join(
          f"width {w}: {c['stored_bits']:,.0f} bits of {c['fact_entropy_bits']:,.0f} "
          f"({c['bits_per_param']:.4f} bits/param)" for w, c in caps)
      + f". Reference: about {REFERENCE_BITS_PER_PARAM:g} bits/param for facts seen ~1000 times."
      if caps else "No capacity figures (no knowledge probes).")
  exps = ", ".join(f"width {m['width']}: {m['data_fit']['a']:.2f} "
                   f"[{m['data_fit']['a_ci'][0]:.2f}, {m['data_fit']['a_ci'][1]:.2f}]"
                   for m in models.values() if m["data_fit"])
  lines["scaling"] = (f"Fitted data exponents (loss vs tokens, 95% CI): {exps}; predicted for the "
                      f"knowledge part: 1 - alpha = {summary['predicted_data_exponent']:.2f}. "
                      + (f"Size exponent {summary['size_fit']['a']:.2f} [{summary['size_fit']['a_ci'][0]:.2f}, "
                         f"{summary['size_fit']['a_ci'][1]:.2f}]" if summary["size_fit"] else
                         "Too few widths for a size fit.")
                      + f" (predicted, in stored capacity: 1/alpha - 1 = "
                      f"{summary['predicted_size_exponent_in_capacity']:.2f}).")
  o = summary.get("oracle")
  lines["ksf"] = (f"Oracle: syntax alone (m = 0) codes the stream in {o['data_bits_m0']:,.0f} bits; "
                  f"storing every entity ({o['complexity_bits_all']:,.0f} bits of knowledge) "
                  f"leaves {o['data_bits_all']:,.0f}; the best two-part total "
                  f"{o['best_total_bits']:,.0f} bits stores the {o['best_m']} most frequent "
                  f"entities." if o else "No oracle_ksf.json in this workdir.")
  t = summary.get("two_part")
  if t:
    fin = "; ".join(
        f"width {k.split('/')[0]}: best quantised p={m['best_quantised']['precision']} "
        f"{m['best_quantised']['complexity_bits']:,.0f} + {m['best_quantised']['data_bits']:,.0f} "
        f"= {m['best_quantised']['total_bits']:,.0f} bits, prequential complexity "
        + (f"{m['prequential_complexity_bits']:,.0f}" if m["prequential_complexity_bits"] is not None
           else "n/a") + " bits" for k, m in t["final"].items())
    b = t["best"]
    lines["two_part"] = (
        f"Two-part codes of the {t['data_tokens']:,} training tokens at the last eval: {fin}. "
        f"The best point of the whole run is width {b['width']} at step {b['step']} "
        f"({b['kind']}): {b['complexity_bits']:,.0f} + {b['data_bits']:,.0f} = "
        f"{b['total_bits']:,.0f} bits. The empirical structure function has "
        f"{len(t['hull'])} hull vertices.")
  else:
    lines["two_part"] = "No ksf.jsonl in this workdir."
  ft = summary.get("finetune")
  if ft:
    per = []
    for m in ft["models"].values():
      worst = min(m["forgetting"].items(), key=lambda kv: kv[1]) if m["forgetting"] else None
      per.append(f"width {m['width']}: 50% acquisition at {m['repetitions_for_50pct']} "
                 f"deliveries; " + (f"largest accuracy drop {worst[1]:+.2f} in the {worst[0]} "
                                   f"bin; " if worst else "")
                 + f"confident answers on unseen entities {m['fresh_confident_before']} -> "
                 f"{m['fresh_confident_after']}")
    lines["finetune"] = (f"Fine-tuned from {ft['init_from']} with replay fraction "
                         f"{ft['replay_fraction']}: " + "; ".join(per) + ".")
  return lines


def write_report(workdir: str) -> dict:
  """Writes WORKDIR/report/{*.png, report.md, summary.json}; returns the summary."""
  run = load_run(workdir)
  out = os.path.join(workdir, "report")
  os.makedirs(out, exist_ok=True)
  summary = summarize(run)
  figure_code_lengths(run, os.path.join(out, "code_lengths.png"))
  figure_roles(run, os.path.join(out, "bits_by_role.png"))
  figure_scaling(run, summary, os.path.join(out, "scaling.png"))
  figure_knowledge(run, os.path.join(out, "knowledge.png"))
  figure_hallucination(run, os.path.join(out, "hallucination.png"))
  figure_capacity(run, os.path.join(out, "capacity.png"))
  figure_ksf(run, os.path.join(out, "ksf.png"))
  figure_finetune(run, summary, os.path.join(out, "finetune.png"))
  with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2, sort_keys=True, default=lambda x: None)
  r = _readings(summary)
  md = [f"# kcompress report: {workdir}", "",
        "## Claims and verdicts", "", *claims.markdown_table(summary["claims"]), "",
        "## Code lengths", "![](code_lengths.png)", "", r["code"], "",
        "## Bits by role", "![](bits_by_role.png)", "", r["roles"], "",
        "## Scaling", "![](scaling.png)", "", r["scaling"], "",
        "## Knowledge acquisition", "![](knowledge.png)", "", r["knowledge"], "",
        "## Hallucination", "![](hallucination.png)", "", r["hallucination"], "",
        "## Knowledge capacity", "![](capacity.png)", "", r["capacity"], "",
        "## Structure function", "![](ksf.png)", "", r["ksf"], "", r["two_part"], ""]
  if "finetune" in r:
    md += ["## Fine-tuning", "![](finetune.png)", "", r["finetune"], ""]
  with open(os.path.join(out, "report.md"), "w") as f:
    f.write("\n".join(md))
  summary["_readings"] = r
  return summary


def headline_lines(summary: dict) -> list[str]:
  lines = list(summary.get("_readings", {}).values())
  if summary.get("claims"):
    n = claims.verdict_counts(summary["claims"])
    lines.append(f"Claims: {n['consistent']} consistent, {n['inconsistent']} inconsistent, "
                 f"{n['inconclusive']} inconclusive (report.md, top).")
  return lines

