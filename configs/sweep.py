"""The default width sweep on Syntax-Knowledge data.

Run (minutes on a 2-core laptop CPU):

  python -m kcompress.main --config=configs/sweep.py

Variants: `configs/sweep.py:tiny` (seconds; what the tests use) and
`configs/sweep.py:gpu` (one accelerator: widths up to 1024, >= 100M tokens).
Any field can be overridden: `--config.model.widths='(16,32)'`,
`--config.data.alpha=0.7`.

What it should show: the syntax bits of every width reach the Bayes floor long
before the value (fact) bits do, and facts are learned in order of frequency.
"""

import ml_collections

VARIANTS = ("default", "tiny", "gpu")


def data_config() -> ml_collections.ConfigDict:
  """Generator defaults (SPEC section 2)."""
  d = ml_collections.ConfigDict()
  # Knowledge: Pitman-Yor CRP over entities.
  d.alpha = 0.5                 # discount in [0, 1): Heaps exponent
  d.beta = 10.0                 # concentration > -alpha
  d.num_attributes = 4          # A facts per entity
  d.values_per_attribute = 64   # V_a (same for every attribute)
  d.value_base = "uniform"      # H_a: "uniform" or "zipf"
  d.value_zipf_exponent = 1.0   # exponent of the Zipf base measure
  # Names: name_length tokens over an alphabet of name_alphabet tokens.
  d.name_alphabet = 24          # V_n
  d.name_length = 3             # L
  # Syntax: templates, filler slots and synonyms.
  d.num_templates = 8           # T (each tied to attribute t mod A, shuffled)
  d.min_fillers = 2             # filler slots per template, drawn in
  d.max_fillers = 4             # [min_fillers, max_fillers] per template
  d.synonyms_per_slot = 4       # S_s
  d.gamma_template = 1.0        # Dirichlet concentration of theta_T
  d.gamma_synonym = 0.5         # Dirichlet concentration of theta_s
  # Packing.
  d.context_length = 64         # tokens per row
  d.packing = "sentence"        # "sentence": rows of whole sentences, tails padded (no
                                # loss, no Bayes bits); "stream": the stream cut into rows
  d.num_sentences = 0           # 0: infinite stream; N > 0: finite dataset of N sentences
  return d


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant = arg or "default"
  if variant not in VARIANTS:
    raise ValueError(f"configs/sweep.py: unknown variant {variant!r}; choose one of {VARIANTS}")
  c = ml_collections.ConfigDict()
  c.variant = variant
  c.seed = 0                    # data seed: one stream shared by every model
  c.data = data_config()

  c.model = ml_collections.ConfigDict()
  c.model.widths = (32, 64, 96, 128)   # d_model of each swept model
  c.model.depth = 2
  c.model.head_dim = 16
  c.model.mlp_ratio = 4
  c.model.dtype = "auto"        # matmul compute dtype: "auto" = bfloat16 on GPU/TPU, float32 on CPU
  # Widths per padded bucket inside the one compiled step: 0 = a bucket per width
  # (no padding), 1 = all widths padded to the widest, k = k buckets. Chosen by
  # `python -m kcompress.bench sweep` (README): 0 on CPU.
  c.model.buckets = 0

  # Device mesh (kcompress.mesh): models sharded over `model`, batch rows over `data`;
  # -1 = all the devices the other axis leaves. One device: 1 x 1.
  c.mesh = ml_collections.ConfigDict()
  c.mesh.model = 1
  c.mesh.data = -1

  c.sweep = ml_collections.ConfigDict()
  c.sweep.seeds = (0,)          # model init seeds; the sweep is widths x seeds

  c.optim = ml_collections.ConfigDict()
  c.optim.lr = 6e-3             # peak learning rate (at base_width under muP)
  c.optim.lr_scaling = "mup"    # "constant" or "mup" (lr * base_width / width)
  c.optim.base_width = 32
  c.optim.warmup_steps = 100
  c.optim.decay = "cosine"      # "cosine" or "constant"
  c.optim.final_lr_fraction = 0.1
  c.optim.weight_decay = 0.0
  c.optim.b1 = 0.9
  c.optim.b2 = 0.98
  c.optim.grad_clip = 1.0

  c.probe = ml_collections.ConfigDict()
  c.probe.per_bin = 64          # knowledge probes per occurrence bin (1, 2-3, 4-7, ...)
  c.probe.num_bins = 10
  c.probe.num_fresh = 128       # hallucination probes of each kind (fresh, unrevealed)
  c.probe.num_next = 512        # sampled-error prompts: the stream's next sentences per eval
  c.probe.confident = 0.5       # a "confident answer": top-1 probability above this
  c.probe.seed = 0

  c.ksf = ml_collections.ConfigDict()
  c.ksf.sample_batches = 8      # batches of the run (evenly spread) that estimate data bits
                                # (8: two-part evals cost ~4% of a default run; 16: ~8%)
  c.ksf.precisions = (-2, 0, 2, 4, 6)  # quantisation step = rms(tensor) * 2^-precision

  # The Bayes code's data law of this data spec, measured from independent streams when a
  # stream run ends (WORKDIR/bayes_laws.json; `python -m kcompress.data laws`); 0: skipped.
  c.laws = ml_collections.ConfigDict()
  c.laws.replicates = 8
  c.laws.sentences = 3_000_000

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 16       # rows per step (every model sees the same rows)
  c.train.num_steps = 1500
  c.train.schedule_steps = 0    # lr schedule horizon; 0 = the num_steps the run starts with
                                # (a run extended on resume continues at the final lr)
  c.log_every = 50
  c.eval_every = 250
  c.checkpoint_every = 500

  if variant == "tiny":
    c.data.alpha = 0.5
    c.data.beta = 5.0
    c.data.num_templates = 4
    c.data.context_length = 32
    c.model.widths = (16, 32)
    c.model.depth = 1
    c.model.head_dim = 8
    c.train.batch_size = 4
    c.train.num_steps = 40
    c.optim.warmup_steps = 5
    c.optim.base_width = 16
    c.log_every = 10
    c.eval_every = 20
    c.probe.per_bin = 8
    c.probe.num_bins = 5
    c.probe.num_fresh = 16
    c.probe.num_next = 64
    c.checkpoint_every = 20
    c.laws.replicates = 0         # the law needs ~1 minute of streams: measured by tests apart
  elif variant == "gpu":
    c.data.context_length = 256
    c.data.name_length = 4
    c.model.widths = (128, 256, 512, 768, 1024)
    c.model.depth = 6
    c.model.head_dim = 64
    c.optim.base_width = 128
    c.optim.lr = 1e-3
    c.train.batch_size = 128
    c.train.num_steps = 4000    # 128 * 256 * 4000 = 131M tokens per model
    c.log_every = 100
    c.eval_every = 500
    c.checkpoint_every = 1000
  return c
