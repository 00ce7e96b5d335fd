"""Fine-tuning (kcompress.finetune): injected deliveries, disjointness, resume, replay-only."""

import os
import shutil

import jax
import numpy as np
import pytest

from configs.finetune import get_config as finetune_config
from configs.sweep import get_config as sweep_config
from kcompress import data, finetune, metrics, setup as setup_lib, train, workdir
from kcompress.data import roles, source
from kcompress.errors import UserError

COMPARED = ["loss_bits"] + [f"{p}_{r}" for p in ("bits", "bayes") for r in roles.ROLE_NAMES]


def _constant_lr(cfg):
  cfg.optim.decay = "constant"
  cfg.optim.warmup_steps = 0
  return cfg


def _pretrain_config(num_steps):
  cfg = _constant_lr(sweep_config("tiny"))
  cfg.train.num_steps = num_steps
  cfg.checkpoint_every = 10
  return cfg


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("pretrained"))
  train.run(_pretrain_config(20), path)
  return path


def _finetune_config(init_from, **finetune):
  cfg = _constant_lr(finetune_config("inject_tiny"))
  cfg.optim.lr = sweep_config("tiny").optim.lr   # the pretraining lr (the config halves it)
  cfg.init_from = init_from
  for k, v in finetune.items():
    if k == "num_steps":
      cfg.train.num_steps = v
    else:
      cfg.finetune[k] = v
  return cfg


def _rows(path):
  return metrics.read_rows(os.path.join(path, "metrics.jsonl"))


def test_injected_entities_are_delivered_exactly_and_never_pretrained(pretrained):
  cfg = finetune.resolve(_finetune_config(pretrained))
  setup = setup_lib.make_setup(cfg)
  spec = setup.spec
  pipe = finetune.job(cfg, setup).pipe
  plan = finetune.make_plan(spec, pipe.world, cfg)
  inj = plan.injection
  L = spec.name_length
  # Every injected row is placed exactly once, and the run is just long enough.
  placed = plan.slots_TxB[plan.slots_TxB >= 0]
  assert sorted(placed.tolist()) == list(range(inj.rows.token.shape[0]))
  assert plan.slots_TxB.shape[0] == cfg.train.num_steps
  # The batches carry the injected rows at their slots; count each entity's name tokens.
  name_tokens = {int(k): 0 for k in inj.entity_J}
  state = pipe.init
  for t in range(cfg.train.num_steps):
    state, batch, _ = pipe.step(state)
    for b in np.flatnonzero(plan.slots_TxB[t] >= 0):
      row = plan.slots_TxB[t, b]
      np.testing.assert_array_equal(np.asarray(batch["targets_BxL"][b]), inj.rows.token[row])
      ent, role = inj.rows.entity[row], inj.rows.role[row]
      for k in name_tokens:
        name_tokens[k] += int(np.sum((ent == k) & (role == roles.NAME)))
  want = dict(zip(inj.entity_J.tolist(), (inj.repetitions_J * L).tolist()))
  assert name_tokens == want
  assert sorted(set(inj.repetitions_J.tolist())) == list(cfg.finetune.repetitions)
  # No injected entity in the pretraining stream or in the replayed continuation: the stream
  # created fewer entities than the first injected id, and no injected name occurs in the
  # pretraining tokens.
  assert int(state.batch.stream.crp.num_entities) < int(inj.entity_J.min())
  pre = workdir.restore(pretrained)
  num_tokens = 20 * pre.config.train.batch_size * spec.context_length
  stream = data.generate_stream(spec, pre.config.seed, num_tokens // spec.min_sentence_length + 1)
  tokens = stream.tokens.token[:num_tokens]
  windows = np.lib.stride_tricks.sliding_window_view(tokens, L)
  injected_names = {tuple(r) for r in np.asarray(inj.rows.token)[
      (inj.rows.role == roles.NAME)].reshape(-1, L)}
  pretrained_names = {tuple(w) for w in windows[stream.tokens.role[:num_tokens - L + 1] == roles.NAME]}
  assert injected_names and not injected_names & pretrained_names


def test_finetune_resumes_from_its_own_checkpoints(pretrained, tmp_path):
  cfg = _finetune_config(pretrained)
  cfg.checkpoint_every = 4
  full = str(tmp_path / "full")
  train.run(cfg, full)
  rows = _rows(full)
  steps = sorted({r["step"] for r in rows})
  assert steps[-1] >= 6
  part = str(tmp_path / "part")
  shutil.copytree(full, part)
  for name in os.listdir(os.path.join(part, "checkpoints")):   # keep only the step-4 checkpoint
    if name.isdigit() and int(name) != 4:
      shutil.rmtree(os.path.join(part, "checkpoints", name))
  train.run(cfg, part)
  strip = lambda rs: [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rs]
  assert strip(_rows(part)) == strip(rows)
  probes_full = metrics.read_rows(os.path.join(full, "probes.jsonl"))
  assert probes_full[0]["step"] == 0 and "injected" in probes_full[-1]
  assert metrics.read_rows(os.path.join(part, "probes.jsonl")) == probes_full


def test_replay_only_finetuning_is_continued_pretraining(pretrained, tmp_path):
  longer = str(tmp_path / "longer")
  train.run(_pretrain_config(30), longer)
  ft = str(tmp_path / "ft")
  train.run(_finetune_config(pretrained, replay_fraction=1.0, entities_per_count=0,
                             num_steps=10), ft)
  want = [r for r in _rows(longer) if r["step"] > 20]
  got = _rows(ft)
  assert len(got) == len(want) == 10 * 2
  key = lambda r: (r["step"], r["width"])
  for g, w in zip(sorted(got, key=key), sorted(want, key=lambda r: (r["step"] - 20, r["width"]))):
    assert g["step"] == w["step"] - 20 and g["width"] == w["width"]
    for k in COMPARED:
      if w[k] is None:
        assert g[k] is None
      else:
        assert g[k] == pytest.approx(w[k], rel=1e-5, abs=1e-6), (k, g["step"])


def test_bad_init_from_names_what_is_wrong(pretrained, tmp_path):
  with pytest.raises(UserError, match="config.init_from=.*no such directory"):
    finetune.resolve(_finetune_config(str(tmp_path / "missing")))
  (tmp_path / "empty").mkdir()
  with pytest.raises(UserError, match="config.init_from=.*not a kcompress workdir"):
    finetune.resolve(_finetune_config(str(tmp_path / "empty")))
  cfg = _finetune_config(pretrained)
  cfg.model.widths = (16, 24)
  with pytest.raises(ValueError, match=r"config\.model\.widths"):
    finetune.resolve(cfg)
  cfg = _finetune_config(pretrained)
  cfg.data.alpha = 0.6
  with pytest.raises(ValueError, match=r"config\.data\.alpha: 0\.5 \(pretrained\) vs 0\.6"):
    finetune.resolve(cfg)
  cfg = _finetune_config(pretrained, replay_fraction=1.0)
  with pytest.raises(ValueError, match="replay_fraction"):
    finetune.resolve(cfg)


def test_every_kind_of_run_goes_through_the_one_loop(pretrained, tmp_path, monkeypatch):
  """Pretraining, a resumed (here: extended) run and fine-tuning are jobs of one loop."""
  import shutil
  from kcompress import loop
  calls = []
  real = loop.run_loop

  def spy(state, step_fn, start, num_steps, *args, **kwargs):
    calls.append((start, num_steps))
    return real(state, step_fn, start, num_steps, *args, **kwargs)

  monkeypatch.setattr(loop, "run_loop", spy)
  resumed = str(tmp_path / "resumed")
  shutil.copytree(pretrained, resumed)
  train.run(_pretrain_config(22), resumed)
  train.run(_pretrain_config(2), str(tmp_path / "fresh"))
  train.run(_finetune_config(pretrained, replay_fraction=1.0, entities_per_count=0,
                             num_steps=2), str(tmp_path / "finetuned"))
  assert calls == [(20, 22), (0, 2), (0, 2)]
