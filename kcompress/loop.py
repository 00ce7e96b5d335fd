"""A training loop that knows nothing of models or data: steps and periodic actions.

  state = loop.run_loop(state, step_fn, start, num_steps, record, actions, timer)

`step_fn(state) -> (state, outputs)` is dispatched asynchronously; `record(step, outputs)`
sees every step's outputs in order, one step late (while the next step runs), or at once
before an action that is due. An action (`Periodic`) runs after the steps it is due at
(every `every` steps and at the last step; also at the start of a fresh run with
`at_start`, and when a stop signal arrives with `on_signal`). SIGTERM/SIGINT stop the
loop after the current step (the on-signal actions run first) with `Stopped`.
`Timer` accumulates wall seconds by phase ("train" for steps and records, each action's
name for the action), the split a run reports in timing.json. `Pace` turns the "train"
seconds into the training rate of progress lines, leaving out the first step (it compiles).
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import time
from typing import Any, Callable


def due(step: int, every: int, last: int) -> bool:
  """Is `step` (1-based count of updates done) a due step for `every`? The last always is."""
  return step % every == 0 or step == last


@dataclasses.dataclass(frozen=True)
class Periodic:
  """`run(step_done, state)` after every `every` steps and at the last step."""
  name: str
  every: int
  run: Callable[[int, Any], None]
  at_start: bool = False    # also before the first step of a fresh run (step_done 0)
  on_signal: bool = False   # also when a stop signal arrives


class Stopped(Exception):
  """A stop signal ended the loop after `step` (its on-signal actions ran)."""

  def __init__(self, signum: int, step: int):
    super().__init__(f"signal {signum} at step {step}")
    self.signum, self.step = signum, step


class Timer:
  """Wall seconds by phase; `with timer.phase(name): ...`."""

  def __init__(self, seconds: dict[str, float] | None = None):
    self.seconds = dict(seconds or {})

  @contextlib.contextmanager
  def phase(self, name: str):
    t0 = time.perf_counter()
    try:
      yield
    finally:
      self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


class Pace:
  """Training steps per second between progress lines, from a clock of train seconds
  (`Timer.seconds["train"]`). The clock starts after the run's first step (`start`), which
  compiles the step: compilation never enters a rate, nor an ETA made from it."""

  def __init__(self):
    self.step = self.seconds = None

  def start(self, step: int, seconds: float) -> None:
    """The first step is done at `seconds` on the clock."""
    self.step, self.seconds = step, seconds

  def lap(self, step: int, seconds: float) -> float | None:
    """Steps per second since the previous lap (or the start); None before any timed step."""
    if self.step is None or step <= self.step:
      return None
    rate = (step - self.step) / max(seconds - self.seconds, 1e-9)
    self.step, self.seconds = step, seconds
    return rate


class _StopSignals:
  """Turns SIGTERM/SIGINT into a flag the loop checks after each step."""

  def __init__(self):
    self.signal = None
    self._old = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      self._old[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    self.signal = signum

  def __exit__(self, *exc):
    for sig, old in self._old.items():
      signal.signal(sig, old)


def run_loop(state, step_fn: Callable, start: int, num_steps: int,
             record: Callable[[int, Any], None], actions: list[Periodic],
             timer: Timer | None = None):
  """Runs steps start+1 .. num_steps; returns the final state (see the module docstring)."""
  timer = timer or Timer()
  pending = None

  def flush():
    nonlocal pending
    if pending is not None:
      with timer.phase("train"):
        record(*pending)
      pending = None

  def act(step_done: int, which) -> None:
    for action in actions:
      if which(action):
        flush()
        with timer.phase(action.name):
          action.run(step_done, state)

  if start == 0:
    act(0, lambda a: a.at_start)
  with _StopSignals() as stop:
    for t in range(start, num_steps):
      with timer.phase("train"):
        state, outputs = step_fn(state)
        if pending is not None:     # step t is dispatched; now record step t-1
          record(*pending)
        pending = (t + 1, outputs)
      step_done = t + 1
      if stop.signal:
        act(step_done, lambda a: a.on_signal or due(step_done, a.every, num_steps))
        flush()
        raise Stopped(stop.signal, step_done)
      act(step_done, lambda a: due(step_done, a.every, num_steps))
  flush()
  return state
