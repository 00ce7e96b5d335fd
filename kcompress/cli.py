"""What every entry point shares: one-line errors, library logs in a file.

  cli.run(main)                    # instead of absl.app.run(main)
  cli.log_to_file(path)            # library INFO logs (orbax, absl, jax) -> path

Under `main`, each of these prints one line on stderr, its traceback going to the log file
(when one is set):
- a `kcompress.errors.UserError`: `error: <message>`, exit status 2;
- a failed write for want of resources (a full disk, a file-size limit, a read-only or
  unwritable location; also when a library wraps the OSError, as orbax/tensorstore do):
  `error: cannot write <file>: <cause>; ...`, exit status 2 (`resource_error`);
- Ctrl-C (SIGINT) outside the training loop (which saves a checkpoint first): `interrupted`,
  exit status 130, from the signal handler itself (the workdir's lock released), leaving at
  once (no interpreter teardown, whose threads can crash on an interrupted compile); a
  second Ctrl-C is ignored meanwhile.
Other exceptions (bugs) keep their traceback. Library logs go to the terminal only when
`--verbosity` is given explicitly; with a log file, none at all: they, and the libraries'
Python warnings, are in the file.
A log file that cannot be written (a full disk) stops taking records, silently.
"""

from __future__ import annotations

import contextlib
import errno
import logging as py_logging
import os
import re
import signal
import sys

from absl import app, flags, logging

from kcompress import workdir_lock
from kcompress.errors import UserError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130   # 128 + SIGINT, as a shell reports a Ctrl-C
INTERRUPTED = ("interrupted (Ctrl-C); checkpoints on file are intact: rerun the same command "
               "to resume")
# What a failed write for want of resources means, by errno.
RESOURCE_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EFBIG: "file too large (a file-size limit: ulimit -f)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}
_OS_ERROR_CODE = re.compile(r"os_error_code='?(\d+)")     # tensorstore's (orbax's) errors
_QUOTED_PATH = re.compile(r'(?:Failed writing|local file): "([^"]+)"')


def _verbosity_given() -> bool:
  try:
    return flags.FLAGS["verbosity"].present > 0
  except (KeyError, flags.UnparsedFlagAccessError):
    return False


def quiet_terminal(level: int = py_logging.WARNING) -> None:
  """Library logs below `level` leave the terminal (unless --verbosity was given); the
  tool's own lines are plain prints."""
  if _verbosity_given():
    return
  logging.get_absl_handler().setLevel(level)
  # absl's handler also carries python-logging records of every library (orbax, jax).
  for name in ("absl", "orbax", "jax"):
    py_logging.getLogger(name).setLevel(py_logging.INFO)


class _LogFile(py_logging.FileHandler):
  """A log file that stops taking records at its first failed write (a full disk, a
  file-size limit) instead of printing a traceback for every later record."""

  failed = False

  def emit(self, record) -> None:
    if not self.failed:
      super().emit(record)

  def handleError(self, record) -> None:
    del record
    self.failed = True


def log_to_file(path: str) -> None:
  """Appends every log record at INFO and above (absl, orbax, jax, ...) to `path`; library
  records leave the terminal (they are in the file)."""
  root = py_logging.getLogger()
  for h in root.handlers:
    if isinstance(h, py_logging.FileHandler) and h.baseFilename == os.path.abspath(path):
      return
  try:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    handler = _LogFile(path)
  except OSError as e:
    raise UserError(f"cannot write the log file {path}: {e.strerror}; the workdir must be "
                    f"writable") from None
  handler.setLevel(py_logging.INFO)
  handler.setFormatter(logging.PythonFormatter())
  root.addHandler(handler)
  root.setLevel(min(root.level or py_logging.INFO, py_logging.INFO))
  logging.set_verbosity(logging.INFO)
  py_logging.captureWarnings(True)   # libraries' Python warnings: the file too
  quiet_terminal(py_logging.CRITICAL)


def _log_file() -> str | None:
  for h in py_logging.getLogger().handlers:
    if isinstance(h, _LogFile) and not h.failed:
      return h.baseFilename
  return None


_terminal_fd: int | None = None   # the terminal's stderr, once the log file has taken fd 2


@contextlib.contextmanager
def stderr_to_log_file():
  """Inside the block, what libraries write to stderr (file descriptor 2: tensorstore
  prints a traceback there for each callback of a failed checkpoint write, on its own
  threads, for a while after the failure) goes to the log file. When the block fails, fd 2
  stays there until the process exits; the tool's own error line still reaches the
  terminal (`print_error`). No log file set: nothing changes."""
  global _terminal_fd
  path = _log_file()
  if path is None or _terminal_fd is not None:
    yield
    return
  sys.stderr.flush()
  saved = os.dup(2)
  try:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.dup2(fd, 2)
    os.close(fd)
  except OSError:
    pass
  try:
    yield
  except BaseException:
    _terminal_fd = saved
    raise
  sys.stderr.flush()
  os.dup2(saved, 2)
  os.close(saved)


def print_error(message: str) -> None:
  """`message` as one line on the terminal's stderr (one unbuffered write: safe inside a
  signal handler that interrupted another write)."""
  with contextlib.suppress(Exception):
    sys.stderr.flush()
  os.write(2 if _terminal_fd is None else _terminal_fd, (message + "\n").encode())


def resource_error(exc: BaseException) -> str | None:
  """One line for a failed write for want of resources (RESOURCE_ERRNOS) anywhere in
  `exc`'s chain of causes, naming the file and the cause; None for anything else."""
  seen = set()
  while exc is not None and id(exc) not in seen:
    seen.add(id(exc))
    code, path = (exc.errno, exc.filename) if isinstance(exc, OSError) else (None, None)
    if code is None:
      found = _OS_ERROR_CODE.search(str(exc))
      code = int(found.group(1)) if found else None
      quoted = _QUOTED_PATH.search(str(exc))
      path = quoted.group(1) if quoted else None
    if code in RESOURCE_ERRNOS:
      path = path and re.sub(r"\.orbax-checkpoint-tmp.*$", "", str(path))   # the step's folder
      return (f"cannot write {path or 'a file'}: {RESOURCE_ERRNOS[code]}; the run stopped "
              f"at its first failed write (rows and checkpoints written before it stay "
              f"valid): make room and rerun the same command to resume")
    exc = exc.__cause__ or exc.__context__
  return None


def _to_log_files(message: str, exc_info) -> None:
  """A record with its traceback, written to the log files only (not the terminal)."""
  record = py_logging.LogRecord("kcompress", py_logging.ERROR, __file__, 0, message, None,
                                exc_info)
  for h in py_logging.getLogger().handlers:
    if isinstance(h, py_logging.FileHandler):
      h.handle(record)


def _flush_log_files() -> None:
  for h in py_logging.getLogger().handlers:
    if isinstance(h, py_logging.FileHandler):
      h.flush()


def _exit_now(message: str, status: int) -> None:
  """`message` on stderr (its traceback in the log files), then exit at once: no
  interpreter teardown, whose library threads (orbax's, after a failed write; XLA's,
  after an interrupted compile) print tracebacks or crash."""
  signal.signal(signal.SIGINT, signal.SIG_IGN)   # a second Ctrl-C changes nothing now
  print_error(message)
  with contextlib.suppress(Exception):
    _to_log_files(message, sys.exc_info())
    sys.stdout.flush()
    _flush_log_files()
  os._exit(status)


def _interrupt_now(signum, frame) -> None:
  """SIGINT outside the training loop: leave at once (an exception raised in its place can
  be swallowed: by a garbage-collection callback of XLA, say). Nothing there needs
  finishing: every write outside the loop replaces its file atomically or is rebuilt."""
  del signum, frame
  workdir_lock.release_all()
  _exit_now(INTERRUPTED, EXIT_INTERRUPTED)


def _guarded(main):
  def wrapped(argv):
    quiet_terminal()
    signal.signal(signal.SIGINT, _interrupt_now)   # the training loop installs its own
    try:
      return main(argv)
    except KeyboardInterrupt:
      _exit_now(INTERRUPTED, EXIT_INTERRUPTED)
    except UserError as e:
      _to_log_files(f"error: {e}", sys.exc_info())   # the traceback, for the log file
      print_error(f"error: {e}")
      sys.exit(EXIT_USER_ERROR)
    except Exception as e:  # noqa: BLE001 - a failed write for want of resources: one line
      message = resource_error(e)
      if message is None:
        raise
      _exit_now(f"error: {message}", EXIT_USER_ERROR)
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
