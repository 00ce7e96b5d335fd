"""configs/paper.py: every experiment is a valid run at the alphas it is meant for."""

import json

import pytest

from configs import paper
from kcompress import data, finetune, setup as setup_lib
from kcompress.data import source


@pytest.mark.parametrize("variant", paper.VARIANTS)
def test_paper_variants_are_valid_at_every_alpha(variant):
  for alpha in (0.3, 0.5, 0.7):
    cfg = paper.get_config(variant)
    cfg.data.alpha = alpha
    if cfg.get("init_from"):   # fine-tuning: num_steps 0 is resolved from the injection plan
      cfg.train.num_steps = 100
    setup_lib.validate(cfg)
    spec = data.data_spec(cfg.data)
    assert spec.packing == "sentence"
    if cfg.data.num_sentences > 0:   # a finite dataset: the name space must hold it
      data.check_name_space(spec, cfg.data.num_sentences)
    elif cfg.train.num_steps > 0:    # a stream of the run's length
      data.check_name_space(spec, source.batch_capacity(spec, cfg.train.batch_size,
                                                        cfg.train.num_steps))


@pytest.mark.parametrize("gpu", ["", "_gpu"])
def test_finetune_variant_matches_its_pretraining_run(gpu):
  """The fine-tuning experiment must be able to start from the data experiment's run."""
  pre, ft = paper.get_config("data" + gpu), paper.get_config("finetune" + gpu)
  sections = lambda c: {k: json.loads(c.to_json())[k] for k in finetune.COMPATIBLE_SECTIONS}
  assert sections(pre) == sections(ft)
  assert ft.init_from.endswith("paper-data" + gpu)


def test_unknown_variant_is_named():
  with pytest.raises(ValueError, match="unknown variant 'sizes'"):
    paper.get_config("sizes")
