"""Rebuild run reports from their saved files, and compare runs.

  python -m kcompress.analysis --workdir=DIR                      # DIR/report/
  python -m kcompress.analysis --workdir=A --workdir=B --out=OUT  # each report, and OUT/
"""

import sys

from absl import app, flags

from kcompress.analysis import compare, report

_WORKDIR = flags.DEFINE_multi_string(
    "workdir", None, "A kcompress run directory; repeat the flag to compare runs.", required=True)
_OUT = flags.DEFINE_string(
    "out", None, "Directory of the cross-run comparison (required with several --workdir).")


def main(argv):
  del argv
  workdirs = _WORKDIR.value
  if len(workdirs) > 1 and not _OUT.value:
    sys.exit("error: --out=DIR is required when several --workdir are given")
  summaries = []
  for workdir in workdirs:
    summary = report.write_report(workdir)
    summaries.append(summary)
    for line in report.headline_lines(summary):
      print(line)
    print(f"report: {workdir}/report/report.md")
  if _OUT.value:
    compare.compare_runs(workdirs, _OUT.value, summaries=summaries)
    print(f"comparison: {_OUT.value}/report.md")


if __name__ == "__main__":
  app.run(main)
