"""Fine-tuning a pretrained width sweep on new knowledge (SPEC section 5).

Run after the default sweep (minutes on a 2-core laptop CPU):

  python -m kcompress.main --config=configs/sweep.py                 # pretrain: runs/sweep
  python -m kcompress.main --config=configs/finetune.py              # fine-tune: runs/finetune

`configs/finetune.py:tiny` fine-tunes `runs/sweep-tiny` (seconds). Every model of the
pretrained sweep continues on batches that mix new entities (never in the pretraining
stream), `entities_per_count` of them for each repetition count, with replayed stream
rows (`replay_fraction`, 0 to 1). Data, model and sweep sections must match the
pretrained run's (they are the sweep config's; a mismatch is an error naming the field).

What it should show: injected facts are acquired in order of repetitions (wider
models need fewer); without replay the pretraining bins are forgotten, rare ones first;
and training on new facts does not cure confident answers on never-seen entities.
"""

import ml_collections

from configs import sweep


def get_config(arg: str | None = None):
  variant = arg or "default"
  c = sweep.get_config(variant)
  c.init_from = "runs/sweep" if variant == "default" else f"runs/sweep-{variant}"
  c.init_step = 0               # pretrained checkpoint step; 0 = the latest

  c.finetune = ml_collections.ConfigDict()
  c.finetune.repetitions = (1, 2, 4, 8, 16, 32, 64, 128)  # deliveries per injected entity
  c.finetune.entities_per_count = 16   # injected entities per repetition count
  c.finetune.replay_fraction = 0.5     # share of each batch from the continued stream
  c.finetune.seed = 0                  # shuffles the injected occurrences over the run

  c.train.num_steps = 0         # 0: exactly enough steps to deliver the injected rows
  c.optim.warmup_steps = 10
  c.optim.lr = c.optim.lr / 2
  c.eval_every = 25
  c.checkpoint_every = 100
  if variant == "tiny":
    c.finetune.repetitions = (1, 2, 4, 8)
    c.finetune.entities_per_count = 4
    c.optim.warmup_steps = 2
    c.eval_every = 5
    c.checkpoint_every = 10
  return c
