"""Reference learners priced on exactly the batches a run trained on (SPEC section 6).

The estimators of the data and size laws earn a verdict on a model only where they recover
a known answer on the same tokens; these learners are those answers:

- **count-threshold learner** (threshold c): knows an entity once it has been seen c times.
  Before that it codes the entity as if it were new (the Bayes code's new-entity choice and
  name bits) and each of its facts at the prior price -log2 H_a(v); after, it pays the Bayes
  price. Its knowledge excess over the Bayes code (name + value bits) falls as
  n^-(1 - alpha) once the stream is long compared with c. c = 1 is the Bayes code itself.
- **top-m oracle**: stores the m most frequent entities of the stream and pays the prior
  price for every repeated fact of the others: its value excess over the Bayes code in the
  run's last steps is excess(m) ~ m^(1 - 1/alpha), the size law's reference curve.

`python -m kcompress.reference --workdir=W` (re)writes W/reference_learners.json for a
stream run; a pretraining run writes it when it ends. Sentences per step are read from
metrics.jsonl (`tokens_end`: sentence ends in the step's batch), so the learners see the
batches the models saw. JSON (bits; per step s of the run):
  thresholds [C], steps [S], tokens [S] (tokens_seen), knowledge_tokens [S] (name + value
  tokens), value_tokens [S], excess_bits [S][C] and value_excess_bits [S][C] (learner minus
  Bayes, name + value and value bits of the step), replicates {knowledge, value: [R][B][C]
  (excess per token, mean over the steps of each of the run's log-bins of tokens, on
  NUM_REPLICATES independent streams read in the same steps: the learners' stream-to-stream
  spread), bins [B] ([first, last] step of each bin)},
  entities_per_bin {eval step: [entities with occurrences in [2^b, 2^(b+1)) after that step]},
  oracle {m [G], value_excess [G] (bits per value token over the window), window_steps,
  entities}.
"""

from __future__ import annotations

import math
import os

import numpy as np

from kcompress.data import source, spec as spec_lib

THRESHOLDS = tuple(2 ** k for k in range(13))   # 1 .. 4096 occurrences
ORACLE_WINDOW = 0.10                            # the last 10% of steps (the size law's "final")
ORACLE_GRID = 60                                # values of m, geometric in [1, entities]
PROBE_BINS = 16                                 # occurrence bins [2^b, 2^(b+1)), last open
NUM_REPLICATES = 8                              # independent streams: the learners' spread
REPLICATE_SEED_BASE = 3000                      # stream r keyed by PRNGKey(BASE + r)


def sentences_per_step(rows: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(steps [S], tokens_seen [S], sentences [S]) of one model's metrics rows (every model
  of a sweep trains on the same batches)."""
  first = (rows[0]["width"], rows[0]["seed"])
  mine = [r for r in rows if (r["width"], r["seed"]) == first]
  return (np.array([r["step"] for r in mine]), np.array([r["tokens_seen"] for r in mine], float),
          np.array([r.get("tokens_end") or 0 for r in mine], np.int64))


def new_entity_bits(parts: source.SentenceParts, spec) -> np.ndarray:
  """Bits the Bayes code would pay if each sentence's entity were new: -log2 P(new) +
  log2(V_n^L - K_i) with K_i the entities before sentence i (float64 [N])."""
  k = np.cumsum(parts.is_new) - parts.is_new
  i = np.arange(len(k), dtype=np.float64)
  p_new = np.where(i == 0, 1.0, (spec.beta + spec.alpha * k) / (i + spec.beta))
  return -np.log2(p_new) + np.log2(float(spec.name_space) - k)


def threshold_excess(parts: source.SentenceParts, spec, thresholds=THRESHOLDS
                     ) -> tuple[np.ndarray, np.ndarray]:
  """Excess bits over the Bayes code of each count-threshold learner, per sentence: (name +
  value, value) float64 [N, C] each (0 where the entity is new or seen >= c times)."""
  name_x = new_entity_bits(parts, spec) - parts.entity_bits - parts.name_bits
  value_x = np.where(parts.first_reveal, 0.0, parts.value_prior_bits - parts.value_bits)
  old = ~parts.is_new
  c = np.asarray(thresholds)[None, :]
  unknown = old[:, None] & (parts.occurrences_before[:, None] < c)
  return (np.where(unknown, (name_x + value_x)[:, None], 0.0),
          np.where(unknown, value_x[:, None], 0.0))


def per_step(x_NxC: np.ndarray, sentences_S: np.ndarray) -> np.ndarray:
  """Sums of per-sentence rows over each step's sentences (consecutive, in order): [S, C]."""
  ends = np.cumsum(sentences_S)
  cum = np.vstack([np.zeros((1,) + x_NxC.shape[1:]), np.cumsum(x_NxC, 0)])
  return cum[ends] - cum[ends - sentences_S]


def replicate_bins(spec, config, sentences_S: np.ndarray, groups, num: int) -> dict:
  """The learners' excess per knowledge / value token on `num` independent streams of the
  same spec, read in the run's steps (same sentences per step) and averaged over the
  run's log-bins `groups` of steps: {knowledge, value}: [R][B][C]."""
  out = {"knowledge": [], "value": []}
  L = spec.name_length
  total = int(sentences_S.sum())
  for r in range(num):
    parts = source.sentence_parts(spec, REPLICATE_SEED_BASE + r, max(total, 1))
    know, value = (per_step(x, sentences_S) for x in threshold_excess(parts, spec))
    n = np.maximum(sentences_S, 1)[:, None].astype(float)
    for name, y in (("knowledge", know / (n * (L + 1))), ("value", value / n)):
      out[name].append(np.round([y[g].mean(0) for g in groups], 5).tolist())
  return out


def oracle_value_excess(parts: source.SentenceParts, window: slice, grid: int = ORACLE_GRID
                        ) -> dict:
  """Value excess (bits per value token) over the sentences `window` of the oracle storing
  the m most frequent entities of the whole stream: it pays the prior for every repeated
  fact of an unstored entity (the Bayes code pays 0), for m on a geometric grid."""
  counts = np.bincount(parts.entity)
  rank = np.empty(len(counts), np.int64)
  rank[np.argsort(-counts, kind="stable")] = np.arange(len(counts))
  e = parts.entity[window]
  cost = np.where(parts.first_reveal[window], 0.0, parts.value_prior_bits[window])
  by_rank = np.bincount(rank[e], weights=cost, minlength=len(counts))   # cost of rank r
  after = cost.sum() - np.concatenate([[0.0], np.cumsum(by_rank)])        # ranks >= m
  entities = int((counts > 0).sum())
  m = np.unique(np.geomspace(1, entities, grid).astype(np.int64))
  return {"m": m.tolist(), "value_excess": (after[m] / max(len(e), 1)).tolist(),
          "entities": entities}


def entities_per_bin(entity: np.ndarray, upto: int) -> list[int]:
  """Entities whose occurrences among the first `upto` sentences lie in [2^b, 2^(b+1)),
  b = 0 .. PROBE_BINS - 1 (the last bin open)."""
  counts = np.bincount(entity[:upto])
  counts = counts[counts > 0]
  b = np.minimum(np.floor(np.log2(counts)).astype(np.int64), PROBE_BINS - 1)
  return np.bincount(b, minlength=PROBE_BINS).tolist()


def reference_learners(config, rows: list[dict], eval_steps=(),
                       num_replicates: int = NUM_REPLICATES) -> dict:
  """The JSON of the module docstring for a stream run's config and metrics rows."""
  from kcompress.analysis.claims_curves import log_bins
  spec = spec_lib.data_spec(config.data)
  steps, tokens, sentences_S = sentences_per_step(rows)
  total = int(sentences_S.sum())
  parts = source.sentence_parts(spec, int(config.seed), max(total, 1))
  know, value = (per_step(x, sentences_S) for x in threshold_excess(parts, spec))
  ends = np.cumsum(sentences_S)
  tail = max(1, int(math.ceil(ORACLE_WINDOW * len(steps))))
  window = slice(int(ends[-tail] - sentences_S[-tail]), int(ends[-1]))
  at = {int(s): int(e) for s, e in zip(steps, ends)}
  groups = log_bins(tokens)
  return {"thresholds": list(THRESHOLDS), "steps": steps.tolist(), "tokens": tokens.tolist(),
          "knowledge_tokens": (sentences_S * (spec.name_length + 1)).tolist(),
          "value_tokens": sentences_S.tolist(),
          "excess_bits": np.round(know, 4).tolist(),
          "value_excess_bits": np.round(value, 4).tolist(),
          "replicates": dict(replicate_bins(spec, config, sentences_S, groups, num_replicates),
                             bins=[[int(steps[g[0]]), int(steps[g[-1]])] for g in groups]),
          "entities_per_bin": {str(s): entities_per_bin(parts.entity, at[s])
                               for s in eval_steps if s in at},
          "oracle": dict(oracle_value_excess(parts, window), window_steps=[
              int(steps[-tail]), int(steps[-1])])}


def write(workdir: str, config, rows: list[dict], eval_steps=()) -> str:
  """Writes WORKDIR/reference_learners.json; returns its path."""
  from kcompress import metrics
  path = os.path.join(workdir, "reference_learners.json")
  metrics.write_json(path, reference_learners(config, rows, eval_steps))
  return path


def write_for_workdir(workdir: str) -> str:
  """reference_learners.json of a finished (or running) stream workdir, from its config,
  metrics rows and probe steps."""
  from kcompress import metrics, setup
  from kcompress.errors import UserError
  config = setup.read_config(workdir)
  if config.data.get("num_sentences", 0) > 0:
    raise UserError(f"--workdir={workdir}: a finite-dataset run; reference learners are "
                    "priced on a stream")
  rows = metrics.read_rows(os.path.join(workdir, "metrics.jsonl"))
  if not rows:
    raise UserError(f"--workdir={workdir}: no metrics.jsonl rows")
  probe_steps = sorted({r["step"] for r in metrics.read_rows(
      os.path.join(workdir, "probes.jsonl"))})
  return write(workdir, config, rows, probe_steps)


def main(argv):
  from absl import flags
  from kcompress.errors import UserError
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {argv[1:]}: use --workdir=DIR")
  print(f"reference learners: {write_for_workdir(flags.FLAGS.workdir)}")


if __name__ == "__main__":
  from absl import flags as _flags
  from kcompress import cli
  _flags.DEFINE_string("workdir", None, "A stream run's workdir.", required=True)
  cli.run(main)
