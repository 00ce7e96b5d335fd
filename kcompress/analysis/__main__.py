"""Rebuild run reports from their saved files, and compare runs.

  python -m kcompress.analysis --workdir=DIR                      # DIR/report/
  python -m kcompress.analysis --workdir=A --workdir=B --out=OUT  # each report, and OUT/
"""

from absl import flags

from kcompress import cli, workdir_lock
from kcompress.analysis import compare, report
from kcompress.errors import UserError

_WORKDIR = flags.DEFINE_multi_string(
    "workdir", None, "A kcompress run directory; repeat the flag to compare runs.", required=True)
_OUT = flags.DEFINE_string(
    "out", None, "Directory of the cross-run comparison (required with several --workdir).")


def main(argv):
  if len(argv) > 1:
    raise UserError(f"unexpected arguments: {' '.join(argv[1:])} (use --workdir=DIR)")
  workdirs = _WORKDIR.value
  if len(workdirs) > 1 and not _OUT.value:
    raise UserError("--out=DIR is required when several --workdir are given")
  summaries = []
  for workdir in workdirs:
    busy = workdir_lock.holder(workdir)
    if busy:
      print(f"note: {workdir} is being written by {workdir_lock.describe(busy)}: the report "
            "is of the rows on file now")
    summary = report.write_report(workdir)
    summaries.append(summary)
    for line in report.headline_lines(summary):
      print(line)
    print(f"report: {workdir}/report/report.md")
  if _OUT.value:
    compare.compare_runs(workdirs, _OUT.value, summaries=summaries)
    print(f"comparison: {_OUT.value}/report.md")


if __name__ == "__main__":
  cli.run(main)
