"""Static description of a Syntax-Knowledge data source, validated from a config.

`DataSpec` holds every shape-setting number (vocabulary layout, sentence length
bounds, capacities) and the PYCRP hyperparameters. It is hashable, so jitted
functions take it as a static argument. Bad configs fail here, before any
compilation, with a message naming the field.

Vocabulary layout (token ids):
  0                      BOS (model input only; never in the stream)
  1                      END (closes every sentence)
  [name0, +V_n)          name alphabet
  [syn0, +T*F_max*S)     synonym tokens: template t, filler slot f, synonym u
  [val0, +A*V)           value tokens: attribute a, value v
"""

from __future__ import annotations

import dataclasses
import math

from kcompress import theory
from kcompress.errors import UserError

BOS, END = 0, 1
NAME0 = 2
VALUE_BASES = ("uniform", "zipf")
# How sentences become rows of context_length tokens (SPEC section 2):
#   sentence: every row starts at a sentence start, no sentence is split, the row's tail
#             is padding (roles.PAD: no loss, no Bayes bits, no token count);
#   stream:   the token stream cut into rows regardless of sentences (for comparison).
PACKINGS = ("sentence", "stream")


@dataclasses.dataclass(frozen=True)
class DataSpec:
  """Shapes and hyperparameters of the generator (all static, hashable)."""
  alpha: float
  beta: float
  num_attributes: int       # A
  values_per_attribute: int  # V (per attribute)
  value_base: str           # "uniform" | "zipf"
  value_zipf_exponent: float
  name_alphabet: int        # V_n
  name_length: int          # L
  num_templates: int        # T
  min_fillers: int
  max_fillers: int          # F_max
  synonyms_per_slot: int    # S
  gamma_template: float
  gamma_synonym: float
  context_length: int
  packing: str             # PACKINGS

  @property
  def syn0(self) -> int:
    return NAME0 + self.name_alphabet

  @property
  def num_slots(self) -> int:
    """Slot ids are t * F_max + f; unused slots (f >= F_t) never appear."""
    return self.num_templates * self.max_fillers

  @property
  def val0(self) -> int:
    return self.syn0 + self.num_slots * self.synonyms_per_slot

  @property
  def vocab_size(self) -> int:
    return self.val0 + self.num_attributes * self.values_per_attribute

  @property
  def max_sentence_length(self) -> int:
    """Name, fillers, value, END."""
    return self.name_length + self.max_fillers + 2

  @property
  def min_sentence_length(self) -> int:
    return self.name_length + self.min_fillers + 2

  @property
  def name_space(self) -> int:
    """Number of distinct names V_n ** L."""
    return self.name_alphabet ** self.name_length

  def max_entities(self, num_sentences: int) -> int:
    """Entity capacity of a stream of `num_sentences` sentences."""
    return max(1, min(num_sentences, self.name_space))


def _field_error(field: str, value, why: str) -> UserError:
  return UserError(f"config.data.{field}={value!r}: {why}")


def data_spec(cfg) -> DataSpec:
  """Validates `config.data` and returns its DataSpec. Raises UserError naming the field."""
  d = cfg
  alpha, beta = float(d.alpha), float(d.beta)
  if not 0.0 <= alpha < 1.0:
    raise _field_error("alpha", d.alpha, "the Pitman-Yor discount must lie in [0, 1)")
  if not beta > -alpha:
    raise _field_error("beta", d.beta, f"the concentration must exceed -alpha = {-alpha}")
  positive_ints = ("num_attributes", "values_per_attribute", "name_alphabet", "name_length",
                   "num_templates", "min_fillers", "max_fillers", "synonyms_per_slot",
                   "context_length")
  for field in positive_ints:
    value = d[field]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
      raise _field_error(field, value, "must be a positive integer (an empty vocabulary or "
                         "slot set cannot be rendered)")
  if d.max_fillers < d.min_fillers:
    raise _field_error("max_fillers", d.max_fillers,
                       f"must be >= config.data.min_fillers={d.min_fillers}")
  if d.num_templates < d.num_attributes:
    raise _field_error("num_templates", d.num_templates,
                       f"every attribute needs a template: need >= num_attributes="
                       f"{d.num_attributes}")
  if d.value_base not in VALUE_BASES:
    raise _field_error("value_base", d.value_base, f"choose one of {VALUE_BASES}")
  if d.value_base == "zipf" and not d.value_zipf_exponent > 0:
    raise _field_error("value_zipf_exponent", d.value_zipf_exponent, "must be > 0")
  for field in ("gamma_template", "gamma_synonym"):
    if not float(d[field]) > 0:
      raise _field_error(field, d[field], "a Dirichlet concentration must be > 0")
  packing = d.get("packing", "stream")   # configs written before packing existed: stream
  if packing not in PACKINGS:
    raise _field_error("packing", packing, f"choose one of {PACKINGS}")
  longest = d.name_length + d.max_fillers + 2
  if packing == "sentence" and longest > d.context_length:
    raise _field_error("context_length", d.context_length,
                       f"the longest sentence has {longest} tokens (name_length + max_fillers "
                       f"+ 2) and sentence packing never splits one: need context_length >= "
                       f"{longest}")
  if d.name_alphabet ** d.name_length > 2 ** 31 - 1:
    raise _field_error("name_length", d.name_length,
                       "name space V_n**L must fit in int32 (< 2**31)")
  spec = DataSpec(
      alpha=alpha, beta=beta, num_attributes=d.num_attributes,
      values_per_attribute=d.values_per_attribute, value_base=d.value_base,
      value_zipf_exponent=float(d.value_zipf_exponent), name_alphabet=d.name_alphabet,
      name_length=d.name_length, num_templates=d.num_templates, min_fillers=d.min_fillers,
      max_fillers=d.max_fillers, synonyms_per_slot=d.synonyms_per_slot,
      gamma_template=float(d.gamma_template), gamma_synonym=float(d.gamma_synonym),
      context_length=d.context_length, packing=packing)
  if spec.vocab_size > 2 ** 31 - 1:
    raise _field_error("values_per_attribute", d.values_per_attribute, "vocabulary too large")
  return spec


def check_name_space(spec: DataSpec, num_sentences: int) -> None:
  """Fails early when a stream of `num_sentences` would run out of unique names.

  The number of distinct entities K_n is random; we require the name space to
  hold twice its expectation E[K_n] (SPEC section 6) and the generator flags an
  actual overflow at run time.
  """
  expected = theory.expected_num_entities(spec.alpha, spec.beta, num_sentences)
  if 2 * expected > spec.name_space:
    raise _field_error(
        "name_length", spec.name_length,
        f"name space name_alphabet**name_length = {spec.name_space} is too small for "
        f"{num_sentences} sentences (E[K_n] = {expected:.0f} distinct entities; need "
        f">= 2 E[K_n]). Raise config.data.name_alphabet or config.data.name_length.")


def skeleton_bits(spec: DataSpec, num_fillers_T) -> float:
  """Constant description cost (bits) of the drawn skeletons, reported apart.

  -log2 P(skeletons): attribute assignment (uniform over assignments with the
  balanced count profile), filler counts (uniform in [min, max]) and value
  positions (uniform in 1..F_t).
  """
  T, A = spec.num_templates, spec.num_attributes
  counts = [T // A + (1 if a < T % A else 0) for a in range(A)]
  assign = math.lgamma(T + 1) - sum(math.lgamma(c + 1) for c in counts)
  bits = assign / math.log(2)
  bits += T * math.log2(spec.max_fillers - spec.min_fillers + 1)
  bits += sum(math.log2(int(f)) for f in num_fillers_T)
  return bits
