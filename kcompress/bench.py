"""Benchmarks that print figures (never run in tests).

  python -m kcompress.bench data [--num_sentences=1000000] [--repeats=5]

`data`: generator throughput (tokens/s, generate + render + pack) and Bayes-code
throughput (sentences/s, counts + bits from the raw draws), medians over repeats,
compile time excluded.
"""

from __future__ import annotations

import json
import statistics
import sys

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", "configs/sweep.py", "Config file.",
                                          lock_config=True)
_NUM = flags.DEFINE_integer("num_sentences", 1_000_000, "Stream length for `data`.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed repeats (the median is reported).")


def bench_data(config, num_sentences: int, repeats: int) -> dict:
  import jax
  from kcompress.data import report, spec as spec_lib
  spec = spec_lib.data_spec(config.data)
  gen, bayes, num_tokens = [], [], 0
  for r in range(repeats):
    seconds, out = report.time_generation(spec, config.seed + r, num_sentences)
    world, _, sentences, _, _ = out
    num_tokens = int(jax.device_get(sentences.length_N).sum())
    gen.append(num_tokens / seconds)
    bayes.append(num_sentences / report.time_bayes(spec, world, sentences))
  return dict(benchmark="data", device=str(jax.devices()[0].device_kind),
              num_sentences=num_sentences, num_tokens_last=num_tokens, repeats=repeats,
              generate_tokens_per_second_median=statistics.median(gen),
              bayes_sentences_per_second_median=statistics.median(bayes),
              generate_tokens_per_second_all=gen, bayes_sentences_per_second_all=bayes)


def main(argv):
  what = argv[1:] or ["data"]
  for name in what:
    if name == "data":
      result = bench_data(_CONFIG.value, _NUM.value, _REPEATS.value)
    else:
      sys.exit(f"unknown benchmark {name!r}; choose from: data")
    print(json.dumps(result))


if __name__ == "__main__":
  app.run(main)
