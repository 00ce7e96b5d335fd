"""Real compression with a trained model: range-code a fresh stretch of the stream, decode it.

  python -m kcompress.compress --workdir=DIR [--model=WIDTH[,SEED]] [--step=S] --num_sentences=N

The stream continues where the run's checkpoint left it (tokens no model has trained
on), whole batches until at least N sentences have ended. Every row is coded as in
training: given BOS and its own earlier tokens. Each token is coded by constriction's
range coder (32-bit words) under the model's next-token distribution, quantised by
constriction to 24-bit fixed point with a floor, so every token stays codable. Tokens
are coded column by column (position t of every row, then t + 1): the decoder
recomputes the same distributions from the prefixes it has decoded, one batched
forward pass per position.

Rows are laid out as in training (sentence packing: whole sentences, padded tails); a
header sends each row's number of stream tokens (`header_bits`), and padding is never
coded. Prints ONE JSON line: bits_actual (size of the compressed words), header_bits,
bits_total (both), bits_ideal (sum of -log2 p under the float model), overhead_bits,
roundtrip_ok, bayes_bits (the exact Bayes code of the same tokens), compressors_bits (gzip, bz2, xz, zstd of the same
tokens), tokens per second of the coder alone (encode) and with the model's
forward passes (encode_with_model; decode always includes them).

Overhead bound (used by the tests): constriction's leaky quantisation gives every symbol
q_i >= p_i (1 - V 2^-24) (each of V symbols gets one unit of 2^-24 before the rest is
shared in proportion), and the range coder (64-bit state, 32-bit words) truncates its
range, >= 2^32 after renormalisation, to 24-bit probability precision, losing at most a
factor (1 + 2^-8) per symbol; flushing costs at most two words. So
  bits_actual - bits_ideal <= n (-log2(1 - V 2^-24) + log2(1 + 2^-8)) + 64.

Bad inputs (--num_sentences < 1, a malformed --model or one not in the sweep, a missing
workdir, a step with no checkpoint) are checked before anything compiles and end as one
line `error: ...` on stderr with exit status 2 (`kcompress.cli`).
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from kcompress import checkpoint, compressors, model as model_lib, step as step_lib
from kcompress import workdir as workdir_lib
from kcompress.errors import UserError
from kcompress.data.roles import END
from kcompress.data.spec import BOS, END as END_TOKEN

PRECISION_BITS = 24   # constriction's default probability precision for 32-bit words
WORD_BITS = 32


def overhead_bound_bits(num_tokens: int, vocab_size: int) -> float:
  """The bound on bits_actual - bits_ideal derived in the module docstring."""
  per_token = (-np.log2(1 - vocab_size * 2.0 ** -PRECISION_BITS)
               + np.log2(1 + 2.0 ** (PRECISION_BITS - WORD_BITS)))
  return float(num_tokens * per_token + 2 * WORD_BITS)


def row_length_header_bits(num_rows: int, context: int) -> int:
  """Bits that send every row's number of stream tokens (0..C): ceil(log2(C + 1)) each."""
  return int(num_rows * math.ceil(math.log2(context + 1)))


def parse_model(model: str | None) -> tuple[int, ...] | None:
  """--model=WIDTH[,SEED] -> (width,) or (width, seed); None/"" -> None (the default)."""
  if not model:
    return None
  parts = model.split(",")
  if len(parts) > 2 or not all(p.strip().lstrip("-").isdigit() for p in parts):
    raise UserError(f"--model={model}: expected WIDTH or WIDTH,SEED (integers), e.g. 64 or 64,1")
  return tuple(int(p) for p in parts)


def _model_index(models, model: str | None) -> int:
  parts = parse_model(model)
  if parts is None:
    width = max(w for w, _ in models)
    return next(i for i, (w, _) in enumerate(models) if w == width)
  for i, (w, s) in enumerate(models):
    if w == parts[0] and (len(parts) == 1 or s == parts[1]):
      return i
  raise UserError(f"--model={model}: not in this sweep; it has (width, seed) {list(models)}")


def pick_model(restored, model: str | None) -> int:
  """Index of WIDTH[,SEED] in the sweep (default: the widest width, first seed)."""
  return _model_index(list(restored.setup.models), model)


def check_args(workdir: str, model: str | None, num_sentences, step: int | None) -> None:
  """Every input checked before anything compiles: UserError naming the flag.

  The flags that need no workdir come first (so --num_sentences=0 fails without one)."""
  if (not isinstance(num_sentences, (int, np.integer)) or isinstance(num_sentences, bool)
      or num_sentences < 1):
    raise UserError(f"--num_sentences={num_sentences}: must be a positive integer (sentences "
                    "of fresh stream to code)")
  parse_model(model)
  if step is not None and step < 0:
    raise UserError(f"--step={step}: must be a checkpointed step >= 0 (default: the latest)")
  if not workdir:
    raise UserError("--workdir is required: a kcompress run directory")
  if not os.path.isdir(workdir):
    raise UserError(f"--workdir={workdir}: no such directory")
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise UserError(f"--workdir={workdir}: not a kcompress workdir (it has no config.json)")
  try:
    with open(path) as f:
      config = json.load(f)
  except (OSError, ValueError) as e:
    raise UserError(f"--workdir={workdir}: cannot read its config.json ({e})") from None
  try:
    models = list(itertools.product(config["model"]["widths"], config["sweep"]["seeds"]))
  except (KeyError, TypeError):
    raise UserError(f"--workdir={workdir}: its config.json has no model.widths or "
                    "sweep.seeds; is it a kcompress sweep?") from None
  _model_index(models, model)
  steps = checkpoint.steps(workdir)
  if not steps:
    flag = f"--step={step}" if step is not None else f"--workdir={workdir}"
    raise UserError(f"{flag}: {workdir} has no checkpoints (checkpoints/<step>/); train it "
                    "first")
  if step is not None and step not in steps:
    raise UserError(f"--step={step}: {workdir} has no checkpoint of that step; it has {steps}")


def fresh_batches(restored, num_sentences: int) -> tuple[dict, float, int]:
  """Whole batches continuing the stream until >= num_sentences sentences end there.

  Returns (batch dict of [R, C] arrays, Bayes bits of the targets, sentences ended).
  """
  state, parts, bayes, ended = restored.data_state, [], 0.0, 0
  while ended < num_sentences:
    state, batch, bayes_r = restored.pipe.step(state)
    batch = jax.device_get(batch)
    parts.append(batch)
    bayes += float(np.sum(jax.device_get(bayes_r)))
    ended += int(np.sum(batch["roles_BxL"] == END))
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, bayes, ended


@functools.lru_cache(maxsize=None)
def _distribution_fn(cfg: model_lib.ModelConfig):
  """jit of `(params, width, prefix_RxC, t) -> float32 logits [R, V]` at position t.

  Encoder and decoder call it on the SAME arrays (each row's tokens up to t, zeros after),
  so both see bit-identical distributions.
  """
  def fn(params, width, prefix, t):
    logits = model_lib.apply(params, cfg, prefix, width)
    return jax.lax.dynamic_index_in_dim(logits, t, axis=1, keepdims=False)
  return jax.jit(fn)


def _probs(logits_RxV) -> np.ndarray:
  logits = np.asarray(logits_RxV, np.float64)
  logits -= logits.max(-1, keepdims=True)
  p = np.exp(logits)
  return p / p.sum(-1, keepdims=True)


def _prefix(inputs_RxC: np.ndarray, t: int) -> np.ndarray:
  prefix = np.zeros_like(inputs_RxC)
  prefix[:, :t + 1] = inputs_RxC[:, :t + 1]
  return prefix


def column_distributions(params, cfg, width: int, inputs_RxC: np.ndarray) -> np.ndarray:
  """Next-token distributions of every row and position, float64 [C, R, V] (column-major:
  the coding order)."""
  fn = _distribution_fn(cfg)
  return np.stack([_probs(fn(params, width, _prefix(inputs_RxC, t), t))
                   for t in range(inputs_RxC.shape[1])])


def _categorical():
  import constriction
  return constriction.stream.model.Categorical(perfect=False)


def encode(symbols_N: np.ndarray, probs_NxV: np.ndarray) -> np.ndarray:
  """Range-codes the symbols, each under its own distribution: uint32 words."""
  import constriction
  encoder = constriction.stream.queue.RangeEncoder()
  encoder.encode(symbols_N.astype(np.int32), _categorical(), probs_NxV)
  return encoder.get_compressed()


def decode_rows(words: np.ndarray, params, cfg, width: int, shape: tuple[int, int],
                lengths_R: np.ndarray | None = None) -> np.ndarray:
  """Decodes R rows of C tokens, column by column: the model runs on the decoded prefixes
  of all rows at once (the decoder never sees the original tokens). `lengths_R`: stream
  tokens per row (sentence packing; sent in the header); the tail of a row is padding
  (END), never coded."""
  import constriction
  decoder = constriction.stream.queue.RangeDecoder(words)
  R, C = shape
  lengths_R = np.full(R, C) if lengths_R is None else np.asarray(lengths_R)
  fn, family = _distribution_fn(cfg), _categorical()
  inputs = np.zeros((R, C), np.int32)
  inputs[:, 0] = BOS
  out = np.full((R, C), END_TOKEN, np.int32)
  for t in range(C):
    coded = t < lengths_R
    if not coded.any():
      break
    p = _probs(fn(params, width, _prefix(inputs, t), t))
    out[coded, t] = decoder.decode(family, p[coded])
    if t + 1 < C:
      inputs[:, t + 1] = out[:, t]
  return out


def compress(workdir: str, model: str | None, num_sentences: int, step: int | None = None,
             decode: bool = True) -> dict:
  """Encodes (and decodes back) a fresh stretch of the run's stream; the JSON line's fields."""
  check_args(workdir, model, num_sentences, step)
  restored = workdir_lib.restore(workdir, step)
  i = pick_model(restored, model)
  cfg, params, width = workdir_lib.model_params(restored, i)
  batch, bayes_bits, ended = fresh_batches(restored, num_sentences)
  targets = batch["targets_BxL"]
  # Padding is a row's tail (sentence packing): the header sends each row's length.
  lengths_R = step_lib.is_real(batch["roles_BxL"]).sum(1)
  header_bits = row_length_header_bits(*targets.shape)
  _distribution_fn(cfg)(params, width, np.zeros_like(batch["inputs_BxL"]), 0)   # compile, untimed
  t0 = time.perf_counter()
  probs = column_distributions(params, cfg, width, batch["inputs_BxL"])   # [C, R, V]
  model_s = time.perf_counter() - t0
  coded_CxR = np.arange(targets.shape[1])[:, None] < lengths_R[None, :]
  symbols = targets.T[coded_CxR]              # column-major, as the decoder needs them
  p_flat = probs[coded_CxR]
  n = symbols.size
  ideal = float(-np.log2(p_flat[np.arange(n), symbols]).sum())
  model_bits = float(jnp.sum(step_lib.token_bits(params, cfg, width, {
      k: jnp.asarray(batch[k]) for k in ("inputs_BxL", "targets_BxL", "roles_BxL")})))
  t0 = time.perf_counter()
  words = encode(symbols, p_flat)
  encode_s = time.perf_counter() - t0
  out = {"workdir": workdir, "step": restored.step, "width": restored.setup.models[i][0],
         "seed": restored.setup.models[i][1], "num_tokens": int(n), "num_sentences": ended,
         "bits_actual": int(words.size * WORD_BITS), "bits_ideal": ideal,
         "header_bits": header_bits, "bits_total": int(words.size * WORD_BITS) + header_bits,
         "model_log_loss_bits": model_bits,
         "overhead_bits": words.size * WORD_BITS - ideal,
         "overhead_bits_per_token": (words.size * WORD_BITS - ideal) / n,
         "overhead_bound_bits": overhead_bound_bits(n, p_flat.shape[1]),
         "bayes_bits": bayes_bits,
         "compressors_bits": compressors.compressed_bits(symbols, restored.setup.spec.vocab_size),
         "encode_tokens_per_s": n / encode_s,
         "encode_with_model_tokens_per_s": n / (encode_s + model_s)}
  if decode:
    t0 = time.perf_counter()
    decoded = decode_rows(words, params, cfg, width, targets.shape, lengths_R)
    out["decode_tokens_per_s"] = n / (time.perf_counter() - t0)
    out["roundtrip_ok"] = bool(np.array_equal(decoded, targets))
  return out


# ----------------------------------------------------------------------------- CLI


def main(argv):
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {argv[1:]}: every input is a --flag")
  f = flags.FLAGS
  result = compress(f.workdir, f.model, f.num_sentences, f.step)
  print(json.dumps(result))


if __name__ == "__main__":
  # Defined here, not at import, so that other entry points (kcompress.bench) can import
  # this module beside their own flags of the same names.
  flags.DEFINE_string("workdir", None, "A kcompress run directory.")
  flags.DEFINE_string("model", None, "WIDTH[,SEED] of the sweep (default: widest).")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
  flags.DEFINE_integer("num_sentences", 1000, "Sentences of fresh stream to code.")
  from kcompress import cli
  cli.run(main)
