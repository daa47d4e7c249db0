"""Layers go one way (DESIGN §3): no module imports a layer above its own.

Every import statement of every module under ``src/cauce`` counts: at module level, inside a
function, under ``if TYPE_CHECKING``. Relative imports are resolved. ``cauce/__init__.py``, the
lazy public facade that re-exports the whole SDK, is the one exemption; importing the facade
from inside the package (other than its own ``__version__``) counts as importing the top layer,
since through it any layer is reachable.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "src" / "cauce"

# Lowest first. A module may import its own layer and any layer below it; cli and demo share the
# top rank. A new top-level module or package must be placed here before its test passes.
ORDER: list[tuple[str, ...]] = [
    ("errors",),
    ("config",),
    ("validation", "estimator_files"),
    ("store",),
    ("artifacts",),
    ("workspace", "client", "operations"),
    ("lineage",),
    ("specs",),
    ("stats",),
    ("data",),
    ("tracking",),
    ("pipelines",),
    ("registry",),
    ("genai",),
    ("serving",),
    ("monitoring",),
    ("automation",),
    ("server",),
    ("cli", "demo"),
]
RANK = {layer: rank for rank, layers in enumerate(ORDER) for layer in layers}
FACADE = "cauce (public facade)"
RANK[FACADE] = len(ORDER) - 1
FACADE_OWN = {"__version__"}  # defined in the facade itself: importing it reaches no layer


@dataclass(frozen=True)
class Violation:
    """One import against the layer order, or a module outside it."""

    file: str
    line: int
    imported: str
    layer: str
    target_layer: str | None

    def __str__(self) -> str:
        if self.target_layer is None:
            return (
                f"{self.file}:{self.line}: layer {self.layer!r} is not in the layer order; "
                "place it in ORDER (tests/test_layers.py) and DESIGN §3"
            )
        if self.target_layer not in RANK:
            return (
                f"{self.file}:{self.line}: imports {self.imported}, whose layer "
                f"{self.target_layer!r} is not in the layer order; place it in ORDER "
                "(tests/test_layers.py) and DESIGN §3"
            )
        return (
            f"{self.file}:{self.line}: imports {self.imported} (layer {self.target_layer!r}) "
            f"from layer {self.layer!r}, which is below it"
        )


def module_name(package: Path, file: Path) -> tuple[str, bool]:
    """The dotted name of a module file, and whether it is a package's ``__init__``."""
    parts = [package.name, *file.relative_to(package).with_suffix("").parts]
    is_init = parts[-1] == "__init__"
    if is_init:
        parts = parts[:-1]
    return ".".join(parts), is_init


def imported_modules(tree: ast.AST, module: str, is_init: bool) -> list[tuple[int, str]]:
    """Every ``(line, dotted module)`` an import statement anywhere in the tree names."""
    package = module if is_init else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            # ``from pkg import name`` may import the submodule pkg.name: count each name
            found.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names)
    return found


def upward_imports(package: Path) -> list[Violation]:
    """Every import under ``package`` that reaches a higher layer, or a layer not in ORDER."""
    root = package.name
    violations: list[Violation] = []
    for file in sorted(package.rglob("*.py")):
        module, is_init = module_name(package, file)
        if module == root:
            continue  # the lazy public facade
        layer = module.split(".")[1]
        shown = file.relative_to(package.parent).as_posix()
        if layer not in RANK:
            violations.append(Violation(shown, 1, module, layer, None))
            continue
        tree = ast.parse(file.read_text(), filename=str(file))
        for line, imported in imported_modules(tree, module, is_init):
            target = _layer_in(imported, package)
            if target is None:
                continue
            if target not in RANK or RANK[target] > RANK[layer]:
                violations.append(Violation(shown, line, imported, layer, target))
    return violations


def _layer_in(imported: str, package: Path) -> str | None:
    parts = imported.split(".")
    if parts[0] != package.name:
        return None
    if len(parts) == 1 or parts[1] == "*":
        return FACADE
    name = parts[1]
    if name in FACADE_OWN:
        return None
    if len(parts) == 2 and not (package / name).is_dir() and not (package / f"{name}.py").exists():
        return FACADE  # ``from cauce import start_run``: a name the facade re-exports
    return name


def test_no_module_imports_a_higher_layer() -> None:
    violations = upward_imports(PACKAGE)
    assert not violations, "imports against the layer order (DESIGN §3):\n" + "\n".join(
        map(str, violations)
    )


def test_every_top_level_module_has_a_layer() -> None:
    names = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert names - {"__init__"} <= set(RANK), sorted(names - {"__init__"} - set(RANK))


def _tree(root: Path, files: dict[str, str]) -> Path:
    package = root / "cauce"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def test_the_checker_finds_an_upward_import_inside_a_function(tmp_path: Path) -> None:
    package = _tree(
        tmp_path,
        {
            "__init__.py": "from cauce.cli import main\n",  # the facade is exempt
            "errors.py": "",
            "data/__init__.py": "",
            "data/assets.py": (
                "from cauce.errors import X\n"
                "from cauce.data import sources\n"
                "def f():\n"
                "    from cauce.tracking.artifacts import record_blob\n"
            ),
            "tracking/__init__.py": "",
            "tracking/artifacts.py": "from ..data import assets\n",
            "cli/__init__.py": "",
            "cli/main.py": "import cauce.monitoring\nfrom cauce import demo\n",
        },
    )
    found = [(v.file, v.line, v.imported, v.layer, v.target_layer) for v in upward_imports(package)]
    assert found == [
        ("cauce/data/assets.py", 4, "cauce.tracking.artifacts.record_blob", "data", "tracking")
    ]
    assert str(upward_imports(package)[0]) == (
        "cauce/data/assets.py:4: imports cauce.tracking.artifacts.record_blob "
        "(layer 'tracking') from layer 'data', which is below it"
    )


TYPE_CHECKING_IMPORT = (
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cauce.cli import x\n"
)


@pytest.mark.parametrize(
    ("source", "imported", "target"),
    [
        (TYPE_CHECKING_IMPORT, "cauce.cli.x", "cli"),
        ("from ..registry import gates\n", "cauce.registry.gates", "registry"),
        ("from .. import serving\n", "cauce.serving", "serving"),
        ("import cauce\n", "cauce", FACADE),
        ("from cauce import start_run\n", "cauce.start_run", FACADE),
        ("from cauce.newthing import x\n", "cauce.newthing.x", "newthing"),
    ],
)
def test_the_checker_resolves_every_kind_of_import(
    tmp_path: Path, source: str, imported: str, target: str
) -> None:
    package = _tree(
        tmp_path,
        {
            "__init__.py": "__version__ = '0'\n",
            "data/__init__.py": "",
            "data/assets.py": source + "from cauce import __version__\n",
            "registry/__init__.py": "",
            "registry/gates.py": "",
            "serving/__init__.py": "",
            "cli/__init__.py": "",
        },
    )
    violations = upward_imports(package)
    assert [(v.imported, v.target_layer) for v in violations] == [(imported, target)]
    assert str(violations[0]).startswith("cauce/data/assets.py:")


def test_the_checker_rejects_a_module_outside_the_order(tmp_path: Path) -> None:
    package = _tree(tmp_path, {"__init__.py": "", "plugins.py": "import os\n"})
    (violation,) = upward_imports(package)
    assert violation.layer == "plugins"
    assert "not in the layer order" in str(violation)
