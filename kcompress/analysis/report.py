"""The report of a run, rebuilt from its saved files alone (numpy, scipy, matplotlib).

`write_report(workdir)` writes WORKDIR/report/: the PNG figures (`figures`), `report.md`
(the table of claims and verdicts, then each figure with its reading, `readings`) and
`summary.json` (`summary.summarize`: headline numbers and claims). Deterministic: the same
files give the same summary.json. `headline_lines` are the readings to print.
"""

from __future__ import annotations

import json
import os

from kcompress.analysis import claims, figures, load, readings
from kcompress.analysis import summary as summary_lib


def write_report(workdir: str) -> dict:
  """Writes WORKDIR/report/{*.png, report.md, summary.json}; returns the summary (with the
  readings under `_readings`, not written to summary.json)."""
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
  with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2, sort_keys=True, default=lambda x: None)
  r = readings.by_section(summary)
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
  """The readings of `write_report`'s summary, then the count of verdicts."""
  lines = list(summary.get("_readings", {}).values())
  if summary.get("claims"):
    n = claims.verdict_counts(summary["claims"])
    lines.append(f"Claims: {n['consistent']} consistent, {n['inconsistent']} inconsistent, "
                 f"{n['inconclusive']} inconclusive (report.md, top).")
  return lines
