"""Statistics of a generated stream, with timings: what `python -m kcompress.data` prints."""

from __future__ import annotations

import time

import jax
import numpy as np

from kcompress import compressors
from kcompress.data import source, spec as spec_lib, stats, stream, text
from kcompress.data.bayes import bayes_code_bits
from kcompress.errors import UserError


def check_sizes(num_sentences, show) -> None:
  """UserError naming the flag unless num_sentences >= 1 and show >= 0 (integers)."""
  if not _int(num_sentences) or num_sentences < 1:
    raise UserError(f"--num_sentences={num_sentences}: must be a positive integer (sentences "
                    "of the stream to generate)")
  if not _int(show) or show < 0:
    raise UserError(f"--show={show}: must be an integer >= 0 (decoded sentences to print)")


def _int(v) -> bool:
  return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


@source.x64
def time_generation(spec, seed: int, num_sentences: int) -> tuple[float, tuple]:
  """Seconds to generate, render and pack a stream (compiled ahead, compile excluded)."""
  key = jax.random.PRNGKey(seed)
  compiled = source.build_stream.lower(spec, key, num_sentences).compile()
  start = time.perf_counter()
  out = jax.block_until_ready(compiled(key))
  return time.perf_counter() - start, out


@source.x64
def time_bayes(spec, world, sentences) -> float:
  """Seconds to compute the Bayes code from the raw draws: the counts, then the bits."""
  raw = stream.RawSentences(sentences.index_N, sentences.entity_N, sentences.is_new_N,
                            sentences.template_N, sentences.synonym_NxF, sentences.attribute_N,
                            sentences.value_N, sentences.length_N)
  capacity = sentences.index_N.shape[0]

  @jax.jit
  def bits(raw):
    _, counted = stream.count_history(spec, stream.init_stream(spec, capacity), raw)
    return bayes_code_bits(spec, world, counted).total_N

  compiled = bits.lower(raw).compile()
  start = time.perf_counter()
  jax.block_until_ready(compiled(raw))
  return time.perf_counter() - start


def stream_report(config, num_sentences: int, show: int = 0) -> tuple[dict, str]:
  """(statistics dict, decoded text of the first `show` sentences)."""
  check_sizes(num_sentences, show)
  spec = spec_lib.data_spec(config.data)
  spec_lib.check_name_space(spec, num_sentences)
  gen_seconds, out = time_generation(spec, config.seed, num_sentences)
  world, state, sentences, bits, flat = jax.device_get(out)
  if bool(state.crp.overflow):
    raise UserError(f"config.data.name_length={spec.name_length}: the stream created more "
                    "entities than the name space holds; raise config.data.name_alphabet or "
                    "config.data.name_length")
  num_tokens = int(sentences.length_N.sum())
  tokens = flat.token[:num_tokens]
  bayes_seconds = time_bayes(spec, world, sentences)
  total_bits = float(np.sum(bits.total_N))
  parts = {k: float(np.sum(v)) / num_sentences for k, v in bits.parts().items()}
  shown = text.decode_text(spec, tokens[:int(sentences.length_N[:show].sum())]) if show else ""
  packed = {name: b / num_tokens for name, b in
            compressors.compressed_bits(tokens, spec.vocab_size).items()}
  result = dict(
      num_sentences=num_sentences, num_tokens=num_tokens,
      num_entities=int(state.crp.num_entities),
      heaps_slope=stats.heaps_slope(sentences.is_new_N),
      zipf_slope=stats.zipf_slope(sentences.entity_N),
      theory=dict(heaps_slope=spec.alpha, zipf_slope=-1 / spec.alpha if spec.alpha else None),
      bayes_bits_per_token=total_bits / num_tokens,
      bayes_bits_per_sentence=parts,
      skeleton_bits=spec_lib.skeleton_bits(spec, world.num_fillers_T),
      compressors=packed,
      generate_tokens_per_second=num_tokens / gen_seconds,
      bayes_sentences_per_second=num_sentences / bayes_seconds,
  )
  return result, shown
