"""Real range coding with a trained :tiny model (kcompress.compress)."""

import numpy as np
import pytest

from kcompress import compress


def test_round_trip_and_overhead_bound(tiny_workdir):
  out = compress.compress(tiny_workdir, "16", num_sentences=150)
  assert out["roundtrip_ok"]
  assert out["width"] == 16 and out["num_sentences"] >= 150
  # The ideal code length is the model's own summed log-loss on the same tokens (float32
  # log-loss summed over ~1-2k tokens: relative agreement to 1e-5).
  assert out["bits_ideal"] == pytest.approx(out["model_log_loss_bits"], rel=1e-5)
  # bits_actual - bits_ideal <= n (-log2(1 - V 2^-24) + log2(1 + 2^-8)) + 64 (derived in
  # kcompress/compress.py from the coder's 24-bit probabilities and 32-bit words).
  bound = compress.overhead_bound_bits(out["num_tokens"], 346)
  assert out["overhead_bound_bits"] == pytest.approx(bound)
  assert out["bits_actual"] - out["bits_ideal"] <= bound
  # ... and the coder cannot beat the ideal code by more than its quantisation could give.
  assert out["bits_actual"] >= out["bits_ideal"] - out["num_tokens"] * 1e-3
  assert out["bits_actual"] % 32 == 0
  assert set(out["compressors_bits"]) == {"gzip", "bz2", "xz", "zstd"}
  assert 0 < out["bayes_bits"] < out["bits_ideal"]   # an undertrained model is above the floor


def test_decoding_wrong_words_does_not_round_trip(tiny_workdir):
  restored = compress.workdir_lib.restore(tiny_workdir)
  cfg, params, width = compress.workdir_lib.model_params(restored, 0)
  batch, _, _ = compress.fresh_batches(restored, 20)
  probs = compress.column_distributions(params, cfg, width, batch["inputs_BxL"])
  targets = batch["targets_BxL"]
  words = compress.encode(targets.T.reshape(-1), probs.reshape(targets.size, -1))
  np.testing.assert_array_equal(compress.decode_rows(words, params, cfg, width, targets.shape),
                                targets)
  flipped = words.copy()
  flipped[0] ^= np.uint32(1 << 20)
  assert not np.array_equal(compress.decode_rows(flipped, params, cfg, width, targets.shape),
                            targets)


def test_bad_model_is_named(tiny_workdir):
  with pytest.raises(ValueError, match="--model=48: not in this sweep"):
    compress.compress(tiny_workdir, "48", num_sentences=10, decode=False)
