"""Human-readable rendering of tokens and the inverse parse of a sentence.

Names read as syllables (`Qev-Tar-Lom`), synonyms as words, values as
`city_117`; END is `.`. The parse recovers a sentence's template, synonyms,
name code, attribute and value from its tokens alone (the parse is unique
because every token range is disjoint).
"""

from __future__ import annotations

import numpy as np

from kcompress.data.spec import BOS, END, NAME0, DataSpec

_ONSETS = "b c d f g h j k l m n p r s t v w z".split()
_VOWELS = "a e i o u".split()
_CODAS = ["", "n", "r", "s", "m", "l", "k", "v"]
_WORDS = ("was is lives born works known called seen based raised found named taught "
          "in at for by from near with as of to the a an under into".split())
_ATTRIBUTES = ("city", "year", "job", "color", "team", "food", "school", "pet", "sport",
               "lang", "song", "car")


def syllable(j: int) -> str:
  """The j-th name syllable, e.g. 'Qev'."""
  onset = _ONSETS[j % len(_ONSETS)]
  vowel = _VOWELS[(j // len(_ONSETS)) % len(_VOWELS)]
  coda = _CODAS[(j // (len(_ONSETS) * len(_VOWELS))) % len(_CODAS)]
  rest = j // (len(_ONSETS) * len(_VOWELS) * len(_CODAS))
  return (onset + vowel + coda).capitalize() + (str(rest) if rest else "")


def attribute_name(a: int) -> str:
  return _ATTRIBUTES[a] if a < len(_ATTRIBUTES) else f"attr{a}"


def token_text(spec: DataSpec, tok: int) -> str:
  tok = int(tok)
  if tok == BOS:
    return "<bos>"
  if tok == END:
    return "."
  if tok < spec.syn0:
    return syllable(tok - NAME0)
  if tok < spec.val0:
    j = tok - spec.syn0                      # (t * F + f) * S + u
    word = _WORDS[j % len(_WORDS)]
    return word + (str(j // len(_WORDS)) if j >= len(_WORDS) else "")
  a, v = divmod(tok - spec.val0, spec.values_per_attribute)
  return f"{attribute_name(a)}_{v}"


def decode_text(spec: DataSpec, tokens) -> str:
  """Tokens -> text; consecutive name tokens join with '-', sentences end with '.'."""
  words, prev_name = [], False
  for tok in np.asarray(tokens).tolist():
    text = token_text(spec, tok)
    is_name = NAME0 <= tok < spec.syn0
    if is_name and prev_name:
      words[-1] += "-" + text
    else:
      words.append(text)
    prev_name = is_name
  return " ".join(words).replace(" .", " .\n").strip()


def parse_sentence(spec: DataSpec, tokens) -> dict:
  """One sentence's tokens -> template, synonyms (by filler slot), name code, attribute, value."""
  toks = [int(t) for t in np.asarray(tokens)]
  L, F, S, V = spec.name_length, spec.max_fillers, spec.synonyms_per_slot, spec.values_per_attribute
  if toks[-1] != END or len(toks) < L + 3:
    raise ValueError(f"not a sentence: {toks}")
  code = 0
  for t in toks[:L]:
    if not NAME0 <= t < spec.syn0:
      raise ValueError(f"token {t} is not a name token")
    code = code * spec.name_alphabet + (t - NAME0)
  template, synonyms, attribute, value, value_pos = None, [], None, None, None
  for pos, t in enumerate(toks[L:-1]):
    if spec.syn0 <= t < spec.val0:
      slot, u = divmod(t - spec.syn0, S)
      tt, f = divmod(slot, F)
      if template is None:
        template = tt
      if tt != template or f != len(synonyms):
        raise ValueError(f"filler token {t} does not continue template {template}")
      synonyms.append(u)
    elif t >= spec.val0:
      attribute, value = divmod(t - spec.val0, V)
      value_pos = pos
    else:
      raise ValueError(f"unexpected token {t} inside a sentence")
  return dict(template=template, synonyms=synonyms, name_code=code, attribute=attribute,
              value=value, value_pos=value_pos)
