"""Write the faces: ``src/agentstore/faces.py`` (sync) and ``async_faces.py`` (asyncio).

Every operation marked ``@reads`` or ``@writes`` on a repository gets a method of the
same signature and docstring on both faces, which hands the call to the face's runner
(``agentstore.boundary``). The faces are written out, not built at run time, so that
type checkers and editors see every method; a test fails when they are out of date.

    python tools/generate_faces.py           # rewrite both files
    python tools/generate_faces.py --check   # exit 1 if either is out of date
"""

from __future__ import annotations

import argparse
import ast
import builtins
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

# The repositories are read as source, not imported: the faces must be writable even
# when the faces on disk no longer import.
SOURCE = Path(__file__).resolve().parents[1] / "src" / "agentstore"
# Public operations that no face exposes as they are: hand-written face methods use them.
HELPERS = {"ExecutionRepository.sweep_batch"}

# (attribute on the store, face class name, repository "module:Class", extras "module:Class")
FACES = [
    (
        "runs",
        "Runs",
        "agentstore.orchestrator.runs:RunRepository",
        "agentstore.orchestrator.run_extras:RunsExtras",
    ),
    ("agents", "Agents", "agentstore.orchestrator.agents:AgentRepository", None),
    (
        "tasks",
        "Tasks",
        "agentstore.orchestrator.tasks:TaskRepository",
        "agentstore.orchestrator.task_extras:TasksExtras",
    ),
    ("attempts", "Attempts", "agentstore.orchestrator.attempts:AttemptRepository", None),
    (
        "events",
        "Events",
        "agentstore.orchestrator.events:EventRepository",
        "agentstore.orchestrator.journal_extras:EventsExtras",
    ),
    ("artifacts", "Artifacts", "agentstore.orchestrator.journal:ArtifactRepository", None),
    ("approvals", "Approvals", "agentstore.orchestrator.journal:ApprovalRepository", None),
    (
        "checkpoints",
        "Checkpoints",
        "agentstore.orchestrator.journal:CheckpointRepository",
        "agentstore.orchestrator.journal_extras:CheckpointsExtras",
    ),
    (
        "executions",
        "Executions",
        "agentstore.executions.repository:ExecutionRepository",
        "agentstore.executions.extras:ExecutionsExtras",
    ),
]


@dataclass
class Method:
    name: str
    access: str
    signature: str  # the parameters after self, as written in the source
    returns: str
    doc: str
    forward: str  # the arguments that pass the parameters on


def load(path: str) -> tuple[str, str, ast.Module, ast.ClassDef]:
    """The module, class name, module tree and class tree of ``module:Class``."""
    module, name = path.split(":")
    file = SOURCE.parent.joinpath(*module.split(".")).with_suffix(".py")
    tree = ast.parse(file.read_text())
    [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name]
    return module, name, tree, cls


def access_of(node: ast.FunctionDef) -> str | None:
    """``read`` or ``write`` for an operation marked ``@reads`` or ``@writes`` (or
    ``@writes_in_one_statement``)."""
    marks = {d.id for d in node.decorator_list if isinstance(d, ast.Name)}
    for mark, access in (
        ("reads", "read"),
        ("writes", "write"),
        ("writes_in_one_statement", "write"),
    ):
        if mark in marks:
            return access
    return None


def operations(repository_path: str, names: dict[str, str]) -> tuple[str, list[Method]]:
    """The class docstring and the marked operations of a repository, in source order,
    recording in ``names`` the import each name in their signatures needs."""
    module, repository, tree, cls = load(repository_path)
    imports = module_imports(tree, module)
    methods = []
    for node in cls.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        qualified = f"{repository}.{node.name}"
        access = access_of(node)
        if access is None:
            if not node.name.startswith("_") and qualified not in HELPERS:
                raise SystemExit(f"{qualified} is not marked @reads or @writes")
            continue
        arguments = node.args
        arguments.args = arguments.args[1:]  # self
        used = {n.id for n in ast.walk(arguments) if isinstance(n, ast.Name)}
        if node.returns is not None:
            used |= {n.id for n in ast.walk(node.returns) if isinstance(n, ast.Name)}
        for name in used:
            if name in imports:
                names[name] = imports[name]
            elif not hasattr(builtins, name):
                raise SystemExit(f"{qualified}: cannot tell where {name!r} comes from")
        positional = [a.arg for a in arguments.posonlyargs + arguments.args]
        keyword = [f"{a.arg}={a.arg}" for a in arguments.kwonlyargs]
        methods.append(
            Method(
                name=node.name,
                access=access,
                signature=ast.unparse(arguments),
                returns=ast.unparse(node.returns) if node.returns else "None",
                doc=ast.get_docstring(node) or "",
                forward=", ".join(positional + keyword),
            )
        )
    names[repository] = f"from {module} import {repository}"
    return ast.get_docstring(cls) or "", methods


def module_imports(tree: ast.Module, module_name: str) -> dict[str, str]:
    """The import statement that gives each top-level name of a module."""
    imports: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            for alias in node.names:
                imports[alias.asname or alias.name] = f"from {node.module} import {alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                imports[alias.asname or alias.name] = f"import {alias.name}"
        elif isinstance(node, ast.ClassDef | ast.FunctionDef):
            imports[node.name] = f"from {module_name} import {node.name}"
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    imports[target.id] = f"from {module_name} import {target.id}"
    return imports


def render(asynchronous: bool) -> str:
    names: dict[str, str] = {}
    classes = []
    prefix = "Async" if asynchronous else ""
    calls = "AsyncCalls" if asynchronous else "Calls"
    for _attribute, face, repository_path, extras_path in FACES:
        repository = repository_path.split(":")[1]
        doc, methods = operations(repository_path, names)
        bases = ""
        if extras_path:
            module, extras = extras_path.split(":")
            extras = prefix + extras
            names[extras] = f"from {module} import {extras}"
            bases = f"({extras})"
        lines = [f"class {prefix}{face}{bases}:", f'    """{doc}"""', ""]
        lines += ["    __slots__ = ('_calls',)", ""]
        lines += [
            f"    def __init__(self, calls: {calls}) -> None:",
            "        self._calls = calls",
            "",
        ]
        for method in methods:
            defined = "async def" if asynchronous else "def"
            awaited = "await " if asynchronous else ""
            lines.append(
                f"    {defined} {method.name}(self, {method.signature}) -> {method.returns}:"
            )
            if method.doc:
                lines.append(textwrap.indent(f'"""{method.doc}"""', "        "))
            target = f"{repository}.{method.name}"
            forward = f", {method.forward}" if method.forward else ""
            lines.append(
                f"        return {awaited}self._calls.{method.access}"
                f"({repository}, {target}{forward})"
            )
            lines.append("")
        classes.append("\n".join(lines))
    classes.append(container(prefix, calls))
    names[calls] = f"from agentstore.boundary import {calls}"
    header = [
        f'"""The {"asyncio" if asynchronous else "sync"} faces of the repositories: '
        f"what ``{'AsyncAgentStore' if asynchronous else 'AgentStore'}`` and its units hand out.",
        "",
        "Generated by tools/generate_faces.py from the repositories' marked operations: do",
        'not edit by hand."""',
        "",
        "from __future__ import annotations",
        "",
        *sorted(set(names.values()), key=lambda line: (line.startswith("from"), line)),
        "",
    ]
    return "\n".join(header) + "\n\n" + "\n\n".join(classes)


def container(prefix: str, calls: str) -> str:
    """The class every store and unit of the face is: one attribute per aggregate."""
    lines = [
        f"class {prefix}Faces:",
        '    """Every aggregate\'s face, each call run by ``calls``."""',
        "",
        f"    NAMES = {tuple(attribute for attribute, *_ in FACES)!r}",
        "",
        f"    def __init__(self, calls: {calls}) -> None:",
    ]
    lines += [f"        self.{attribute} = {prefix}{face}(calls)" for attribute, face, *_ in FACES]
    return "\n".join(lines) + "\n"


def formatted(source: str, path: Path) -> str:
    """``source`` as ``ruff`` would leave it (imports sorted, then formatted)."""
    for command in (
        [
            "ruff",
            "check",
            "--select",
            "I,F401",
            "--fix",
            "--quiet",
            "--stdin-filename",
            str(path),
            "-",
        ],
        ["ruff", "format", "--quiet", "--stdin-filename", str(path), "-"],
    ):
        source = subprocess.run(
            [sys.executable, "-m", *command],
            input=source,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return source


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a face is out of date")
    check = parser.parse_args().check
    stale = []
    for asynchronous, name in ((False, "faces.py"), (True, "async_faces.py")):
        path = SOURCE / name
        text = formatted(render(asynchronous), path)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(name)
        if not check:
            path.write_text(text)
    if check and stale:
        print(f"out of date: {', '.join(stale)} (run python tools/generate_faces.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
