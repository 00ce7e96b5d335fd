"""No import cycle in kcompress/: every import (top-level or inside a function) is an edge."""

import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "kcompress")


def _modules() -> dict[str, str]:
  """Dotted module name -> file, for every .py under kcompress/."""
  out = {}
  for folder, _, files in os.walk(ROOT):
    for f in files:
      if f.endswith(".py"):
        rel = os.path.relpath(os.path.join(folder, f), os.path.dirname(ROOT))[:-3]
        name = rel.replace(os.sep, ".")
        out[name[:-len(".__init__")] if name.endswith(".__init__") else name] = os.path.join(
            folder, f)
  return out


def import_graph() -> dict[str, set[str]]:
  """module -> the kcompress modules it imports (the most specific module named)."""
  modules = _modules()
  graph = {m: set() for m in modules}
  for name, path in modules.items():
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    with open(path) as f:
      tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
      targets = []
      if isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:   # relative import
          base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                          + ([base] if base else []))
        targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                   for a in node.names]
      for t in targets:
        while t and t not in modules:
          t = t.rpartition(".")[0]
        if t and t != name and t != "kcompress":
          graph[name].add(t)
  return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """One cycle as [a, b, ..., a], or None."""
  state, stack = {}, []

  def visit(node):
    state[node] = "open"
    stack.append(node)
    for nxt in sorted(graph[node]):
      if state.get(nxt) == "open":
        return stack[stack.index(nxt):] + [nxt]
      if nxt not in state:
        found = visit(nxt)
        if found:
          return found
    stack.pop()
    state[node] = "done"
    return None

  for node in sorted(graph):
    if node not in state:
      found = visit(node)
      if found:
        return found
  return None


def test_finder_reports_a_cycle():
  assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
  assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_in_kcompress():
  graph = import_graph()
  assert "kcompress.train" in graph and "kcompress.loop" in graph["kcompress.train"]
  cycle = find_cycle(graph)
  assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_loop_knows_no_kind_of_run():
  """The generic loop imports nothing of kcompress; the kinds of run never import the
  module that runs them."""
  graph = import_graph()
  assert graph["kcompress.loop"] == set()
  for kind in ("kcompress.pretrain", "kcompress.finetune"):
    assert "kcompress.train" not in graph[kind]
