"""The shape of the package: no import cycles, no lower layer importing a higher one.

``scripts/import_graph.py`` reads every import statement of the package (also the ones inside
functions and under ``TYPE_CHECKING``) without importing anything; these tests hold the line it
draws, so a new cycle or an upward import fails the suite with the modules named.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import import_graph  # noqa: E402  (a script of the repository, not a package)


@pytest.fixture(scope="module")
def edges() -> dict[str, set[str]]:
    return import_graph.graph()


def test_the_graph_sees_imports_inside_functions(tmp_path: Path) -> None:
    # the rule would be toothless if a function-level import went unseen
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from bindu_storage.storage import postgres\n")
    known = {"bindu_storage.storage", "bindu_storage.storage.postgres", "m"}
    assert import_graph.imports_of("m", source, known) == {"bindu_storage.storage.postgres"}


def test_the_cycle_finder_finds_a_cycle() -> None:
    found = import_graph.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    assert found == [["a", "b", "c"]]


def test_no_import_cycles(edges: dict[str, set[str]]) -> None:
    assert import_graph.cycles(edges) == []


def test_no_lower_layer_imports_a_higher_one(edges: dict[str, set[str]]) -> None:
    breaks = [f"{src} (layer {import_graph.layer(src)}) imports {dst} (layer {import_graph.layer(dst)})"
              for src, dst in import_graph.layer_breaks(edges)]
    assert breaks == []


def test_every_top_level_part_has_a_layer() -> None:
    parts = {p.stem if p.is_file() else p.name for p in (ROOT / "bindu_storage").iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").exists()) and p.name != "__init__.py"}
    assert parts - set(import_graph.LAYERS) == set()


def test_analysis_never_looks_at_a_backend_class() -> None:
    # analysis reads storages through storage.read (SqlReadable) and the Storage contract only
    backend = re.compile(r"isinstance\([^)]*(PostgresStorage|InMemoryStorage)|\.pool\b|\._pool\b")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in sorted((ROOT / "bindu_storage" / "analysis").rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if backend.search(line)
    ]
    assert offenders == []


def test_the_script_exits_zero_on_this_tree() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "import_graph.py")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cycles: 0" in done.stdout and "layer breaks: 0" in done.stdout


def test_a_module_over_400_lines_says_why_in_its_docstring() -> None:
    # "no module over ~400 lines without a reason in its docstring": the reason names the size
    import ast

    unexplained = []
    for name, count in import_graph.line_counts().items():
        if count <= 400:
            continue
        path = import_graph.modules()[name]
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if not re.search(r"(over|longer than|about)\s+400\s+lines", doc, re.IGNORECASE):
            unexplained.append(f"{name} ({count} lines)")
    assert unexplained == []
