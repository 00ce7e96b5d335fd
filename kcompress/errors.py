"""Errors the tool detects in its inputs (configs, flags, workdirs, files).

A `UserError` is a mistake the user can fix: its message is one line naming the field,
the value and what is allowed. Entry points (`kcompress.cli.run`) print it as one line
and exit non-zero without a traceback (the traceback goes to the run's log file).
It subclasses ValueError, so callers that catch ValueError keep working.
"""


class UserError(ValueError):
  """A bad config field, flag, workdir or input file; the message is one line."""
