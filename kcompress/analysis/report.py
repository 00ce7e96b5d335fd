"""The report of a run, rebuilt from its saved files alone (numpy, scipy, matplotlib).

`write_report(workdir)` writes WORKDIR/report/: the PNG figures (`figures`), `report.md`
(the table of claims and verdicts, then each figure with its reading, `readings`) and
`summary.json` (`summary.summarize`: headline numbers and claims). Deterministic: the same
files give the same summary.json. `headline_lines` are the readings to print.
"""

from __future__ import annotations

import json
import os

from kcompress.analysis import claims, design_files, figures, figures_exponents, load, readings
from kcompress.analysis import summary as summary_lib


def write_report(workdir: str) -> dict:
  """Writes WORKDIR/report/{*.png, report.md, summary.json}; returns the summary (with the
  readings under `_readings`, not written to summary.json). A Gekhman design's workdir gets
  the design's report (`write_design_report`)."""
  if design_files.is_design_workdir(workdir):
    return write_design_report(workdir)
  run = load.load_run(workdir)
  out = os.path.join(workdir, "report")
  os.makedirs(out, exist_ok=True)
  summary = summary_lib.summarize(run)
  png = lambda name: os.path.join(out, name)
  figures.code_lengths(run, png("code_lengths.png"))
  figures.bits_by_role(run, png("bits_by_role.png"))
  figures.scaling(run, summary, png("scaling.png"))
  figures.knowledge(run, png("knowledge.png"))
  figures.hallucination(run, png("hallucination.png"))
  figures.capacity(run, png("capacity.png"))
  figures.structure_function(run, png("ksf.png"))
  figures.finetune(run, summary, png("finetune.png"))
  law_pngs = figures_exponents.report_figures(summary, out)
  with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2, sort_keys=True, default=lambda x: None)
  r = readings.by_section(summary)
  md = [f"# kcompress report: {workdir}", "",
        "## Claims and verdicts", "", *claims.markdown_table(summary["claims"]), "",
        "## Code lengths", "![](code_lengths.png)", "", r["code"], "",
        "## Bits by role", "![](bits_by_role.png)", "", r["roles"], "",
        "## Scaling", "![](scaling.png)", *[f"![]({p})" for p in law_pngs], "",
        r["scaling"], "",
        "## Knowledge acquisition", "![](knowledge.png)", "", r["knowledge"], "",
        "## Hallucination", "![](hallucination.png)", "", r["hallucination"], "",
        "## Knowledge capacity", "![](capacity.png)", "", r["capacity"], "",
        "## Structure function", "![](ksf.png)", "", r["ksf"], "", r["two_part"], "",
        *samples_section(workdir)]
  if "finetune" in r:
    md += ["## Fine-tuning", "![](finetune.png)", "", r["finetune"], ""]
  with open(os.path.join(out, "report.md"), "w") as f:
    f.write("\n".join(md))
  summary["_readings"] = r
  return summary


SAMPLES_FILE = "samples.jsonl"   # written at the end of pretraining (`kcompress.sample`)


def samples_section(workdir: str) -> list[str]:
  """The report's lines of WORKDIR/samples.jsonl: per width, sentences a model generated,
  each fact marked against the world, with the Bayes predictor's bits for the sentence."""
  path = os.path.join(workdir, SAMPLES_FILE)
  if not os.path.exists(path):
    return []
  from kcompress import metrics
  rows = metrics.read_rows(path)
  md = ["## What the models say", "",
        "Sentences sampled from each model after training (`python -m kcompress.sample`): "
        "each fact marked true, false about a seen entity, or about an invented entity, "
        "with the Bayes predictor's code length of the same sentence (inf: impossible).", ""]
  for r in rows:
    md.append(f"- width {r['width']}: `{r['text']}` **{r['mark']}** "
              f"(Bayes {r['bayes_bits']:.1f} bits)" if r["bayes_bits"] is not None else
              f"- width {r['width']}: `{r['text']}` **{r['mark']}**")
  return md + [""]


def write_design_report(workdir: str) -> dict:
  """A Gekhman design's report: WORKDIR/report/{gekhman.png, report.md, summary.json}
  (`summary.design_summary`: `unknown_share`, categories, claims)."""
  out = os.path.join(workdir, "report")
  os.makedirs(out, exist_ok=True)
  summary = summary_lib.design_summary(workdir)
  figures.gekhman(summary, os.path.join(out, "gekhman.png"))
  with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2, sort_keys=True, default=lambda x: None)
  cats = summary["categories"]
  table = ["| model | part | " + " | ".join(design_files.CATEGORIES) + " |",
           "|---|---|" + "---|" * len(design_files.CATEGORIES)]
  for model, parts in cats.items():
    for part, counts in parts.items():
      table.append(f"| {model} | {part} | "
                   + " | ".join(str(counts[c]) for c in design_files.CATEGORIES) + " |")
  reading = readings.design_reading(summary)
  md = [f"# kcompress report: {workdir} (Gekhman et al.'s design)", "",
        "## Claims and verdicts", "", *claims.markdown_table(summary["claims"]), "",
        "## Held-out accuracy vs the share of Unknown examples", "![](gekhman.png)", "",
        reading, "",
        f"## SliCK categories of the examples (pretrained {summary['init_from']}, step "
        f"{summary['init_step']})", "", *table, ""]
  with open(os.path.join(out, "report.md"), "w") as f:
    f.write("\n".join(md))
  summary["_readings"] = {"design": reading}
  return summary


def headline_lines(summary: dict) -> list[str]:
  """The readings of `write_report`'s summary, then the count of verdicts."""
  lines = list(summary.get("_readings", {}).values())
  if summary.get("claims"):
    n = claims.verdict_counts(summary["claims"])
    lines.append(f"Claims: {n['consistent']} consistent, {n['inconsistent']} inconsistent, "
                 f"{n['inconclusive']} inconclusive (report.md, top).")
  return lines
