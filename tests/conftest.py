"""Test-session settings: a persistent XLA compilation cache shared by every test.

Each `train.run` builds fresh jitted closures, so without it every test (and every
`python -m kcompress...` subprocess, which inherits the environment) recompiles the same
programs. The cache only skips compilation; the computed numbers are unchanged.
"""

import os
import tempfile

_CACHE = os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                               os.path.join(tempfile.gettempdir(), "kcompress-test-jax-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402  (after the environment, so this process uses the cache too)

jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_workdir(tmp_path_factory):
  """A `:tiny` sweep trained 40 steps in-process, shared read-only by the tests that only
  read a finished run (its report/ directory is the analysis tests' to write)."""
  from configs.sweep import get_config
  from kcompress import train
  workdir = str(tmp_path_factory.mktemp("tiny40"))
  cfg = get_config("tiny")
  cfg.train.num_steps = 40
  train.run(cfg, workdir)
  return workdir
