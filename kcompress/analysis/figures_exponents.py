"""Figures of the data and size laws (matplotlib, Agg, PNG): the Bayes code's law from the
stream, local exponents of models and reference learners, the size-law decomposition."""

from __future__ import annotations

import numpy as np

from kcompress.analysis.figures import pyplot, save


def bayes_law(result: dict, path: str) -> None:
  """Bayes name + value bits per sentence vs n (log-log; replicate mean), its floor-0 fit,
  the theory slope -(1 - alpha) and the exact expected new-entity rate (both scaled to the
  curve at the start of the fitted range); entity-choice bits and their limit E[H]."""
  plt = pyplot()
  c = result["curve"]
  n, k = np.array(c["n"]), np.array(c["knowledge"])
  fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
  ax.loglog(n, k, "o", ms=3, label="Bayes name + value bits / sentence (mean of streams)")
  p = result["parts"]["knowledge"]
  a, pred = result["exponent"], result["predicted"]
  ref = k[0] if k[0] > 0 else np.nan
  ax.loglog(n, ref * (n / n[0]) ** -a, "-", label=f"fit (floor 0): a = {a:.3f} "
            f"[{p['ci'][0]:.3f}, {p['ci'][1]:.3f}]")
  ax.loglog(n, ref * (n / n[0]) ** -pred, "--", label=f"theory: 1 - alpha = {pred:.3f}")
  e = np.array(c["expected_new_rate"])
  ax.loglog(n, e * ref / e[0], ":", label="exact E[P(new entity at n)] (scaled)")
  ax.set_xlabel("sentence index n")
  ax.set_ylabel("bits per sentence")
  ax.set_title(f"alpha = {result['alpha']:g}: {result['verdict']}", fontsize=9)
  ax.legend(fontsize=7)
  bx.semilogx(n, c["entity"], "o", ms=3, label="entity-choice bits / sentence")
  bx.axhline(result["entity_limit_bits"], ls="--", color="k",
             label=f"E[H] = {result['entity_limit_bits']:.2f} bits")
  bx.set_xlabel("sentence index n")
  bx.set_ylabel("bits per sentence")
  bx.legend(fontsize=7)
  save(fig, path)


def local_exponents(series: dict, alpha: float, path: str) -> None:
  """Local exponent -d log(excess) / d log(tokens) per model (solid) and its threshold
  learner (dashed, same colour; `series`: {label: {x, a, start}}), beside 1 - alpha; the
  fitted ranges' starts as dotted lines."""
  if not series:
    return
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(7, 4))
  models = [k for k in series if not k.startswith("learner")]
  for label, s in series.items():
    learner = label.startswith("learner")
    owner = next((i for i, m in enumerate(models) if m.split()[-1] in label), 0)
    color = f"C{owner}"
    ax.semilogx(s["x"], s["a"], "--" if learner else "-", color=color, label=label,
                lw=1 if learner else 1.8)
    if s.get("start"):
      ax.axvline(s["start"], color=color, lw=0.6, ls=":")
  ax.axhline(1 - alpha, color="k", lw=1, label=f"1 - alpha = {1 - alpha:g}")
  ax.set_xlabel("tokens seen")
  ax.set_ylabel("local exponent (quarter-decade windows)")
  ax.set_title("knowledge excess over the Bayes code: local slope", fontsize=9)
  save(fig, path, legend_from=ax, legend_rows=3)


def size_law(decomp: dict, path: str) -> None:
  """Stored entities m vs parameters, value excess vs m (models at their last eval, hollow
  where still learning, and the top-m oracle on the same stream)."""
  models = decomp.get("models") or []
  if not models:
    return
  plt = pyplot()
  fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
  for limited, label in ((True, "capacity-limited"), (False, "still learning (left out)")):
    sel = [r for r in models if r.get("capacity_limited", True) == limited
           and r["stored_entities"] > 0]
    if not sel:
      continue
    face = None if limited else "none"
    ax.loglog([r["params_body"] for r in sel], [r["stored_entities"] for r in sel], "o",
              color="C0", mfc=face, label=label)
    bx.loglog([r["stored_entities"] for r in sel], [r["value_excess"] for r in sel], "o",
              color="C0", mfc=face, label=f"models, {label}")
    for r in sel:
      ax.annotate(f"w{r['width']}", (r["params_body"], r["stored_entities"]), fontsize=7)
  ax.set_xlabel("parameters (without embeddings)")
  ax.set_ylabel("stored entities m (probes)")
  if ax.lines:
    ax.legend(fontsize=7)
  o = decomp.get("oracle") or {}
  if o.get("m"):
    bx.loglog(o["m"], o["value_excess"], "-", label="oracle: the m most frequent entities")
  bx.set_xlabel("stored entities m")
  bx.set_ylabel("value excess (bits per value token)")
  bx.legend(fontsize=7)
  save(fig, path)


def report_figures(summary: dict, out_dir: str) -> list[str]:
  """local_exponent.png (the data-exponent rows' local exponents, models and their threshold
  learners) and size_law.png (the size rows' points and the oracle) in `out_dir`, from the
  claims of `summary`; returns the names written."""
  import os
  rows = summary.get("claims") or []
  series = {}
  for c in rows:
    if c["id"] != "data_exponent_model" or not c.get("local_exponents"):
      continue
    series[f"model {c['model']}"] = dict(c["local_exponents"],
                                         start=(c.get("fit_range_tokens") or [None])[0])
    c0 = c.get("reference_c")
    ref = (c.get("reference_local") or {}).get(str(c0)) if c0 else None
    if ref:
      series[f"learner c={c0} ({c['model']})"] = ref
  written = []
  if series:
    local_exponents(series, summary["alpha"], os.path.join(out_dir, "local_exponent.png"))
    written.append("local_exponent.png")
  size = next((c for c in rows if c["id"] == "size_stored_entities" and c.get("points")), None)
  if size:
    oracle = summary.get("size_oracle") or {}
    size_law({"models": size["points"], "oracle": oracle}, os.path.join(out_dir, "size_law.png"))
    written.append("size_law.png")
  return written
