"""The report's figures (matplotlib, Agg backend, PNG at 120 dpi).

One function per figure, `name(run, path)` or `name(run, summary, path)` (run:
`load.load_run`'s dict; summary: `summary.summarize`'s); each writes one PNG, or nothing
when the run lacks the figure's inputs (probes, ksf.jsonl, fine-tuning). Code lengths and
losses in bits per token, two-part codes in bits.
"""

from __future__ import annotations

import numpy as np

from kcompress.analysis import ksf
from kcompress.analysis.load import bin_start
from kcompress.analysis.summary import (REFERENCE_BITS_PER_PARAM, column, smooth,
                                        smoothing_window, two_part_points)


def pyplot():
  """matplotlib.pyplot on the Agg backend (imported on first use)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def save(fig, path: str, legend_from=None, legend_rows: int = 2) -> None:
  """Saves at 120 dpi; `legend_from` (an axis): its legend goes below all panels."""
  if legend_from is not None:
    handles, labels = legend_from.get_legend_handles_labels()
    ncol = -(-len(labels) // legend_rows)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06 * legend_rows + 0.02, 1, 1))
  else:
    fig.tight_layout()
  fig.savefig(path, dpi=120)
  pyplot().close(fig)


def code_lengths(run: dict, path: str) -> None:
  """Cumulative prequential code per token of each model, the Bayes code, the compressors."""
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for (width, seed), rows in run["models"].items():
    t = np.array([r["tokens_seen"] for r in rows])
    ax.plot(t, column(rows, "preq_bits") / t, label=f"width {width} (seed {seed})")
  rows = next(iter(run["models"].values()))
  t = np.array([r["tokens_seen"] for r in rows])
  ax.plot(t, column(rows, "bayes_bits") / t, "k--", lw=2, label="Bayes code (floor)")
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
  save(fig, path)


def bits_by_role(run: dict, path: str) -> None:
  """Smoothed bits per token of syntax, name and value tokens, beside their Bayes floors."""
  plt = pyplot()
  fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharex=True)
  window = smoothing_window(run)
  for ax, role in zip(axes, ("syntax", "name", "value")):
    for (width, seed), rows in run["models"].items():
      t = np.array([r["tokens_seen"] for r in rows])
      ax.plot(t, smooth(column(rows, f"bits_{role}"), window), label=f"width {width}")
    rows = next(iter(run["models"].values()))
    t = np.array([r["tokens_seen"] for r in rows])
    ax.plot(t, smooth(column(rows, f"bayes_{role}"), window), "k--", lw=2, label="Bayes")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("tokens seen")
    ax.set_ylabel(f"{role} bits per token")
    ax.set_title(f"{role} tokens")
  axes[0].legend(fontsize=8)
  save(fig, path)


def knowledge(run: dict, path: str) -> None:
  """Fact accuracy by occurrence bin and step (one panel per model), and at the last eval."""
  plt = pyplot()
  models = [k for k in run["probes"]]
  if not models:
    return
  fig, axes = plt.subplots(1, len(models) + 1, figsize=(3.4 * (len(models) + 1), 3.8))
  labels = sorted({lab for rows in run["probes"].values() for r in rows for lab in r["knowledge"]},
                  key=bin_start)
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
    xs = [bin_start(l) for l in labels if l in last]
    ax.plot(xs, [last[l]["accuracy"] for l in labels if l in last], "o-", label=f"width {key[0]}")
  ax.set_xscale("log", base=2)
  ax.set_xlabel("entity occurrences (bin start)")
  ax.set_ylabel("top-1 accuracy at the last eval")
  ax.set_ylim(-0.02, 1.02)
  ax.legend(fontsize=7)
  save(fig, path)


def hallucination(run: dict, path: str) -> None:
  """Left: the sampled error on the stream's next prompts vs step per width, beside the Bayes
  predictor's sampled error, the missing mass of facts (N1/n) and each width's bound
  missing mass - delta (Kalai et al.). Right: overconfidence on never-seen entities
  (Zucchet et al.): the confident-answer rate per width, beside the Bayes predictor's."""
  plt = pyplot()
  if not run["probes"]:
    return
  fig, axes = plt.subplots(1, 2, figsize=(11, 5))
  for i, (key, rows) in enumerate(run["probes"].items()):
    steps = [r["step"] for r in rows]
    sampled = [r.get("sampled") or {} for r in rows]
    if any(sampled):
      axes[0].plot(steps, [s.get("error", np.nan) for s in sampled], "o-", color=f"C{i}",
                   label=f"width {key[0]}: sampled error")
      axes[0].plot(steps, [s.get("missing_mass", np.nan) - s.get("delta", np.nan)
                           for s in sampled], ":", color=f"C{i}",
                   label=f"width {key[0]}: missing mass - delta")
    axes[1].plot(steps, [r["hallucination"].get("fresh", {}).get("confident", np.nan)
                         for r in rows], "o-", color=f"C{i}", label=f"width {key[0]}")
  first = next(iter(run["probes"].values()))
  sampled = [r.get("sampled") or {} for r in first]
  if any(sampled):
    steps = [r["step"] for r in first]
    axes[0].plot(steps, [s.get("bayes_error", np.nan) for s in sampled], "k--", lw=2,
                 label="Bayes predictor: sampled error")
    axes[0].plot(steps, [s.get("missing_mass", np.nan) for s in sampled], "k:", lw=2,
                 label="missing mass of facts (N1/n)")
  axes[1].axhline(first[0]["bayes_hallucination"]["confident"], color="k", ls="--",
                  label="Bayes predictor (H_a)")
  axes[0].set_ylabel("error rate of sampled answers, next prompts")
  axes[0].set_title("Kalai et al.: sampled error vs missing mass", fontsize=9)
  axes[1].set_ylabel("confident-answer rate on never-seen entities")
  axes[1].set_title("Zucchet et al.: overconfidence on the unknown", fontsize=9)
  for ax in axes:
    ax.set_xlabel("step")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
  save(fig, path)


def capacity(run: dict, path: str) -> None:
  """Knowledge stored (fact + name bits, clipped at 0 only in aggregate per bin: a lower
  bound) per unpadded parameter vs step, and the share of each bin's offered bits stored."""
  plt = pyplot()
  if not any("capacity" in r for rows in run["probes"].values() for r in rows):
    return
  fig, axes = plt.subplots(1, 2, figsize=(11, 5))
  total = lambda c, a, b: c.get(a, 0.0) + c.get(b, 0.0)
  for (width, seed), rows in run["probes"].items():
    rows = [r for r in rows if "capacity" in r]
    bpp = np.array([total(r["capacity"], "stored_bits", "name_stored_bits") / r["params"]
                    for r in rows])
    axes[0].plot([r["step"] for r in rows], np.where(bpp > 0, bpp, np.nan), "o-", ms=3,
                 label=f"width {width} ({rows[-1]['params']:,} params)")
    last = rows[-1]["knowledge"]
    offered = {l: total(last[l], "fact_entropy_bits", "name_entropy_bits") for l in last}
    labels = sorted((l for l in last if offered[l] > 0), key=bin_start)
    axes[1].plot([bin_start(l) for l in labels],
                 [total(last[l], "stored_bits", "name_stored_bits") / offered[l] for l in labels],
                 "o-", label=f"width {width}")
  for level, ref in ((100, 1.0), (1000, REFERENCE_BITS_PER_PARAM)):
    axes[0].axhline(ref, color="k", ls="--" if level == 1000 else ":",
                    label=f"~{ref:g} bit{'s' * (ref != 1)}/param (knowledge seen ~{level} times, "
                          f"Allen-Zhu & Li)")
  axes[0].set_yscale("log")
  axes[0].set_xlabel("step")
  axes[0].set_ylabel("fact + name bits stored (lower bound) / parameter")
  axes[0].set_title("stored knowledge per parameter", fontsize=9)
  for level in (100, 1000):
    axes[1].axvline(level, color="0.5", ls=":")
  axes[1].set_xscale("log", base=2)
  axes[1].set_ylim(-0.02, 1.02)
  axes[1].set_xlabel("entity occurrences so far (bin start)")
  axes[1].set_ylabel("stored bits / offered bits (facts + names)")
  axes[1].set_title("share of each bin's knowledge stored (last eval)", fontsize=9)
  axes[1].legend(fontsize=7, loc="upper left")
  save(fig, path, legend_from=axes[0], legend_rows=3)


def gekhman(summary: dict, path: str) -> None:
  """A Gekhman design: held-out accuracy vs the share of Unknown examples, one line per
  stopping point (early stop dashed, convergence solid) per model, the control at 0.5."""
  us = summary.get("unknown_share", {})
  arms = sorted((a for a in us if a != "control"), key=float)
  if not arms:
    return
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for i, model in enumerate(summary["models"]):
    x = [float(a) for a in arms]
    for when, style in (("early_stop", "--"), ("convergence", "-")):
      ax.plot(x, [us[a][when].get(model, np.nan) for a in arms], style, marker="o",
              color=f"C{i}", label=f"{model}: {when.replace('_', ' ')}")
      if "control" in us:
        ax.plot([0.5], [us["control"][when].get(model, np.nan)], "s", mfc="none", ms=9,
                color=f"C{i}", label=f"{model}: control, {when.replace('_', ' ')}")
  ax.set_xlabel("share of Unknown examples in the fine-tuning set")
  ax.set_ylabel("accuracy on held-out known facts")
  ax.set_ylim(-0.02, 1.02)
  ax.set_title("Gekhman et al.: held-out accuracy vs Unknown share", fontsize=9)
  ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
  save(fig, path)


def scaling(run: dict, summary: dict, path: str) -> None:
  """Loss vs tokens with the fitted data laws, and final loss vs parameters (size fit)."""
  plt = pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(11, 4))
  window = smoothing_window(run)
  for (width, seed), rows in run["models"].items():
    t = np.array([r["tokens_seen"] for r in rows], float)
    line, = axes[0].plot(t, smooth(column(rows, "loss_bits"), window), alpha=0.7,
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
  finals = [float(np.nanmean(column(rows, "loss_bits")[-max(1, len(rows) // 10):]))
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
  save(fig, path)


def structure_function(run: dict, path: str) -> None:
  """Two-part code points of every model and eval step, their lower hull (the empirical
  structure function), and the oracle structure function from ground truth."""
  plt = pyplot()
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
      what = "quantised params" if kind == "quantised" else "prequential estimate"
      if sel:
        ax.scatter([p["complexity_bits"] for p in sel], [p["data_bits"] for p in sel], s=14,
                   marker=marker, color=colors[w], alpha=0.6, label=f"width {w}: {what}")
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
  save(fig, path)


def finetune(run: dict, summary: dict, path: str) -> None:
  """Injected-fact acquisition vs repetitions, forgetting by pretraining bin, overconfidence
  on never-seen entities."""
  ft = summary.get("finetune")
  if not ft:
    return
  plt = pyplot()
  fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
  for i, ((width, seed), rows) in enumerate(run["probes"].items()):
    m, color = ft["models"][f"{width}/{seed}"], f"C{i}"
    inj = sorted(m["injected_accuracy"].items(), key=lambda kv: bin_start(kv[0]))
    axes[0].plot([bin_start(k) for k, _ in inj], [v for _, v in inj], "o-", color=color,
                 label=f"width {width}")
    before, after = rows[0]["knowledge"], rows[-1]["knowledge"]
    for probe, style, when in ((before, "--", "before"), (after, "-", "after")):
      labels = sorted(probe, key=bin_start)
      axes[1].plot([bin_start(b) for b in labels], [probe[b]["accuracy"] for b in labels], style,
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
  axes[2].set_ylabel("confident-answer rate on never-seen entities")
  axes[2].set_title("overconfidence on the unknown during fine-tuning (Zucchet et al.)",
                    fontsize=9)
  for ax in axes[:2]:
    ax.set_xscale("log", base=2)
    ax.set_ylim(-0.02, 1.02)
  for ax in axes:
    ax.legend(fontsize=7)
  save(fig, path)
