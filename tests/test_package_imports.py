"""The package's import graph, read from the real files with ``ast`` (imports inside functions count too): no
module imports the package root (``import hf_audio_cr`` / ``from hf_audio_cr import Name`` / ``from .. import
Name``: use the submodule that defines the name), and no two modules import each other, directly or round a
longer loop."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hf_audio_cr"
NAME = PACKAGE.name


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def imports_of(module: str):
    """``(line, imported module, names taken from it)`` for every import statement of ``module``."""
    package = module if is_package(module) else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            yield node.lineno, target, [alias.name for alias in node.names]


def edges(module: str):
    """The project modules ``module`` makes Python execute: a submodule named in ``from pkg import sub`` is
    the submodule, any other name taken from a package is that package's ``__init__``."""
    for line, target, names in imports_of(module):
        if target != NAME and not target.startswith(NAME + "."):
            continue
        subs = [f"{target}.{name}" for name in names if f"{target}.{name}" in MODULES]
        if subs:
            yield from ((line, sub) for sub in subs)
        if not names or len(subs) < len(names):
            yield line, target


def test_no_module_imports_the_package_root():
    offenders = []
    for module in MODULES:
        if module == NAME:
            continue
        for line, target, names in imports_of(module):
            if target != NAME:
                continue
            taken = [name for name in names if f"{NAME}.{name}" not in MODULES] if names else ["<the package>"]
            if taken:
                offenders.append(f"{MODULES[module].relative_to(PACKAGE.parent)}:{line} takes {taken} from {NAME}")
    assert not offenders, "import the defining submodule instead:\n" + "\n".join(offenders)


def test_no_import_cycles():
    graph = {module: sorted({target for _, target in edges(module) if target != module}) for module in MODULES}
    cycles, state = [], {}

    def visit(module, stack):
        state[module] = "open"
        for target in graph.get(module, []):
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target, stack + [target])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])
    assert not cycles, "modules that import each other:\n" + "\n".join(cycles)


def test_the_graph_is_read_from_the_real_files():
    # the checks above would pass vacuously on an empty or misparsed graph
    assert len(MODULES) > 30
    assert "hf_audio_cr.training.losses" in {target for _, target in edges("hf_audio_cr.training.cr_trainer")}


def _project_imports(path: Path, package: str):
    """``(line, module, names)`` of every import of a project module in ``path`` (inside functions too)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name, []) for a in node.names if a.name.split(".")[0] == NAME)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == NAME:
                yield node.lineno, target, [a.name for a in node.names]


def test_every_import_of_a_project_module_resolves():
    """Code moves between modules (data/, training/, experiments/): an import left behind inside a function only
    fails when that path runs, e.g. in a study's subprocess. Every import in the package, the scripts and the tests must
    name a module that exists and names that it defines (or lazily exports)."""
    import importlib

    files = [(path, module_name(path) if is_package(module_name(path)) else module_name(path).rpartition(".")[0])
             for path in sorted(PACKAGE.rglob("*.py"))]
    files += [(path, NAME) for folder in ("scripts", "tests") for path in sorted((PACKAGE.parent / folder).glob("*.py"))]
    broken = []
    for path, package in files:
        for line, target, names in _project_imports(path, package):
            where = f"{path.relative_to(PACKAGE.parent)}:{line}"
            try:
                module = importlib.import_module(target)
            except ModuleNotFoundError as err:
                broken.append(f"{where}: {target} ({err})")
                continue
            for name in names:
                if name != "*" and not hasattr(module, name) and f"{target}.{name}" not in MODULES:
                    broken.append(f"{where}: {target} has no {name!r}")
    assert not broken, "imports that no longer resolve:\n" + "\n".join(broken)
