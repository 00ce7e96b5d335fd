"""Probes after t steps ask only about what the batches of those t steps held.

The probes of an eval are built from `Job.seen_counts` (`kcompress.evals.ProbeEval`).
Here the batches themselves are the reference: a knowledge probe's fact (entity,
attribute) must have had its value token in a batch, its occurrence count must be the
entity's sentences in the batches, an unrevealed probe's entity must have occurred
without that fact, and a fresh entity must never have occurred. No training needed.
"""

import numpy as np
import pytest

from configs.sweep import get_config
from kcompress import pretrain, probes, setup as setup_lib
from kcompress.data import roles

STEPS = 6


def _served(batches):
  """(sentences per entity, revealed facts) of the served tokens."""
  tok = {k: np.concatenate([np.asarray(getattr(b, k)).ravel() for b in batches])
         for k in ("role", "entity", "attribute", "sentence")}
  real = tok["role"] != roles.PAD
  sentences = {}
  for e, s in zip(tok["entity"][real], tok["sentence"][real]):
    sentences.setdefault(int(e), set()).add(int(s))
  value = tok["role"] == roles.VALUE
  facts = set(zip(tok["entity"][value].tolist(), tok["attribute"][value].tolist()))
  return {e: len(s) for e, s in sentences.items()}, facts


@pytest.mark.parametrize("packing,num_sentences", [("sentence", 0), ("stream", 0),
                                                   ("sentence", 120)])
def test_probes_only_ask_about_served_batches(packing, num_sentences, monkeypatch):
  cfg = get_config("tiny")
  cfg.data.packing = packing
  cfg.data.num_sentences = num_sentences
  cfg.probe.per_bin = 64
  setup = setup_lib.make_setup(cfg)
  job = pretrain.job(cfg, setup)
  captured = {}
  real_make = probes.make_probes

  def spy(spec, world, ent, attr, kind, count, weight=None):
    captured.update(ent=np.asarray(ent), attr=np.asarray(attr), kind=np.asarray(kind),
                    count=np.asarray(count))
    return real_make(spec, world, ent, attr, kind, count, weight)

  monkeypatch.setattr(probes, "make_probes", spy)
  # The served tokens, captured on the host from the batch rows the pipe hands out.
  from kcompress.data import source
  served_rows = []
  real_batch = source.dataset_batch if num_sentences else source.next_batch

  def keep(*args, **kwargs):
    out = real_batch(*args, **kwargs)
    served_rows.append(out if num_sentences else out[1])
    return out

  monkeypatch.setattr(source, "dataset_batch" if num_sentences else "next_batch", keep)
  import jax
  state = job.pipe.init
  batches = []
  for _ in range(STEPS):   # eager (un-jitted) data steps, so the spy sees concrete rows
    with jax.disable_jit():
      state, _, _ = job.pipe.step(state)
    batches.append(jax.device_get(served_rows[-1]))
  counts, facts = _served(batches)
  seen = job.seen_counts(state, STEPS)
  probes.build_probes(setup.spec, job.pipe.world, seen, 0, cfg.probe.per_bin,
                      cfg.probe.num_bins, cfg.probe.num_fresh)
  kind, ent, attr, count = (captured[k] for k in ("kind", "ent", "attr", "count"))
  know = kind == probes.KNOWLEDGE
  assert know.sum() >= 10
  for e, a, c in zip(ent[know], attr[know], count[know]):
    assert (int(e), int(a)) in facts
    assert c == counts[int(e)]
  for e, a in zip(ent[kind == probes.UNREVEALED], attr[kind == probes.UNREVEALED]):
    assert int(e) in counts and (int(e), int(a)) not in facts
  assert not set(ent[kind == probes.FRESH].tolist()) & set(counts)
