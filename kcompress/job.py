"""What a kind of run hands to the training loop: a `Job` (its data pipe, its start).

`kcompress.pretrain.job` and `kcompress.finetune.job` build one from a config; the loop
(`kcompress.train.run`) checkpoints, evaluates and logs any job the same way.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from kcompress import data
from kcompress.data.spec import BOS


def model_batch(tokens: data.Tokens) -> dict[str, jax.Array]:
  """Rows of C stream tokens -> model inputs ([BOS, row[:-1]]), targets (row), roles."""
  inputs = jnp.concatenate([jnp.full_like(tokens.token[:, :1], BOS), tokens.token[:, :-1]], 1)
  return {"inputs_BxL": inputs, "targets_BxL": tokens.token, "roles_BxL": tokens.role}


@dataclasses.dataclass(frozen=True)
class DataPipe:
  """The on-device data step of a run: `step(data_state) -> (data_state, batch, bayes_R)`
  (bayes_R: float64 [NUM_ROLES] Bayes bits of the batch's tokens by role)."""
  init: Any
  step: Callable
  world: Any = None               # the stream's World (host numpy); None: no probes
  steps_per_epoch: int | None = None   # finite dataset: steps of one pass over it


@dataclasses.dataclass(frozen=True)
class Job:
  """A run of the sweep, as the loop sees it.

  init_states: () -> fresh train states (one per bucket, leading model axis).
  data_like: host dict of a checkpoint (or None: a fresh run) -> the data-state template
    of the shapes that checkpoint was saved with.
  fit_data: (data_state, steps_done, num_steps) -> (data_state with room for the steps
    left, its `data_capacity` record for the host dict); lets a run be extended.
  seen_counts: (data_state, steps_done) -> StreamState (host) counting exactly the
    sentences of the batches trained on so far: what the probes may ask about.
  extra_probes: (steps_done, seed) -> ProbeSet appended to the stream's probes, or None.
  next_sentences: (data_state, num) -> RawSentences (host): the stream's next `num`
    sentences, not yet trained on (the sampled-error probes, `kcompress.hallucination`),
    or None.
  eval_at_start: evaluate before the first step (fine-tuning: the pretrained models).
  fixed_length: the run length may not change on resume (its data plan depends on it).
  finish: (workdir, host) -> None, after the last step (process 0).
  overflow: data_state -> device bool, the generator's entity overflow flag.
  """
  config: Any
  setup: Any
  pipe: DataPipe
  init_states: Callable[[], list]
  data_like: Callable[[dict | None], Any]
  fit_data: Callable[[Any, int, int], tuple[Any, Any]]
  seen_counts: Callable[[Any, int], Any] | None
  overflow: Callable[[Any], Any]
  extra_probes: Callable[[int, int], Any] | None = None
  next_sentences: Callable[[Any, int], Any] | None = None
  eval_at_start: bool = False
  fixed_length: bool = False
  finish: Callable[[str, dict], None] | None = None
