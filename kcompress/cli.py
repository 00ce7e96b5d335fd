"""What every entry point shares: one-line errors, library logs in a file.

  cli.run(main)                    # instead of absl.app.run(main)
  cli.log_to_file(path)            # library INFO logs (orbax, absl, jax) -> path

A `kcompress.errors.UserError` raised anywhere under `main` prints `error: <message>` as
one line on stderr and exits with status 2; its traceback goes to the log file (when one
is set). Other exceptions (bugs) keep their traceback. Library logs go to the terminal
only when `--verbosity` is given explicitly.
"""

from __future__ import annotations

import logging as py_logging
import os
import sys

from absl import app, flags, logging

from kcompress.errors import UserError

EXIT_USER_ERROR = 2


def _verbosity_given() -> bool:
  try:
    return flags.FLAGS["verbosity"].present > 0
  except (KeyError, flags.UnparsedFlagAccessError):
    return False


def quiet_terminal() -> None:
  """Library logs below WARNING leave the terminal (unless --verbosity was given); the
  tool's own lines are plain prints."""
  if _verbosity_given():
    return
  logging.get_absl_handler().setLevel(py_logging.WARNING)
  # absl's handler also carries python-logging records of every library (orbax, jax).
  for name in ("absl", "orbax", "jax"):
    py_logging.getLogger(name).setLevel(py_logging.INFO)


def log_to_file(path: str) -> None:
  """Appends every log record at INFO and above (absl, orbax, jax, ...) to `path`."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  root = py_logging.getLogger()
  for h in root.handlers:
    if isinstance(h, py_logging.FileHandler) and h.baseFilename == os.path.abspath(path):
      return
  handler = py_logging.FileHandler(path)
  handler.setLevel(py_logging.INFO)
  handler.setFormatter(logging.PythonFormatter())
  root.addHandler(handler)
  root.setLevel(min(root.level or py_logging.INFO, py_logging.INFO))
  logging.set_verbosity(logging.INFO)
  quiet_terminal()


def _to_log_files(message: str, exc_info) -> None:
  """A record with its traceback, written to the log files only (not the terminal)."""
  record = py_logging.LogRecord("kcompress", py_logging.ERROR, __file__, 0, message, None,
                                exc_info)
  for h in py_logging.getLogger().handlers:
    if isinstance(h, py_logging.FileHandler):
      h.handle(record)


def _guarded(main):
  def wrapped(argv):
    quiet_terminal()
    try:
      return main(argv)
    except UserError as e:
      _to_log_files(f"error: {e}", sys.exc_info())   # the traceback, for the log file
      print(f"error: {e}", file=sys.stderr, flush=True)
      sys.exit(EXIT_USER_ERROR)
  return wrapped


def _one_line(message: str) -> None:
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(EXIT_USER_ERROR)


def _parse_flags(argv):
  """absl's flag parsing, with a bad flag or config override as one line."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:   # e.g. a config file whose get_config raised: keep its reason
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    _one_line(lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1]}")
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    # A --config.<field> override (or a config file's get_config) failed: name the flag.
    text = str(e).strip("\"' ")
    culprits = [a for a in argv[1:] if a.startswith("--config") and text and text in a]
    where = culprits[0].split("=")[0] if culprits else "--config"
    _one_line(f"{where}: {type(e).__name__}: {text or 'invalid'} (check the field name and "
              f"the value's type against the config file)")


def run(main) -> None:
  """absl.app.run(main) with UserErrors (and bad flags) as one line on stderr (exit 2)."""
  app.run(_guarded(main), flags_parser=_parse_flags)
