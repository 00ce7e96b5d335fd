"""The Syntax-Knowledge data generator and its exact Bayes code length (SPEC sections 2-3)."""

from kcompress.data.bayes import SentenceBits, bayes_code_bits
from kcompress.data.source import (BatchState, Stream, batch_init, bayes_bits_by_role,
                                   generate_stream, generate_streams, next_batch, x64)
from kcompress.data.spec import DataSpec, check_name_space, data_spec
from kcompress.data.stream import Sentences, StreamState, generate_sentences, init_stream
from kcompress.data.tokens import Tokens, first_name_tokens
from kcompress.data.world import World, draw_world
