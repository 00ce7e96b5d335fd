"""Cross-run comparison: the claims of several runs side by side, and the exponent-vs-alpha
picture beside the theory lines 1 - alpha (data) and 1/alpha - 1 (size) (SPEC section 7).

`compare_runs(workdirs, out_dir)` writes OUT/summary.json ({runs, claims, exponents}),
OUT/report.md (exponents table and the merged claims table) and OUT/exponents.png.
numpy/matplotlib only; deterministic (runs ordered by (alpha, workdir), keys sorted, the
claims' bootstraps seeded), so rerunning reproduces summary.json byte for byte.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from kcompress import theory
from kcompress.analysis import claims, figures, load
from kcompress.analysis import exponents as exponents_lib
from kcompress.analysis import summary as summary_lib
from kcompress.analysis.claims_rule import verdict


def _clean(x):
  return float(x) if x is not None and math.isfinite(x) else None


CHECKS = ("reference_exponent", "reference_ci", "reference_c", "free_floor_exponent",
          "cumulative_exponent", "local_exponent_end", "decades")


def _point(c: dict) -> dict:
  """{measured, ci, verdict} of one claim row (exponents: dimensionless), with the checks
  the data-exponent rows carry."""
  return {"measured": c["measured"], "ci": c["ci"], "verdict": c["verdict"],
          **{k: c[k] for k in CHECKS if k in c}}


def run_exponents(workdir: str, summary: dict) -> dict:
  """One run's data exponents (per model: knowledge and value excess, and of the Bayes code)
  and size exponent, with their 95% intervals, verdicts and checks, beside the predictions
  1 - alpha and 1/alpha - 1."""
  alpha = summary["alpha"]
  rows = summary.get("claims", [])
  pick = lambda cid: [c for c in rows if c["id"] == cid]
  bayes, size = pick("data_exponent_bayes"), pick("size_exponent")
  return {"workdir": workdir, "alpha": alpha,
          "predicted_data": _clean(theory.data_scaling_exponent(alpha)),
          "predicted_size": _clean(theory.size_scaling_exponent(alpha)),
          "data_models": {c["model"]: _point(c) for c in pick("data_exponent_model")},
          "value_models": {c["model"]: _point(c) for c in pick("data_exponent_model_value")},
          "data_bayes": _point(bayes[0]) if bayes else None,
          "size": _point(size[0]) if size else None}


def merge_runs_exponents(exponents_list: list[dict], key: str = "data_models") -> dict:
  """Per (alpha, width): the runs' exponents merged (runs differing in data and init seed).
  >= 2 runs: Student's t interval over the runs' point exponents (`exponents.over_runs`),
  interval "over runs"; 1 run: its own interval, "within-run". Verdict by the claims' rule
  against 1 - alpha. {(alpha, width): {runs, measured, ci, interval, verdict, reason,
  reference (the same over the runs' reference_exponent)}}."""
  groups: dict = {}
  for e in exponents_list:
    for m, p in (e.get(key) or {}).items():
      if p and p.get("measured") is not None:
        groups.setdefault((e["alpha"], int(m.split("/")[0])), []).append(p)
  out = {}
  for (alpha, width), ps in sorted(groups.items()):
    pred = theory.data_scaling_exponent(alpha)
    if len(ps) >= 2:
      r = exponents_lib.over_runs([p["measured"] for p in ps])
      ci, interval = [r["ci"][0], r["ci"][1]], "over runs"
      measured = r["a"]
    else:
      ci, interval, measured = ps[0]["ci"], "within-run", ps[0]["measured"]
    v, reason = verdict(pred, ci, "point")
    refs = [p.get("reference_exponent") for p in ps if p.get("reference_exponent") is not None]
    ref = exponents_lib.over_runs(refs) if refs else None
    out[(alpha, width)] = {"runs": len(ps), "measured": measured, "ci": ci,
                           "interval": interval, "verdict": v, "reason": reason,
                           "predicted": pred,
                           "reference": ({"measured": ref["a"], "ci": list(ref["ci"]),
                                          "runs": ref["runs"]} if ref else None)}
  return out


def compare_runs(workdirs, out_dir: str, *, summaries: list[dict] | None = None) -> dict:
  """Writes OUT/{summary.json, report.md, exponents.png}; returns the summary.json dict.

  summaries: each run's report summary, if already computed (else summarised from its files).
  """
  workdirs = list(workdirs)
  if summaries is None:
    summaries = [summary_lib.summarize(load.load_run(w)) for w in workdirs]
  runs = sorted(zip(workdirs, summaries), key=lambda ws: (ws[1]["alpha"], ws[0]))
  out = {"runs": [], "claims": [], "exponents": []}
  for w, s in runs:
    rows = s.get("claims", [])
    out["runs"].append({"workdir": w, "alpha": s["alpha"], "claims": rows,
                        "verdicts": claims.verdict_counts(rows)})
    out["claims"] += [{**c, "workdir": w, "alpha": s["alpha"]} for c in rows]
    out["exponents"].append(run_exponents(w, s))
  out["merged"] = {key: [{"alpha": a, "width": wd, **v}
                         for (a, wd), v in merge_runs_exponents(out["exponents"], key).items()]
                   for key in ("data_models", "value_models")}
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, "summary.json"), "w") as f:
    json.dump(out, f, indent=2, sort_keys=True, default=lambda x: None)
  figure_exponents(out["exponents"], os.path.join(out_dir, "exponents.png"))
  with open(os.path.join(out_dir, "report.md"), "w") as f:
    f.write("\n".join(_markdown(out)) + "\n")
  return out


def _interval(p: dict | None) -> str:
  if not p or p["measured"] is None:
    return "n/a"
  ci = p["ci"]
  txt = f"{p['measured']:.3g}"
  if ci and None not in ci:
    txt += f" [{ci[0]:.3g}, {ci[1]:.3g}]"
  return f"{txt} ({p['verdict']})"


def _markdown(out: dict) -> list[str]:
  md = ["# kcompress comparison", ""]
  for r in out["runs"]:
    v = r["verdicts"]
    md.append(f"- `{r['workdir']}` (alpha = {r['alpha']}): {v['consistent']} consistent, "
              f"{v['inconsistent']} inconsistent, {v['inconclusive']} inconclusive")
  md += ["", "## Exponents vs alpha", "![](exponents.png)", "",
         "Data exponent: knowledge excess per knowledge token (models) and the Bayes code's "
         "knowledge bits (Bayes), fitted E + A t^-a after syntax is learned; size exponent: "
         "final knowledge excess vs parameters over capacity-limited widths (95% intervals).", "",
         "| workdir | alpha | predicted 1 - alpha | data exponent (models) | data exponent (Bayes) "
         "| predicted 1/alpha - 1 | size exponent |", "|---|---|---|---|---|---|---|"]
  for e in out["exponents"]:
    models = "; ".join(f"{m}: {_interval(p)}" for m, p in e["data_models"].items()) or "n/a"
    fmt = lambda x: "n/a" if x is None else f"{x:.3g}"
    md.append(f"| `{e['workdir']}` | {e['alpha']} | {fmt(e['predicted_data'])} | {models} | "
              f"{_interval(e['data_bayes'])} | {fmt(e['predicted_size'])} | "
              f"{_interval(e['size'])} |")
  md += ["", "## Data exponents merged over runs (seeds)", "",
         "Per alpha and width: runs that differ in data and init seed merged by Student's t "
         "over their floor-0 exponents (\"over runs\"), or one run's own interval "
         "(\"within-run\"); the threshold learner at each run's 50%-accuracy count c, merged "
         "the same way, is the finite-range prediction beside 1 - alpha.", "",
         "| quantity | alpha | width | runs | exponent [95% CI] | interval | 1 - alpha | "
         "threshold learner | verdict |", "|---|---|---|---|---|---|---|---|---|"]
  for key, label in (("data_models", "name + value excess"), ("value_models", "value excess")):
    for r in out["merged"][key]:
      ref = r["reference"]
      reft = (f"{ref['measured']:.3g}" + (f" [{ref['ci'][0]:.3g}, {ref['ci'][1]:.3g}]"
                                           if ref["runs"] > 1 else "") if ref else "n/a")
      md.append(f"| {label} | {r['alpha']} | {r['width']} | {r['runs']} | {r['measured']:.3g} "
                f"[{r['ci'][0]:.3g}, {r['ci'][1]:.3g}] | {r['interval']} | "
                f"{r['predicted']:.3g} | {reft} | {r['verdict']} |")
  md += ["", "## Claims and verdicts (all runs)", "",
         *claims.markdown_table(out["claims"], extra=("alpha", "workdir"))]
  return md


def figure_exponents(exponents: list[dict], path: str) -> None:
  """Two panels: data exponent vs alpha (each run's per-width model exponents and the Bayes
  exponent, 95% error bars) beside 1 - alpha; size exponent vs alpha beside 1/alpha - 1.
  Hollow markers: the verdict was inconclusive."""
  plt = figures.pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
  widths = sorted({int(m.split("/")[0]) for e in exponents for m in e["data_models"]})
  colors = {w: f"C{i}" for i, w in enumerate(widths)}
  labelled = set()

  def draw(ax, x, p, color, marker, label):
    if not p or p["measured"] is None:
      return
    y, ci = p["measured"], p["ci"]
    err = None
    if ci and None not in ci:
      err = [[max(y - ci[0], 0.0)], [max(ci[1] - y, 0.0)]]
    hollow = p["verdict"] == "inconclusive"
    ax.errorbar([x], [y], yerr=err, fmt=marker, color=color, capsize=3, ms=6,
                mfc="none" if hollow else color,
                label=None if (ax, label) in labelled else label)
    labelled.add((ax, label))

  for e in exponents:
    a = e["alpha"]
    for m, p in e["data_models"].items():
      w = int(m.split("/")[0])
      dx = 0.012 * (widths.index(w) - (len(widths) - 1) / 2)
      draw(axes[0], a + dx, p, colors[w], "o", f"models, width {w}")
    draw(axes[0], a, e["data_bayes"], "k", "s", "Bayes code")
    draw(axes[1], a, e["size"], "C3", "D", "capacity-limited widths")
  grid = np.linspace(0.02, 0.98, 97)
  axes[0].plot(grid, 1 - grid, "k--", lw=1, label="1 - alpha")
  grid = np.linspace(0.15, 0.95, 81)
  axes[1].plot(grid, 1 / grid - 1, "k--", lw=1, label="1/alpha - 1")
  if not any(e["size"] and e["size"]["measured"] is not None for e in exponents):
    axes[1].text(0.5, 0.9, "no size exponent measured (see report.md)", ha="center",
                 transform=axes[1].transAxes, fontsize=8)
  axes[0].set_title("data exponent (knowledge part) vs alpha; hollow: inconclusive", fontsize=9)
  axes[1].set_title("size exponent vs alpha; hollow: inconclusive", fontsize=9)
  for ax in axes:
    ax.set_xlabel("alpha (Pitman-Yor discount)")
    ax.set_ylabel("exponent")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=7)
  figures.save(fig, path)
