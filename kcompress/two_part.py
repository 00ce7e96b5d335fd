"""Two-part codes of trained models (SPEC section 5): quantised parameters + data, in bits.

The model part: every active (unpadded) parameter is quantised to an integer multiple
of a per-tensor step, step = rms(active entries) * 2^-precision, and the integers of
the whole model are coded by a two-part enumerative code (`integer_code_bits`): a
header (the distinct values and their counts, Elias-gamma) then the sequence given its
histogram, log2(N! / prod c_v!) bits. Each tensor's step costs 32 bits (a float32).
This is a real code length: a decoder knowing the architecture and width rebuilds the
quantised parameters exactly.

The data part: the bits the DEQUANTISED model assigns to the run's data x (all tokens
the run trains on), estimated on S batches spread evenly over the run (`sample_batches`;
exact when S >= num_steps): mean bits per sampled batch x num_steps.

The prequential estimate of a model's complexity after t steps: the prequential code
of x[:t] minus the model's own code of x[:t] (the sampled batches before t).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import gammaln

from kcompress import model as model_lib, step as step_lib
from kcompress.data import source

STEP_BITS = 32   # one float32 quantisation step per tensor


def elias_gamma_bits(n) -> np.ndarray:
  """Length in bits of the Elias-gamma code of integers n >= 1."""
  n = np.asarray(n, np.float64)
  if np.any(n < 1):
    raise ValueError("Elias gamma codes integers >= 1")
  return 2 * np.floor(np.log2(n)) + 1


def integer_code_bits(values: np.ndarray) -> float:
  """Bits of a two-part code of a sequence of N integers (N known to the decoder).

  Header: K = number of distinct values, the smallest value (zigzag), the gaps between
  consecutive distinct values, and each value's count, all Elias-gamma. Body: the
  index of the sequence among those with that histogram, log2(N! / prod c_v!) bits
  (+1 for rounding up).
  """
  values = np.asarray(values).ravel()
  if values.size == 0:
    return 0.0
  distinct, counts = np.unique(values, return_counts=True)
  first = int(distinct[0])
  zigzag = 2 * first if first >= 0 else -2 * first - 1
  header = (elias_gamma_bits(len(distinct)) + elias_gamma_bits(zigzag + 1)
            + elias_gamma_bits(np.diff(distinct)).sum() + elias_gamma_bits(counts).sum())
  body = (gammaln(values.size + 1) - gammaln(counts + 1).sum()) / math.log(2.0)
  return float(header + math.ceil(body))


def quantise(params, mask, precision: int):
  """(integer tree, step tree): params ~ ints * step on the active entries, 0 elsewhere.

  step = rms of the tensor's active entries * 2^-precision (1.0 for an all-zero tensor).
  Host numpy, float32 arithmetic: deterministic. Non-finite entries (a diverged model,
  whose data bits are NaN anyway) quantise to 0.
  """
  def one(p, m):
    p, m = np.asarray(p, np.float32), np.asarray(m, np.float32) > 0
    m &= np.isfinite(p)
    active = p[m]
    rms = float(np.sqrt(np.mean(active.astype(np.float64) ** 2))) if active.size else 0.0
    step = np.float32(rms * 2.0 ** -precision) if rms > 0 else np.float32(1.0)
    ints = np.where(m, np.round(np.where(m, p, 0) / step), 0).astype(np.int64)
    return ints, step
  pairs = jax.tree.map(one, params, mask)
  is_pair = lambda x: isinstance(x, tuple)
  return (jax.tree.map(lambda x: x[0], pairs, is_leaf=is_pair),
          jax.tree.map(lambda x: x[1], pairs, is_leaf=is_pair))


def dequantise(ints, steps):
  """The quantised model's float32 parameters: ints * step."""
  return jax.tree.map(lambda q, s: (q * s).astype(np.float32), ints, steps)


def param_code_bits(ints, mask) -> float:
  """Complexity in bits of a quantised model: its active integers + one step per tensor."""
  ints_l, mask_l = jax.tree.leaves(ints), jax.tree.leaves(mask)
  active = np.concatenate([q[np.asarray(m) > 0] for q, m in zip(ints_l, mask_l)])
  return integer_code_bits(active) + STEP_BITS * len(ints_l)


# ------------------------------------------------------------------ data part


def sample_indices(num_steps: int, num_samples: int) -> np.ndarray:
  """Step indices (0-based batches) of the data sample: evenly spread, all if S >= steps."""
  if num_samples >= num_steps:
    return np.arange(num_steps)
  return np.unique(np.linspace(0, num_steps - 1, num_samples).round().astype(int))


def sample_batches(pipe, num_steps: int, num_samples: int):
  """(indices [S], batches stacked [S, B, L]): the run's batches at `sample_indices`.

  Regenerated from the data pipe's initial state, so a resumed run gets the same sample.
  """
  idx = sample_indices(num_steps, num_samples)
  advance = skip_steps(pipe.step)
  state, done, out = pipe.init, 0, []
  for t in idx.tolist():
    state = advance(state, t - done)
    state, batch, _ = pipe.step(state)
    out.append(jax.device_get(batch))
    done = t + 1
  return idx, jax.tree.map(lambda *x: np.stack(x), *out)


def skip_steps(data_step):
  """`(state, k) -> state` after k data steps, in one compiled loop (no batch leaves the
  device): the same states as k calls of `data_step`, at a fraction of the dispatch cost."""
  @jax.jit
  def advance(state, k):
    return jax.lax.fori_loop(0, k, lambda _, s: data_step(s)[0], state)
  return source.x64(advance)


def make_scorer(cfg: model_lib.ModelConfig):
  """jit of `(params_M, widths_M, batches_SxBxL) -> bits [M, S]`: each model's summed bits
  of each batch (vmapped over models, a loop over batches)."""
  def one(params, width, batches):
    def body(_, batch):
      return None, step_lib.token_bits(params, cfg, width, batch).sum()
    return jax.lax.scan(body, None, batches)[1]
  return jax.jit(jax.vmap(one, in_axes=(0, 0, None)))


def two_part_points(setup, states, sample, precisions, scorers=None) -> list[dict]:
  """`states`: the real models' per-bucket TrainStates on the host (numpy). Per model: data bits per sampled batch under the trained and each quantised model, and
  the quantised models' complexity in bits.

  Returns one dict per model (sweep order): `bits_S` (trained model, [S] float),
  `quantised`: [{precision, complexity_bits, bits_S}].
  """
  _, batches = sample
  batches = {k: jnp.asarray(v) for k, v in batches.items()}
  out = [None] * setup.layout.num_models
  for b, (cfg, idx) in enumerate(setup.layout.buckets):
    scorer = scorers[b] if scorers else make_scorer(cfg)
    state = states[b]
    widths = np.asarray(state.width)
    bits = np.asarray(scorer(state.params, state.width, batches), np.float64)
    quantised = [[] for _ in idx]
    for precision in precisions:
      deq, cost = [], []
      for j, width in enumerate(widths):
        params = jax.tree.map(lambda x: x[j], state.params)
        mask = jax.device_get(model_lib.param_mask(cfg, int(width)))
        ints, steps = quantise(params, mask, precision)
        deq.append(dequantise(ints, steps))
        cost.append(param_code_bits(ints, mask))
      stacked = jax.tree.map(lambda *x: np.stack(x), *deq)
      qbits = np.asarray(scorer(stacked, state.width, batches), np.float64)
      for j in range(len(idx)):
        quantised[j].append({"precision": int(precision), "complexity_bits": cost[j],
                             "bits_S": qbits[j]})
    for j, i in enumerate(idx):
      out[i] = {"bits_S": bits[j], "quantised": quantised[j]}
  return out


def ksf_rows(step_done: int, num_steps: int, sample_idx: np.ndarray, points: list[dict],
             preq_bits_M) -> list[dict]:
  """JSON rows of one eval: data bits of x under each model (estimated from the sample),
  quantised two-part points, and the prequential complexity estimate (bits)."""
  seen = sample_idx < step_done
  rows = []
  for i, p in enumerate(points):
    scale = lambda bits_S: float(np.mean(bits_S) * num_steps)
    model_seen = float(np.mean(p["bits_S"][seen]) * step_done) if seen.any() else None
    rows.append({
        "data_bits": scale(p["bits_S"]),
        "seen_data_bits": model_seen,
        "prequential_complexity_bits": (float(preq_bits_M[i]) - model_seen
                                        if model_seen is not None else None),
        "quantised": [{"precision": q["precision"], "complexity_bits": q["complexity_bits"],
                       "data_bits": scale(q["bits_S"])} for q in p["quantised"]],
    })
  return rows
