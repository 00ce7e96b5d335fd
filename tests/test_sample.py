"""`python -m kcompress.sample`: sentences a model writes, each fact marked against the world
(kcompress.sampling), with the Bayes predictor's code length of the same sentence."""

import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.sweep import get_config
from kcompress import data, sample, sampling
from kcompress.data import source
from kcompress.data.spec import NAME0

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N, NEXT = 400, 30


@pytest.fixture(scope="module")
def stream_and_state():
  spec = data.data_spec(get_config("tiny").data)
  stream = data.generate_stream(spec, 0, N + NEXT)
  st, _ = source.x64(jax.jit(data.generate_sentences, static_argnums=(0, 3)))(
      spec, stream.world, data.init_stream(spec, N + NEXT), N)
  return spec, stream, jax.device_get(st)


def _sentence(stream, j):
  ends = np.cumsum(stream.sentences.length_N)
  return np.asarray(stream.tokens.token[ends[j] - stream.sentences.length_N[j]:ends[j]])


def test_marks_and_bayes_bits_of_stream_sentences(stream_and_state):
  spec, stream, seen = stream_and_state
  world = stream.world
  names = sampling.known_names(spec, world, seen)
  # The next sentence of the stream, as written: true (or about a new entity), and the
  # Bayes predictor's bits are the Bayes code's own for it.
  row = sampling.mark_sentence(spec, world, seen, names, _sentence(stream, N))
  new = bool(stream.sentences.is_new_N[N])
  assert row["mark"] == ("invented" if new else "true")
  assert row["bayes_bits"] == pytest.approx(float(stream.bits.total_N[N]), rel=1e-9)
  # A stated fact of a seen entity among the next sentences; then its value changed.
  counts, facts = np.asarray(seen.entity_counts_E), np.asarray(seen.fact_counts_ExA)
  s = stream.sentences
  j = next(j for j in range(N, N + NEXT)
           if counts[s.entity_N[j]] > 0 and facts[s.entity_N[j], s.attribute_N[j]] > 0)
  tokens = _sentence(stream, j)
  row = sampling.mark_sentence(spec, world, seen, names, tokens)
  assert row["mark"] == "true" and row["stated"] and row["entity"] == int(s.entity_N[j])
  assert math.isfinite(row["bayes_bits"])
  wrong = tokens.copy()
  pos = spec.name_length + int(np.asarray(world.value_pos_T)[s.template_N[j]])
  V = spec.values_per_attribute
  wrong[pos] = spec.val0 + int(s.attribute_N[j]) * V + (int(s.value_N[j]) + 1) % V
  row = sampling.mark_sentence(spec, world, seen, names, wrong)
  assert row["mark"] == "false" and row["truth"] == int(s.value_N[j])
  assert row["bayes_bits"] == math.inf      # the Bayes predictive knows the stated value
  # A name no seen entity has: a fact about an invented entity.
  code = next(c for c in range(spec.name_space) if c not in names)
  invented = tokens.copy()
  digits = [(code // spec.name_alphabet ** (spec.name_length - 1 - l)) % spec.name_alphabet
            for l in range(spec.name_length)]
  invented[:spec.name_length] = NAME0 + np.array(digits)
  row = sampling.mark_sentence(spec, world, seen, names, invented)
  assert row["mark"] == "invented" and row["entity"] is None
  assert math.isfinite(row["bayes_bits"])
  # Out of grammar: the value token dropped.
  row = sampling.mark_sentence(spec, world, seen, names, np.delete(tokens, pos))
  assert row["mark"] == "malformed" and row["bayes_bits"] is None


def _check_against_world(spec, world, rows):
  """Each mark agrees with the world's facts (recomputed from the printed tokens' parse)."""
  for r in rows:
    if r["mark"] == "malformed":
      continue
    with jax.enable_x64(True):
      truth = int(np.asarray(data.world.fact_values(
          spec, world, jnp.asarray([r["entity"]], jnp.int32),
          jnp.asarray([r["attribute"]], jnp.int32)))[0]) if r["entity"] is not None else None
    assert r["mark"] == "invented" or r["truth"] == truth
    assert r["mark"] != "true" or r["value"] == truth
    assert r["mark"] != "false" or r["value"] != truth


def test_sample_cli_on_the_tiny_run(tiny_workdir):
  proc = subprocess.run([sys.executable, "-m", "kcompress.sample", f"--workdir={tiny_workdir}",
                         "--num=6", "--width=16"], cwd=ROOT, capture_output=True, text=True,
                        timeout=600)
  assert proc.returncode == 0, proc.stderr
  lines = proc.stdout.strip().splitlines()
  assert lines[0].startswith(f"{tiny_workdir} step 40, width 16 seed 0:")
  head, rows = sample.sample(tiny_workdir, 6, width=16)
  assert lines[1:] == [sampling.describe(r) for r in rows]
  spec = data.data_spec(get_config("tiny").data)
  world = source.host_world(spec, 0)
  _check_against_world(spec, world, rows)
  assert all(r["mark"] in sampling.MARKS for r in rows)
  # The run's finish wrote the report's sample: 3 sentences per width, marked.
  with open(os.path.join(tiny_workdir, "samples.jsonl")) as f:
    saved = [json.loads(x) for x in f]
  assert [r["width"] for r in saved] == [16] * 3 + [32] * 3
  _check_against_world(spec, world, saved)
  bad = subprocess.run([sys.executable, "-m", "kcompress.sample", f"--workdir={tiny_workdir}",
                        "--width=7"], cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert bad.returncode == 2 and bad.stderr.startswith("error: --width=7")
