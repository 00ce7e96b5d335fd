"""Generate a stream and report its statistics, or measure the Bayes code's data law.

  python -m kcompress.data --config=configs/sweep.py --num_sentences=100000 --show=5
  python -m kcompress.data laws --config=configs/sweep.py [--config.data.alpha=0.3] \\
      [--replicates=16] [--sentences=1000000] --out=/tmp/laws.json

The first form prints K decoded sentences, then ONE final line of JSON: num_sentences,
num_tokens, num_entities, heaps_slope, zipf_slope, bayes_bits_per_token,
bayes_bits_per_sentence (by part), skeleton_bits, compressors (bits/token at their
strongest levels), generate_tokens_per_second, bayes_sentences_per_second.

`laws` draws R independent streams of N sentences and fits the Bayes code's name + value
bits per sentence vs n with floor 0 (`kcompress.data.laws`); it writes F.json (alpha,
predicted, exponent, ci, verdict, decades, replicates, parts, curve) and the figure F.png
beside it, and prints one line.

A bad flag (e.g. --num_sentences=0) is one line `error: ...` on stderr, exit status 2.
"""

from __future__ import annotations

import json
import os

from absl import flags
from ml_collections import config_flags

from kcompress import cli
from kcompress.data import laws, report
from kcompress.errors import UserError

_CONFIG = config_flags.DEFINE_config_file("config", "configs/sweep.py", "Config file.",
                                          lock_config=True)
_NUM = flags.DEFINE_integer("num_sentences", 100_000, "Sentences to generate.")
_SHOW = flags.DEFINE_integer("show", 5, "Decoded sentences to print first.")
_REPLICATES = flags.DEFINE_integer("replicates", laws.DEFAULT_REPLICATES,
                                   "laws: independent streams.")
_SENTENCES = flags.DEFINE_integer("sentences", laws.DEFAULT_SENTENCES,
                                  "laws: sentences per stream.")
_OUT = flags.DEFINE_string("out", None, "laws: the JSON file to write (F.png beside it).")


def run_laws() -> None:
  if not _OUT.value:
    raise UserError("--out: laws needs the JSON file to write (--out=F.json)")
  if _REPLICATES.value < 2:
    raise UserError(f"--replicates={_REPLICATES.value}: at least 2 independent streams")
  result = laws.bayes_laws(_CONFIG.value, _REPLICATES.value, _SENTENCES.value)
  laws.write(result, _OUT.value)
  if result["sentences"] < result["sentences_requested"]:
    print(f"note: {result['sentences']} sentences per stream, not {result['sentences_requested']}: "
          "the name space holds no more (2 E[K_n] names)")
  print(f"Bayes data law (name + value bits per sentence, floor 0, n in "
        f"[{result['range'][0]:g}, {result['range'][1]:g}], {result['replicates']} streams): "
        f"{result['exponent']:.3f} [{result['ci'][0]:.3f}, {result['ci'][1]:.3f}] vs "
        f"1 - alpha = {result['predicted']:.3f}: {result['verdict']} "
        f"({result['seconds']:.0f} s) -> {os.path.abspath(_OUT.value)}")


def main(argv):
  if argv[1:] == ["laws"]:
    return run_laws()
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {argv[1:]}: every input is a --flag (or `laws`)")
  report.check_sizes(_NUM.value, _SHOW.value)    # before anything compiles
  stats, shown = report.stream_report(_CONFIG.value, _NUM.value, _SHOW.value)
  if shown:
    print(shown)
  print(json.dumps(stats))


if __name__ == "__main__":
  cli.run(main)
