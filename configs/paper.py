"""The paper's experiments, one variant each (SPEC sections 6-7; issue: claims and verdicts).

Every variant runs end to end with one command and ends with a report whose first table
is the claims with their verdicts (`WORKDIR/report/report.md`, `summary.json` key
`claims`):

  python -m kcompress.main --config=configs/paper.py:data                            # runs/paper-data
  python -m kcompress.main --config=configs/paper.py:data --config.data.alpha=0.3 \\
      --workdir=runs/paper-data-a0.3
  python -m kcompress.main --config=configs/paper.py:size                            # runs/paper-size
  python -m kcompress.main --config=configs/paper.py:finetune                        # after :data
  bash launch/alphas.sh                  # :data at alpha 0.3, 0.5, 0.7, then the comparison

Variants (runtimes measured on this project's 2-core CPU; see README "What the paper
claims, and what kcompress measures"):

- `data`: the data-limited regime. Widths 32/64/128 (depth 2) on one long stream at a
  constant learning rate after warmup (a decaying schedule would bend the loss-vs-tokens
  curve the data law is fitted on). Tests Heaps, Zipf, syntax before knowledge,
  frequency-ordered acquisition, wider-learns-rarer, the data exponent 1 - alpha of the
  knowledge part (models and the Bayes code), hallucination. About 9 minutes per alpha
  (`launch/alphas.sh` runs 0.3, 0.5, 0.7: 27 minutes measured).
- `data_long`: `data` with widths 64 and 128 for 32,000 steps (33M token positions, about
  two decades after syntax is learned), for the end of the data law: local slopes and
  fits over its last decades. Grow it in steps (`--config.train.num_steps`; the lr is
  constant, so an extended run equals a longer one).
- `size`: the capacity-limited regime on a stream. Small widths 4-48 at depth 1 on one long
  stream (16,000 steps, 16M token positions; grow it with `--config.train.num_steps`) at a
  constant lr, until the small models' value (fact) excess flattens. Tests the size law
  decomposed: stored entities m vs parameters, value excess vs m (theory m^(1 - 1/alpha),
  beside the oracle storing the m most frequent entities on the same stream), and the size
  exponent they imply.
- `finetune`: fine-tunes the `data` run (`runs/paper-data`; make it first, or point
  `--config.init_from` at one of `launch/alphas.sh`'s runs, e.g. runs/paper-data-a0.5) on injected
  entities with 1-128 deliveries and half the batch replayed. Tests acquisition vs
  repetitions, forgetting, and whether learning new facts raises confident answers on
  never-seen entities. About 2 minutes.
- `data_gpu`, `data_long_gpu`, `size_gpu`, `finetune_gpu`: the same experiments sized for one accelerator
  (wider and deeper models, longer streams); not run on this CPU.
"""

import ml_collections

from configs import sweep

VARIANTS = ("data", "data_long", "size", "finetune", "data_gpu", "data_long_gpu", "size_gpu",
            "finetune_gpu")


def _data_regime(c: ml_collections.ConfigDict, gpu: bool) -> None:
  c.data.name_alphabet = 48          # 48^3 = 110k names: room for E[K_n] at alpha 0.7
  c.model.widths = (32, 64, 128)
  c.model.depth = 2
  c.model.head_dim = 16
  c.optim.decay = "constant"
  c.optim.lr = 6e-3
  c.optim.warmup_steps = 100
  c.train.batch_size = 16
  c.train.num_steps = 3000           # 16 x 64 x 3000 = 3.1M token positions
  c.log_every = 100
  c.eval_every = 500
  c.checkpoint_every = 1000
  c.probe.per_bin = 64
  c.probe.num_fresh = 256
  c.probe.num_next = 1024
  c.ksf.sample_batches = 8
  c.ksf.precisions = (0, 4)
  if gpu:
    c.data.context_length = 256
    c.data.name_length = 4
    c.data.name_alphabet = 48        # 48^4 = 5.3M names: room for E[K_n] at alpha 0.7
    c.model.widths = (128, 256, 512, 1024)
    c.model.depth = 4
    c.model.head_dim = 64
    c.optim.base_width = 128
    c.optim.lr = 2e-3
    c.train.batch_size = 64
    c.train.num_steps = 20000        # 64 x 256 x 20000 = 328M token positions
    c.log_every = 200
    c.eval_every = 2000
    c.checkpoint_every = 2000


def _long_regime(c: ml_collections.ConfigDict, gpu: bool) -> None:
  """`data` with two widths run ~10x longer: >= 1.5 decades of tokens after syntax is
  learned (~3e5 tokens on CPU), for the asymptotic end of the data law."""
  c.model.widths = (64, 128) if not gpu else (256, 1024)
  c.data.name_alphabet = 72          # 72^3 = 373k names: room for E[K_n] at alpha 0.7
  c.train.num_steps = 32000          # 16 x 64 x 32000 = 33M token positions (grow in steps)
  c.log_every = 500
  c.eval_every = 2000
  c.checkpoint_every = 2000
  if gpu:
    c.data.name_alphabet = 52        # 52^4 = 7.3M names
    c.train.num_steps = 200000       # 64 x 256 x 200000 = 3.3G token positions
    c.eval_every = 10000
    c.checkpoint_every = 10000


def _size_regime(c: ml_collections.ConfigDict, gpu: bool) -> None:
  """The capacity-limited regime on an unbounded tail: small widths (depth 1) on one long
  stream at a constant lr, until the small models' value excess flattens. A finite dataset
  would truncate the entity tail and add memorised row order to the name bits."""
  c.data.name_alphabet = 56          # 56^3 = 176k names: room for E[K_n] at alpha 0.7
  c.model.widths = (4, 8, 12, 16, 24, 32, 48)
  c.model.depth = 1
  c.model.head_dim = 4
  c.optim.base_width = 32
  c.optim.lr = 6e-3
  c.optim.decay = "constant"         # a decaying lr would flatten the curves by itself
  c.optim.warmup_steps = 100
  c.train.batch_size = 16
  c.train.num_steps = 16000          # 16 x 64 x 16000 = 16M token positions (grow in steps)
  c.log_every = 500
  c.eval_every = 2000
  c.checkpoint_every = 2000
  c.probe.per_bin = 64
  c.ksf.sample_batches = 8
  c.ksf.precisions = (0, 4)
  if gpu:
    c.data.name_length = 4           # 48^4 = 5.3M names
    c.model.widths = (8, 16, 24, 32, 48, 64, 96, 128)
    c.model.head_dim = 8
    c.train.batch_size = 64
    c.train.num_steps = 100000
    c.eval_every = 10000
    c.checkpoint_every = 10000


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant = arg or "data"
  if variant not in VARIANTS:
    raise ValueError(f"configs/paper.py: unknown variant {variant!r}; choose one of {VARIANTS}")
  gpu = variant.endswith("_gpu")
  experiment = variant.removesuffix("_gpu")
  c = sweep.get_config("default")
  c.variant = variant
  if experiment in ("data", "data_long", "finetune"):
    _data_regime(c, gpu)
    if experiment == "data":
      c.probe.num_bins = 11          # bins to 1024+: the capacity row at >= 1000 exposures
    if experiment == "data_long":
      _long_regime(c, gpu)
  else:
    _size_regime(c, gpu)
  if experiment == "finetune":
    c.init_from = "runs/paper-data" + ("_gpu" if gpu else "")
    c.init_step = 0
    c.finetune = ml_collections.ConfigDict()   # Gekhman et al.'s design (kcompress.gekhman)
    c.finetune.repetitions = ()
    c.finetune.entities_per_count = 0
    c.finetune.replay_fraction = 0.0     # the fine-tuning sets alone
    c.finetune.seed = 0
    c.finetune.unknown_shares = (0.0, 0.25, 0.5, 0.75, 1.0)   # plus the control
    c.finetune.set_size = 128 if not gpu else 512       # examples per set
    c.finetune.heldout_size = 128 if not gpu else 512   # held-out known facts
    c.finetune.candidates = 2048 if not gpu else 8192   # most-stated facts SliCK categorises
    c.finetune.epochs = 100
    c.finetune.variants = 4
    c.finetune.samples = 16
    c.finetune.arm = ""
    c.finetune.design_file = ""
    c.train.num_steps = 0            # each arm: exactly its set's epochs
    c.optim.warmup_steps = 10
    c.optim.lr = c.optim.lr / 2
    c.eval_every = 10 if not gpu else 20
    c.checkpoint_every = 100
  return c
