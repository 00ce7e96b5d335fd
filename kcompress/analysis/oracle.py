"""The oracle structure function of a generated stream, from its ground truth (bits).

A model that knows the syntax and the m most frequent entities: storing an entity costs
its name (log2 V_n^L bits) and its facts revealed in the stream (-log2 H_a(v) each); the
syntax costs the skeletons, and its data code is the Bayes syntax code (parameters
integrated out). Unstored entities pay name and value at full price at every occurrence.
See `ksf.oracle_structure_function` for the data code.
"""

from __future__ import annotations

import numpy as np

from kcompress.analysis import ksf
from kcompress.data import spec as spec_lib
from kcompress.data.world import value_log2_probs


def oracle_ksf_of_stream(spec, stream, num_sentences: int) -> dict:
  """{complexity_bits, data_bits, m} of the first `num_sentences` sentences (lists, bits)."""
  s = stream.sentences
  n = num_sentences
  entity = np.asarray(s.entity_N[:n])
  attr = np.asarray(s.attribute_N[:n])
  value_bits = -value_log2_probs(spec)[np.asarray(s.value_N[:n])]
  first = np.asarray(s.first_reveal_N[:n])
  K = int(entity.max()) + 1
  counts = np.bincount(entity, minlength=K)
  name_bits = np.log2(float(spec.name_space))
  stored = name_bits + np.bincount(entity, weights=np.where(first, value_bits, 0.0), minlength=K)
  unstored = np.bincount(entity, weights=name_bits + value_bits, minlength=K)
  syntax_data = float(np.sum(np.asarray(stream.bits.syntax_N[:n])))
  syntax_model = spec_lib.skeleton_bits(spec, np.asarray(stream.world.num_fillers_T))
  c, d = ksf.oracle_structure_function(counts, stored, unstored, syntax_model, syntax_data)
  # Thin to at most ~200 points on a geometric grid of m (the curve is smooth).
  m = np.unique(np.concatenate([[0], np.geomspace(1, K, 200).astype(int)]))
  return {"m": m.tolist(), "complexity_bits": c[m].tolist(), "data_bits": d[m].tolist(),
          "num_sentences": n, "num_entities": K, "attributes_used": int(len(np.unique(attr)))}
