"""The rooms of oceanbridge import downward only (issue 19, part 3).

Rooms, bottom to top (README.md, "Rooms"):

- the coupling library: ``bridge/__init__.py`` and the other top-level modules of ``bridge/`` (component,
  partition, routing, handshake, errors, mpirun), ``bridge/transport/`` and ``bridge/examples/`` (the
  Python side of the Fortran examples, on the coupling API only); numpy and mpi4py, never torch;
- the ML package ``models/``, beside it: torch, no MPI, nothing of ``bridge`` or ``deploy``.  Its
  ``models/settings.py`` is the settings language every config section is written in (stdlib only), so
  that the ML dataclasses can *be* their config sections;
- the configuration ``bridge/config/`` (the one loader, the rules, the hosts, the ensemble designs, the
  namelists), above both: it may import the coupling library and, of ``models``, only the settings language;
- the worker runtime ``bridge/worker/``, above them: never ``deploy``;
- deployment on top: ``deploy/`` (the ``oceanbridge`` command, preprod, launch, slurm, install, the demo,
  spinup-start, and the example configs).

What is checked, on the source (an AST scan, relative imports resolved, ``importlib.import_module`` /
``__import__`` of a literal name counted as an import):

1. the coupling library imports, anywhere in a file (inside functions and ``if TYPE_CHECKING:`` too),
   none of torch, models, bridge.config, bridge.worker, deploy;
2. ``models/`` imports neither ``bridge``, ``deploy`` nor ``mpi4py``, anywhere;
3. the configuration imports none of torch, bridge.worker, deploy, and of models only models.settings;
4. the worker imports ``deploy`` nowhere;
5. deployment imports ``bridge.worker``, torch and ``models`` (but its settings language) only inside a
   function: deployment sits above them, so such an import points downward, but a module-level one would make
   ``import deploy...`` load torch for every user of the deploy API.  Inside a function it costs only the verb
   that needs it (``oceanbridge demo`` runs the worker's report; preprod/launch validate the worker's config
   sections with ``bridge.worker.settings``, which is torch-free: checked in 6).

And at run time (6): in a fresh interpreter where the packages of pyproject's ``ml`` extra (torch, tqdm,
matplotlib) cannot be imported (``sys.modules[name] = None``: an environment installed without the extra),
every module of the coupling library, the configuration and deployment imports, and neither ``bridge.worker``
nor any module of ``models`` but its settings language is loaded by doing so; ``bridge.worker.settings`` (what
preprod/launch import when they run) imports too.
"""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

DEPLOYMENT = ("deploy",)
CONFIG = ("bridge/config",)
WORKER = ("bridge/worker",)
COUPLING_DIRS = ("bridge/transport", "bridge/examples")
MODELS = ("models",)
NOT_COUPLING = DEPLOYMENT + CONFIG + WORKER
SETTINGS_LANGUAGE = "models.settings"  # the one module of models that the configuration and deployment import

COUPLING_FORBIDDEN = ("torch", "models", "bridge.config", "bridge.worker", "deploy")
MODELS_FORBIDDEN = ("bridge", "deploy", "mpi4py")
CONFIG_FORBIDDEN = ("torch", "bridge.worker", "deploy", "models")  # models.settings excepted
WORKER_FORBIDDEN = ("deploy",)
DEPLOYMENT_FORBIDDEN_AT_TOP = ("bridge.worker", "torch", "models")  # at module level (models.settings excepted)


def files_of(*places: str) -> list[Path]:
    out = []
    for place in places:
        path = REPO / place
        out += [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))
    return out


def coupling_files() -> list[Path]:
    """Every top-level module of bridge/ that is not deployment's, plus bridge/transport and bridge/examples:
    a new top-level module is in the strictest room until someone moves it."""
    return sorted((REPO / "bridge").glob("*.py")) + files_of(*COUPLING_DIRS)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """``(imported module, line, inside a function)`` for every import of ``path``.  ``from a import b``
    yields ``a`` and ``a.b`` (b may be a submodule); relative imports are resolved against the file's
    package; ``importlib.import_module("x")`` and ``__import__("x")`` with a literal name count too."""
    tree = ast.parse(path.read_text(), filename=str(path))
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno, in_function) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[:len(package) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.append((base, node.lineno, in_function))
            found.extend((f"{base}.{alias.name}", node.lineno, in_function) for alias in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__"):
                found.append((node.args[0].value, node.lineno, in_function))
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return found


def violations(paths: list[Path], forbidden: tuple[str, ...], *, top_level_only: bool = False,
               allowed: tuple[str, ...] = ()) -> list[str]:
    out = []
    for path in paths:
        for name, line, in_function in imports(path):
            if (top_level_only and in_function) or any(name == a or name.startswith(a + ".") for a in allowed):
                continue
            hit = next((f for f in forbidden if name == f or name.startswith(f + ".")), None)
            if hit:
                where = "inside a function" if in_function else "at module level"
                out.append(f"{path.relative_to(REPO)}:{line} imports {name} ({where})")
    return sorted(set(out))


# ---- the scan itself ----


def test_the_scan_resolves_relative_lazy_and_dynamic_imports(tmp_path, monkeypatch):
    pkg = tmp_path / "bridge" / "transport"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import mpi\n")
    (pkg / "x.py").write_text("import numpy as np\nfrom ..config.naming import oasis_name\nfrom .. import worker\n"
                              "def f():\n    import torch\n    importlib.import_module('models.cli')\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert imports(pkg / "__init__.py") == [("bridge.transport", 1, False), ("bridge.transport.mpi", 1, False)]
    assert violations([pkg / "x.py"], COUPLING_FORBIDDEN) == [
        "bridge/transport/x.py:2 imports bridge.config.naming (at module level)",
        "bridge/transport/x.py:2 imports bridge.config.naming.oasis_name (at module level)",
        "bridge/transport/x.py:3 imports bridge.worker (at module level)",
        "bridge/transport/x.py:5 imports torch (inside a function)",
        "bridge/transport/x.py:6 imports models.cli (inside a function)"]
    assert violations([pkg / "x.py"], ("torch", "models"), top_level_only=True) == []


def test_every_python_file_of_bridge_models_and_deploy_is_in_one_room():
    rooms = [coupling_files(), files_of(*MODELS), files_of(*CONFIG), files_of(*WORKER), files_of(*DEPLOYMENT)]
    placed = [p for room in rooms for p in room]
    assert len(placed) == len(set(placed))
    every = {p for top in ("bridge", "models", "deploy") for p in (REPO / top).rglob("*.py")}
    assert sorted(map(str, every - set(placed))) == []
    assert {"bridge/transport/oasis.py", "bridge/component.py", "bridge/__init__.py"} <= {
        p.relative_to(REPO).as_posix() for p in coupling_files()}


# ---- the rules ----


def test_the_coupling_library_imports_no_torch_models_config_worker_or_deployment():
    assert violations(coupling_files(), COUPLING_FORBIDDEN) == []


def test_models_imports_neither_bridge_deploy_nor_mpi():
    assert violations(files_of(*MODELS), MODELS_FORBIDDEN) == []


def test_the_configuration_imports_the_coupling_library_and_the_settings_language_only():
    assert violations(files_of(*CONFIG), CONFIG_FORBIDDEN, allowed=(SETTINGS_LANGUAGE,)) == []


def test_the_worker_imports_no_deployment():
    assert violations(files_of(*WORKER), WORKER_FORBIDDEN) == []


def test_deployment_imports_the_worker_torch_and_models_only_inside_functions():
    assert violations(files_of(*DEPLOYMENT), DEPLOYMENT_FORBIDDEN_AT_TOP, top_level_only=True,
                      allowed=(SETTINGS_LANGUAGE,)) == []


def ml_extra_modules() -> list[str]:
    """Import names of pyproject's ``ml`` extra (torch, tqdm, matplotlib)."""
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["ml"]
    return sorted(re.match(r"[A-Za-z0-9_.-]+", req).group().lower().replace("-", "_") for req in extra)


def test_coupling_library_and_deployment_import_without_the_ml_extra():
    blocked = ml_extra_modules()
    assert "torch" in blocked
    modules = [module_name(p) for p in coupling_files() + files_of(*CONFIG) + files_of(*DEPLOYMENT)]
    code = f"""
import importlib, json, sys
for name in {blocked!r}:
    sys.modules[name] = None   # 'import name' raises ImportError, as without the ml extra
failed = {{}}
for name in {modules!r}:
    try:
        importlib.import_module(name)
    except BaseException as err:
        failed[name] = f"{{type(err).__name__}}: {{err}}"
loaded = sorted(m for m in sys.modules if (m.split('.')[0] == 'models' and m not in ('models', {SETTINGS_LANGUAGE!r}))
                or m.startswith('bridge.worker'))
try:
    importlib.import_module('bridge.worker.settings')   # what preprod/launch import when they run
except BaseException as err:
    failed['bridge.worker.settings'] = f"{{type(err).__name__}}: {{err}}"
print(json.dumps({{"failed": failed, "loaded": loaded}}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.splitlines()[-1])
    assert result == {"failed": {}, "loaded": []}
    assert len(modules) >= 35  # (the rooms were found)
