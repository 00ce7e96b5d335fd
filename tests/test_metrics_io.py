"""JSON-lines files read one way (kcompress.metrics): torn last lines, corrupt lines."""

import json

import pytest

from kcompress import metrics
from kcompress.errors import UserError


def _rows(steps):
  return [{"step": s, "width": w, "seed": 0, "loss_bits": 1.0 / s} for s in steps
          for w in (16, 32)]


def _write(path, rows, tail=b""):
  data = b"".join(json.dumps(r).encode() + b"\n" for r in rows) + tail
  path.write_bytes(data)
  return data


def test_well_formed_file_round_trips(tmp_path):
  path = tmp_path / "metrics.jsonl"
  rows = _rows(range(1, 6))
  _write(path, rows)
  assert metrics.read_rows(str(path)) == rows
  assert metrics.last_step(str(path)) == 5
  assert metrics.read_rows(str(tmp_path / "missing.jsonl")) == []
  assert metrics.last_step(str(tmp_path / "missing.jsonl")) is None


@pytest.mark.parametrize("bad", [b'{"step": 3, "wid\n', b"not json\n", b"[1, 2]\n",
                                 b"\xff\xfe\n"])
def test_corrupt_middle_line_is_an_error_and_changes_nothing(tmp_path, bad):
  path = tmp_path / "metrics.jsonl"
  good = b"".join(json.dumps(r).encode() + b"\n" for r in _rows(range(1, 3)))   # 4 lines
  after = b"".join(json.dumps(r).encode() + b"\n" for r in _rows(range(3, 5)))
  data = good + bad + after
  path.write_bytes(data)
  message = f"{path}:5: corrupt JSON line; fix or remove it (nothing was changed)"
  with pytest.raises(UserError) as e:
    metrics.read_rows(str(path))
  assert str(e.value) == message
  assert path.read_bytes() == data
  with pytest.raises(UserError) as e:
    metrics.truncate_after(str(path), 2)
  assert str(e.value) == message
  assert path.read_bytes() == data
  assert not (tmp_path / "metrics.jsonl.tmp").exists()


@pytest.mark.parametrize("tail", [b'{"step": 6, "width": 16, "lo',     # cut mid-row
                                  b'{"step": 6, "width": 16}',          # no newline
                                  b'{"step": 6, "width"\n'])            # newline, not JSON
def test_torn_last_line_is_dropped_with_a_warning(tmp_path, capsys, tail):
  path = tmp_path / "metrics.jsonl"
  rows = _rows(range(1, 6))
  _write(path, rows, tail)
  assert metrics.read_rows(str(path)) == rows
  out = capsys.readouterr().out.splitlines()
  assert out == [f"WARNING {path}: dropped a torn last line ({len(tail)} bytes)"]
  assert metrics.last_step(str(path)) == 5
  capsys.readouterr()

  # truncate_after repairs the file: whole rows, each ending in a newline, no warning after.
  kept = metrics.truncate_after(str(path), 3)
  assert kept == [r for r in rows if r["step"] <= 3]
  assert path.read_bytes() == b"".join(json.dumps(r).encode() + b"\n" for r in kept)
  capsys.readouterr()
  assert metrics.read_rows(str(path)) == kept
  assert capsys.readouterr().out == ""


def test_truncate_after_keeps_everything_up_to_the_step(tmp_path, capsys):
  path = tmp_path / "metrics.jsonl"
  rows = _rows(range(1, 6))
  data = _write(path, rows)
  assert metrics.truncate_after(str(path), 5) == rows
  assert path.read_bytes() == data
  assert metrics.truncate_after(str(path), 0) == []
  assert path.read_bytes() == b""
  assert capsys.readouterr().out == ""
  # A file that does not exist yet stays missing (a failed start leaves nothing behind).
  assert metrics.truncate_after(str(tmp_path / "probes.jsonl"), 3) == []
  assert not (tmp_path / "probes.jsonl").exists()


def test_blank_lines_are_skipped(tmp_path, capsys):
  path = tmp_path / "metrics.jsonl"
  rows = _rows(range(1, 3))
  path.write_bytes(b"\n".join(json.dumps(r).encode() for r in rows[:2]) + b"\n\n"
                   + b"".join(json.dumps(r).encode() + b"\n" for r in rows[2:]) + b"\n")
  assert metrics.read_rows(str(path)) == rows
  assert capsys.readouterr().out == ""


def test_writer_appends_whole_lines(tmp_path):
  path = str(tmp_path / "metrics.jsonl")
  rows = _rows(range(1, 4))
  w = metrics.Writer(path)
  w.write(rows[:2])
  w.write(rows[2:])
  w.close()
  assert metrics.read_rows(path) == rows
  metrics.Writer(str(tmp_path / "off.jsonl"), enabled=False).write(rows)
  assert not (tmp_path / "off.jsonl").exists()
