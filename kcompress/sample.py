"""See what a trained model says: sentences it writes, each fact marked against the world.

  python -m kcompress.sample --workdir=DIR [--num=20] [--width=WIDTH] [--step=S] [--seed=0]

Restores the run's checkpoint (default: the latest) and samples `num` sentences from the
model of width WIDTH (default: the widest; its first seed), temperature 1, from BOS
(`kcompress.sampling`). Prints one line per sentence: its mark (true, false, invented,
malformed; "(never stated)" when the fact was never in the data the model read), the
sentence, and the Bayes predictor's code length of the same sentence read next (bits, and
its probability). Bad inputs end as one line `error: ...` with exit status 2.
"""

from __future__ import annotations

import collections

from absl import flags

from kcompress import sampling
from kcompress.errors import UserError


def sample(workdir: str, num: int, width: int | None = None, step: int | None = None,
           seed: int = 0) -> tuple[dict, list[dict]]:
  """({workdir, step, width, seed}, marked sentences) of one model of a run."""
  from kcompress import train, workdir as workdir_lib
  if num < 1:
    raise UserError(f"--num={num}: must be >= 1 (sentences to print)")
  if not workdir:
    raise UserError("--workdir is required: a kcompress run directory")
  restored = workdir_lib.restore(workdir, step)
  models = list(restored.setup.models)
  widths = sorted({w for w, _ in models})
  want = widths[-1] if width is None else width
  if want not in widths:
    raise UserError(f"--width={width}: not in this sweep; it has widths {widths}")
  i = next(k for k, (w, _) in enumerate(models) if w == want)
  job = train.describe(restored.config, restored.setup)
  seen = job.seen_counts(restored.data_state, restored.step)
  rows = sampling.model_sentences(restored.setup, restored.states, i, restored.setup.spec,
                                  restored.pipe.world, seen, num, seed)
  return {"workdir": workdir, "step": restored.step, "width": want, "seed": models[i][1]}, rows


def main(argv):
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {argv[1:]}: every input is a --flag")
  f = flags.FLAGS
  head, rows = sample(f.workdir, f.num, f.width, f.step, f.seed)
  counts = collections.Counter(r["mark"] for r in rows)
  print(f"{head['workdir']} step {head['step']}, width {head['width']} seed {head['seed']}: "
        + ", ".join(f"{counts[m]} {m}" for m in sampling.MARKS))
  for r in rows:
    print(sampling.describe(r))


if __name__ == "__main__":
  flags.DEFINE_string("workdir", None, "A kcompress run directory.")
  flags.DEFINE_integer("num", 20, "Sentences to print.")
  flags.DEFINE_integer("width", None, "Width of the model (default: the widest).")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
  flags.DEFINE_integer("seed", 0, "Sampling seed.")
  from kcompress import cli
  cli.run(main)
