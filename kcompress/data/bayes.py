"""The exact Bayes-optimal code length of the stream (SPEC section 3), in bits.

-log2 P(s_i | s_<i) under the full Bayesian model (syntax parameters and the
Pitman-Yor measure integrated out, skeletons known) splits into
  entity  -log2 PYCRP predictive,
  name    log2(V_n**L - K_i) for a new entity,
  syntax  Dirichlet-multinomial predictives of the template and of each filler slot,
  value   -log2 H_a(v) the first time (k, a) is revealed, else 0.
Vectorised over sentences from the counts `generate_sentences` returns; float64.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from kcompress.data.spec import DataSpec
from kcompress.data.stream import Sentences
from kcompress.data.world import World, value_log2_probs


class SentenceBits(NamedTuple):
  """Bayes code of each sentence by part, float64 bits. syntax = template + sum of slots."""
  entity_N: jax.Array
  name_N: jax.Array
  template_N: jax.Array
  slot_NxF: jax.Array
  value_N: jax.Array

  @property
  def syntax_N(self) -> jax.Array:
    return self.template_N + self.slot_NxF.sum(-1)

  @property
  def total_N(self) -> jax.Array:
    return self.entity_N + self.name_N + self.syntax_N + self.value_N

  def parts(self) -> dict[str, jax.Array]:
    """Per-sentence bits keyed by roles.BAYES_PARTS."""
    return {"syntax": self.syntax_N, "entity": self.entity_N, "name": self.name_N,
            "value": self.value_N}


def bayes_code_bits(spec: DataSpec, world: World, s: Sentences) -> SentenceBits:
  """-log2 P(s_i | s_<i) by part for each sentence of `s` (any chunk of the stream)."""
  a, b = spec.alpha, spec.beta
  T, S = spec.num_templates, spec.synonyms_per_slot
  gt, gs = spec.gamma_template, spec.gamma_synonym
  i = s.index_N.astype(jnp.float64)
  k_before = s.entities_before_N.astype(jnp.float64)
  n_before = s.occurrences_before_N.astype(jnp.float64)
  p_new = (b + a * k_before) / (i + b)
  p_old = (n_before - a) / (i + b)
  entity = jnp.where(s.index_N == 0, 0.0, -jnp.log2(jnp.where(s.is_new_N, p_new, p_old)))
  name = jnp.where(s.is_new_N, jnp.log2(float(spec.name_space) - k_before), 0.0)
  c_t = s.template_count_before_N.astype(jnp.float64)
  template = -jnp.log2((c_t + gt) / (i + T * gt))
  used = s.synonym_NxF >= 0
  p_slot = (s.synonym_count_before_NxF + gs) / (c_t[:, None] + S * gs)
  slot = jnp.where(used, -jnp.log2(p_slot), 0.0)
  value = jnp.where(s.first_reveal_N, -jnp.asarray(value_log2_probs(spec))[s.value_N], 0.0)
  return SentenceBits(entity, name, template, slot, value)
