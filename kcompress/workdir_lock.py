"""One run at a time in a workdir: WORKDIR/run.lock, held for the whole run.

  with workdir_lock.hold(workdir):   # UserError (one line, naming the holder) when busy
    ...

The lock file is created atomically (O_CREAT | O_EXCL) and holds JSON {host, pid, started,
proc_start}; a daemon thread touches it every HEARTBEAT_S seconds. A lock whose holder is
gone is taken over with one WARNING line: on this host, when its pid no longer runs (or
now names another process); from another host, when its heartbeat is older than STALE_S.
Holding is reentrant within a process (`kcompress.main` holds it around `train.run`, which
holds it too). Only process 0 of a multi-process job takes it (`enabled`). An unreadable
lock (being written by a run starting at the same moment) counts as busy for CREATING_S.
`holder(workdir)` tells a reader whether a run is writing the workdir now.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import threading
import time
from typing import Callable

from kcompress.errors import UserError

LOCK_NAME = "run.lock"
HEARTBEAT_S = 30.0    # seconds between touches of the lock file
STALE_S = 600.0       # another host's lock with no heartbeat for this long is stale
CREATING_S = 10.0     # an unreadable lock younger than this is being written: busy

_held: dict[str, bool] = {}   # realpaths of the workdirs this process holds


def lock_path(workdir: str) -> str:
  return os.path.join(workdir, LOCK_NAME)


def _proc_start(pid: int) -> str | None:
  """The kernel's start time of process `pid` (clock ticks since boot; Linux), or None."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      fields = f.read().rsplit(")", 1)[1].split()
  except OSError:
    return None
  return None if fields[0] == "Z" else fields[19]   # a zombie has finished


def _alive(info: dict) -> bool:
  """Does the process that wrote `info` (on this host) still run?"""
  pid = int(info.get("pid", -1))
  if pid <= 0:
    return False
  if os.path.isdir("/proc/self"):
    start = _proc_start(pid)
    return start is not None and info.get("proc_start") in (None, start)
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def _read(path: str) -> dict | None:
  """The lock's JSON (None: no lock); an unreadable or torn lock reads as {} (stale)."""
  try:
    with open(path) as f:
      info = json.load(f)
  except FileNotFoundError:
    return None
  except (OSError, ValueError):
    return {}
  return info if isinstance(info, dict) else {}


def stale_reason(info: dict, path: str, now: float) -> str | None:
  """Why the lock described by `info` (file `path`) is stale, or None while its holder lives.
  An unreadable lock is one being written for CREATING_S seconds, then stale."""
  try:
    age = now - os.path.getmtime(path)
  except OSError:
    return "the lock file vanished"
  if not info:
    return f"an unreadable lock file, {age:.0f} s old" if age > CREATING_S else None
  if info.get("host") == socket.gethostname():
    return None if _alive(info) else f"process {info.get('pid')} is gone"
  return f"no heartbeat for {age:.0f} s (> {STALE_S:.0f} s)" if age > STALE_S else None


def describe(info: dict) -> str:
  if not info:
    return "a run starting now (its lock is being written)"
  return f"pid {info.get('pid')} on host {info.get('host')} (started {info.get('started')})"


def holder(workdir: str) -> dict | None:
  """The live holder of `workdir`'s lock ({host, pid, started, ...}), or None."""
  path = lock_path(workdir)
  info = _read(path)
  if info is None:
    return None
  return None if stale_reason(info, path, time.time()) else info


def _create(path: str, info: dict) -> bool:
  """Creates the lock holding `info`; False when a lock file exists already."""
  try:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
  except FileExistsError:
    return False
  with os.fdopen(fd, "w") as f:
    f.write(json.dumps(info))
  return True


def _take_over(path: str, seen: dict) -> bool:
  """Moves the stale lock `seen` out of the way; False when it changed meanwhile (then it
  is put back, unless another lock already replaced it)."""
  moved = f"{path}.stale.{os.getpid()}"
  try:
    os.rename(path, moved)
  except FileNotFoundError:
    return True   # gone already: try to create ours
  if _read(moved) == seen:
    os.remove(moved)
    return True
  with contextlib.suppress(FileExistsError):
    os.link(moved, path)   # someone's fresh lock: restore it (never over a newer one)
  os.remove(moved)
  return False


def _acquire(workdir: str, say: Callable[[str], None]) -> None:
  path = lock_path(workdir)
  mine = {"host": socket.gethostname(), "pid": os.getpid(),
          "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
          "proc_start": _proc_start(os.getpid())}
  for _ in range(3):
    if _create(path, mine):
      return
    info = _read(path)
    if info is None:
      continue
    reason = stale_reason(info, path, time.time())
    if reason is None:
      raise UserError(f"workdir {workdir} is in use by {describe(info)}; wait for that run "
                      f"to end or stop it (its lock: {path})")
    if _take_over(path, info):
      say(f"WARNING took over the lock of {workdir} from {describe(info)}: {reason}")
  raise UserError(f"workdir {workdir}: could not take its lock {path} (another run is "
                  f"starting there)")


def _heartbeat(path: str, stop: threading.Event) -> None:
  while not stop.wait(HEARTBEAT_S):
    with contextlib.suppress(OSError):
      os.utime(path)


def _release(path: str) -> None:
  info = _read(path)
  if info and info.get("pid") == os.getpid() and info.get("host") == socket.gethostname():
    with contextlib.suppress(OSError):
      os.remove(path)


def release_all() -> None:
  """Releases every lock this process holds (an exit that skips the `hold` blocks)."""
  for key in list(_held):
    _release(lock_path(key))
    del _held[key]


def make_workdir(workdir: str) -> None:
  """Creates `workdir` (and its parents); a UserError naming the path when it cannot."""
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise UserError(f"--workdir={workdir}: cannot create it ({e.strerror}: "
                    f"{e.filename or workdir}); choose a writable location") from None
  if not os.access(workdir, os.W_OK | os.X_OK):
    raise UserError(f"--workdir={workdir}: not writable (a read-only file system, or no "
                    f"write permission)")


@contextlib.contextmanager
def hold(workdir: str, enabled: bool = True,
         say: Callable[[str], None] = lambda s: print(s, flush=True)):
  """Holds `workdir`'s lock inside the block (creating the workdir); see the module doc."""
  key = os.path.realpath(workdir)
  if not enabled or key in _held:   # another process's job, or held further up already
    yield
    return
  make_workdir(workdir)
  try:
    _acquire(workdir, say)
  except OSError as e:   # a read-only workdir, or one without write permission
    raise UserError(f"--workdir={workdir}: cannot write its lock {lock_path(workdir)} "
                    f"({e.strerror}); the workdir must be writable") from None
  _held[key] = True
  stop = threading.Event()
  threading.Thread(target=_heartbeat, args=(lock_path(workdir), stop), daemon=True).start()
  try:
    yield
  finally:
    stop.set()
    del _held[key]
    _release(lock_path(workdir))
