"""Classical compressors of a token stream, behind one small protocol, in a registry.

A compressor maps bytes to compressed bytes at its strongest standard level.
Tokens are serialised as little-endian integers of the smallest width that holds
the vocabulary (1, 2 or 4 bytes), so every compressor sees the same byte stream.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from typing import Callable

import numpy as np
import zstandard

Compressor = Callable[[bytes], bytes]

REGISTRY: dict[str, Compressor] = {
    "gzip": lambda b: gzip.compress(b, compresslevel=9, mtime=0),
    "bz2": lambda b: bz2.compress(b, compresslevel=9),
    "xz": lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME),
    "zstd": lambda b: zstandard.ZstdCompressor(level=22).compress(b),
}


def token_bytes(tokens, vocab_size: int) -> bytes:
  dtype = np.uint8 if vocab_size <= 2 ** 8 else np.uint16 if vocab_size <= 2 ** 16 else np.uint32
  return np.asarray(tokens).astype(dtype).tobytes()


def compressed_bits(tokens, vocab_size: int, names=None) -> dict[str, int]:
  """Compressed size in bits of the token stream under each named compressor."""
  data = token_bytes(tokens, vocab_size)
  return {name: 8 * len(REGISTRY[name](data)) for name in (names or REGISTRY)}
