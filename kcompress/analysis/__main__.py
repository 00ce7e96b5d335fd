"""Rebuild a run's report from its saved files: `python -m kcompress.analysis --workdir=DIR`."""

from absl import app, flags

from kcompress.analysis import report

_WORKDIR = flags.DEFINE_string("workdir", None, "A kcompress run directory.", required=True)


def main(argv):
  del argv
  summary = report.write_report(_WORKDIR.value)
  for line in report.headline_lines(summary):
    print(line)
  print(f"report: {_WORKDIR.value}/report/report.md")


if __name__ == "__main__":
  app.run(main)
