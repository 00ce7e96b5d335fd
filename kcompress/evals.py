"""The periodic evaluations of a run: knowledge probes and two-part codes, as JSON rows.

`TwoPartEval(job, num_steps)(step_done, states, preq_bits_M, tokens_seen)` -> ksf rows:
the two-part code points of every model (`kcompress.two_part`) of the run's data x. x is
the run's tokens (num_steps batches; a run extended later has a larger x in later rows)
or, for a finite dataset, the dataset: one epoch, whatever the number of epochs.

`ProbeEval(job)(step_done, states, data_state, tokens_seen)` -> probes rows
(`kcompress.probes`): knowledge and hallucination probes about exactly the sentences
of the batches trained on so far (`Job.seen_counts`), plus the job's extra probes, plus
the sampled-error prompts of the stream's next `num_next_prompts` sentences
(`Job.next_sentences`, `kcompress.hallucination`): each row's `sampled`.
"""

from __future__ import annotations

import jax
import numpy as np

from kcompress import hallucination, probes, step as step_lib, sweep, two_part
from kcompress.data import stats as data_stats
from kcompress.job import Job

SAMPLING_STREAM = 20   # keys the uniform draws of the sampled answers apart from the probes'


class TwoPartEval:
  """Two-part code rows of every model after `step_done` updates (ksf.jsonl)."""

  def __init__(self, job: Job, num_steps: int):
    setup, config = job.setup, job.config
    self.setup, self.precisions = setup, tuple(config.ksf.precisions)
    self.x_steps = job.pipe.steps_per_epoch or num_steps
    self.sample = two_part.sample_batches(job.pipe, self.x_steps, config.ksf.sample_batches)
    self.scorers = [two_part.make_scorer(cfg) for cfg, _ in setup.layout.buckets]
    # Stream tokens of x, estimated like its data bits: from the sample.
    real_BxL = step_lib.is_real(self.sample[1]["roles_BxL"])
    self.data_tokens = int(round(float(np.mean(real_BxL.sum((1, 2)))) * self.x_steps))

  def __call__(self, step_done: int, states, preq_bits_M, tokens_seen: int) -> list[dict]:
    setup = self.setup
    real = jax.device_get(sweep.unplace(setup.layout, states, setup.mesh))
    points = two_part.two_part_points(setup, real, self.sample, self.precisions, self.scorers)
    rows = two_part.ksf_rows(min(step_done, self.x_steps), self.x_steps, self.sample[0],
                             points, preq_bits_M)
    return [dict(step=step_done, width=w, seed=s, params=setup.param_counts[i],
                 tokens_seen=tokens_seen, data_tokens=self.data_tokens,
                 sample_batches=len(self.sample[0]), preq_bits=float(preq_bits_M[i]), **row)
            for i, ((w, s), row) in enumerate(zip(setup.models, rows))]


def num_next_prompts(probe_cfg) -> int:
  """Next-sentence prompts per eval: `config.probe.num_next`, default 4 x num_fresh."""
  return int(probe_cfg.get("num_next", 4 * probe_cfg.num_fresh))


class ProbeEval:
  """Knowledge and hallucination probe rows of every model (probes.jsonl)."""

  def __init__(self, job: Job):
    setup, config = job.setup, job.config
    self.job, self.setup, self.probe_cfg = job, setup, config.probe
    self.step = sweep.make_probe_step(setup.layout, setup.spec, config.probe.confident,
                                      setup.mesh)
    self.bayes_halluc = probes.bayes_hallucination(setup.spec, config.probe.confident)

  def __call__(self, step_done: int, states, data_state, tokens_seen: int) -> list[dict]:
    job, setup, cfg = self.job, self.setup, self.probe_cfg
    seen = job.seen_counts(data_state, step_done)
    seed = cfg.seed + step_done
    pset = probes.build_probes(setup.spec, job.pipe.world, seen, seed, cfg.per_bin,
                               cfg.num_bins, cfg.num_fresh)
    if job.extra_probes is not None:
      pset = probes.concat_probes(pset, job.extra_probes(step_done, seed))
    masses = None
    if job.next_sentences is not None:
      raw = job.next_sentences(data_state, num_next_prompts(cfg))
      pset = probes.concat_probes(pset, hallucination.next_probes(setup.spec, job.pipe.world,
                                                                  raw, seen))
      masses = hallucination.missing_masses(setup.spec, job.pipe.world, seen)
    outs = jax.device_get(self.step(states, pset))
    facts = data_stats.fact_singletons(seen.fact_counts_ExA)
    # Uniform draws of the sampled answers: one per prompt, shared by the models.
    u_P = np.random.default_rng((cfg.seed, step_done, SAMPLING_STREAM)).random(len(pset.kind_P))
    rows = []
    for i, (width, seed_i) in enumerate(setup.models):
      mine = {k: np.asarray(v[i]) for k, v in outs.items()}
      row = dict(step=step_done, width=width, seed=seed_i, params=setup.param_counts[i],
                 tokens_seen=tokens_seen, **probes.summarise(mine, pset, cfg.num_bins, setup.spec),
                 bayes_hallucination=self.bayes_halluc, facts=facts)
      sampled = hallucination.sampled_summary(mine, pset, u_P, setup.spec)
      if sampled is not None:
        row["sampled"] = {**sampled, **masses}
      rows.append(row)
    return rows
