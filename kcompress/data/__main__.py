"""Generate a stream, show sentences, and report its statistics as one JSON line.

  python -m kcompress.data --config=configs/sweep.py --num_sentences=100000 --show=5

Prints K decoded sentences, then ONE final line of JSON: num_sentences, num_tokens,
num_entities, heaps_slope, zipf_slope, bayes_bits_per_token, bayes_bits_per_sentence
(by part), skeleton_bits, compressors (bits/token at their strongest levels),
generate_tokens_per_second, bayes_sentences_per_second.

A bad flag (e.g. --num_sentences=0) is one line `error: ...` on stderr, exit status 2.
"""

from __future__ import annotations

import json

from absl import flags
from ml_collections import config_flags

from kcompress import cli
from kcompress.data import report
from kcompress.errors import UserError

_CONFIG = config_flags.DEFINE_config_file("config", "configs/sweep.py", "Config file.",
                                          lock_config=True)
_NUM = flags.DEFINE_integer("num_sentences", 100_000, "Sentences to generate.")
_SHOW = flags.DEFINE_integer("show", 5, "Decoded sentences to print first.")


def main(argv):
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {argv[1:]}: every input is a --flag")
  report.check_sizes(_NUM.value, _SHOW.value)    # before anything compiles
  stats, shown = report.stream_report(_CONFIG.value, _NUM.value, _SHOW.value)
  if shown:
    print(shown)
  print(json.dumps(stats))


if __name__ == "__main__":
  cli.run(main)
