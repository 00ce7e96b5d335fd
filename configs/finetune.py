"""Fine-tuning a pretrained width sweep on new knowledge (SPEC section 5).

Run after the default sweep (minutes on a 2-core laptop CPU):

  python -m kcompress.main --config=configs/sweep.py                 # pretrain: runs/sweep
  python -m kcompress.main --config=configs/finetune.py              # fine-tune: runs/finetune

Variants:
- `default`: every model of the pretrained sweep continues on batches that mix new
  entities (never in the pretraining stream), `entities_per_count` of them for each
  repetition count, with replayed stream rows (`replay_fraction`, 0 to 1). What it should
  show: injected facts are acquired in order of repetitions (wider models need fewer);
  without replay the pretraining bins are forgotten, rare ones first.
- `tiny`: Gekhman et al. (2024)'s design at toy size, from `runs/sweep-tiny` (6 minutes
  measured on this project's shared 2-core CPU: six fine-tuning runs, mostly compilation):
  fine-tuning sets of `set_size` examples with 0/25/50/75/100%
  Unknown examples (facts of new entities; the rest facts the pretrained models know best,
  by SliCK) plus the control (the 50% set's Known examples only), each trained for
  `epochs` epochs; outcome: accuracy on `heldout_size` held-out known facts, at early stop
  and at convergence (`kcompress.gekhman`, `kcompress.design`). The toy pretrained models
  know almost nothing, so its verdicts are inconclusive; `configs/paper.py:finetune` is
  the design at size.
- `inject_tiny`: the `default` injection at toy size, from `runs/sweep-tiny` (seconds).

Data, model and sweep sections must match the pretrained run's (they are the sweep
config's; a mismatch is an error naming the field).
"""

import ml_collections

from configs import sweep

VARIANTS = ("default", "tiny", "inject_tiny")


def finetune_section() -> ml_collections.ConfigDict:
  """The `finetune` section: the injection experiment, and the design's fields (off)."""
  f = ml_collections.ConfigDict()
  f.repetitions = (1, 2, 4, 8, 16, 32, 64, 128)  # deliveries per injected entity
  f.entities_per_count = 16   # injected entities per repetition count
  f.replay_fraction = 0.5     # share of each batch from the continued stream
  f.seed = 0                  # shuffles the injected occurrences / the design's draws
  # Gekhman et al.'s design (kcompress.gekhman): on when unknown_shares is not empty.
  f.unknown_shares = ()       # e.g. (0.0, 0.25, 0.5, 0.75, 1.0); 0.5 needed (the control)
  f.set_size = 256            # examples (one sentence each) per fine-tuning set
  f.heldout_size = 256        # held-out known facts (disjoint from every set)
  f.candidates = 4096         # most-stated pretraining facts categorised by SliCK
  f.epochs = 100              # passes over the set (convergence: the set fitted)
  f.variants = 4              # prompt variants per fact (SliCK's exemplar sets)
  f.samples = 16              # sampled answers per variant at temperature 0.5 (SliCK)
  f.arm = ""                  # set by kcompress.design for each arm's run
  f.design_file = ""          # the design's design.json (set by kcompress.design)
  return f


def design(c: ml_collections.ConfigDict) -> None:
  """Turns a fine-tuning config into Gekhman et al.'s design (no replay: the sets alone)."""
  c.finetune.unknown_shares = (0.0, 0.25, 0.5, 0.75, 1.0)
  c.finetune.replay_fraction = 0.0
  c.finetune.repetitions = ()
  c.finetune.entities_per_count = 0


def get_config(arg: str | None = None):
  variant = arg or "default"
  if variant not in VARIANTS:
    raise ValueError(f"configs/finetune.py: unknown variant {variant!r}; choose one of "
                     f"{VARIANTS}")
  base = "default" if variant == "default" else "tiny"
  c = sweep.get_config(base)
  c.variant = variant
  c.init_from = "runs/sweep" if base == "default" else "runs/sweep-tiny"
  c.init_step = 0               # pretrained checkpoint step; 0 = the latest
  c.finetune = finetune_section()

  c.train.num_steps = 0         # 0: exactly enough steps to deliver the injected rows
  c.optim.warmup_steps = 10
  c.optim.lr = c.optim.lr / 2
  c.eval_every = 25
  c.checkpoint_every = 100
  if base == "tiny":
    c.finetune.repetitions = (1, 2, 4, 8)
    c.finetune.entities_per_count = 4
    c.optim.warmup_steps = 2
    c.eval_every = 5
    c.checkpoint_every = 10
  if variant == "tiny":
    design(c)
    c.finetune.set_size = 16
    c.finetune.heldout_size = 16
    c.finetune.candidates = 64
    c.finetune.epochs = 6
    c.finetune.variants = 2
    c.finetune.samples = 4
    c.eval_every = 2
  return c
