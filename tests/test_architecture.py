"""Architecture contracts: an import-linter equivalent on the stdlib ``ast``.

Every ``.py`` file of the four project packages (screener, chains, sanctions_lists, screener_base; not
screener/migrations/) is parsed once; each ``import``/``from ... import`` is resolved to an absolute module name
(relative imports included; ``from pkg import sub`` is an import of ``pkg.sub`` when ``pkg/sub.py`` exists) and
tagged with where it sits: module level, inside a function/method body, or inside ``if TYPE_CHECKING:``.

Imports under ``if TYPE_CHECKING:`` never run, so they count for nothing here (not for cycles, not for the
layers, not for the purity or independence rules). Module-level and function-level imports both count: an import
hidden in a function body is still a dependency, it only moves the failure from import time to call time.

Only explicit imports count. ``import screener.x.y`` also executes ``screener/x/__init__.py``; that implicit
parent edge is ignored (every submodule would otherwise "depend on" its package).

The checks run over a ``{module_name: ParsedModule(path, tree, lines)}`` dict, so the self-tests at the bottom
feed them synthetic sources built from strings. Each failure names ``path:line``, the importing module and the
imported module.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import deque
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("screener", "chains", "sanctions_lists", "screener_base")
SKIPPED_DIRS = ("screener/migrations",)

# --- Rule data: edit these, not the checkers. -------------------------------------------------------------------

# Rule 2: function-level imports. The CLI imports inside its command functions on purpose (``screener --help``
# must not import web3/sqlalchemy), so modules under these packages are exempt, for project and third-party
# imports alike. Elsewhere a third-party import in a function body needs a comment with the word "lazy" on its
# line or the line above; stdlib imports in function bodies are allowed (e.g. ``fcntl``, POSIX only).
FUNCTION_IMPORTS_ALLOWED_IN = ("screener.cli",)
LAZY_COMMENT = re.compile(r"#.*\blazy\b", re.IGNORECASE)

# Rule 3: package -> packages it must never import.
INDEPENDENT_PACKAGES: dict[str, tuple[str, ...]] = {
    "chains": ("sanctions_lists", "screener"),
    "sanctions_lists": ("chains", "screener"),
    "screener_base": ("screener", "chains", "sanctions_lists"),
}

# Rule 4: the pure modules (data in, data out; no database, network, subprocess or clock side effects).
# A name ending in ".*" means the package and everything under it.
PURE_MODULES = (
    "screener.screening.*",
    "screener.ledger.rules",
    "screener.ledger.checkpoint_rules",
    "screener.review.rules",
    "screener.review.evidence",
    "screener.review.roles",
    "screener.review.statements",
    "screener.lists.rules",
    "screener.indexes.rules",
    "screener.ops.outbox_rules",
    "chains.transfers",
    "chains.budget",
)
# What a pure module may import besides the standard library and other pure modules. These are trusted leaves:
# they are not looked into (screener_base.addresses uses eth_utils/base58 for checksums and screener.settings is
# pydantic; both are plain computation).
PURE_MAY_IMPORT = ("screener_base.*", "screener.settings")
# Project packages outside screener whose modules a pure module may import if they are themselves clean: they
# are followed transitively and the chain to the first forbidden import is reported.
PURE_FOLLOWED_PACKAGES = ("chains", "sanctions_lists")
# Standard library modules that do I/O; forbidden in pure modules (matched on the top-level name).
IO_STDLIB = frozenset({"socket", "http", "urllib", "sqlite3", "subprocess", "asyncio"})

# Rule 5: screener's layers, highest first. A module may import its own component (first column: a package with
# everything under it, or a single module) and anything in a lower layer; never a higher layer. Components that
# share a layer may import each other unless the layer is marked independent.
# "screener" is the root package's own __init__ only (it is not a prefix for the other components).
ROOT_PACKAGE = "screener"


class Layer(NamedTuple):
    components: tuple[str, ...]
    independent: bool = False  # True: the components of this layer must not import each other


LAYERS: tuple[Layer, ...] = (
    Layer(("screener.cli", "screener.__main__", "screener")),
    Layer(("screener.demo",)),
    Layer(("screener.daemon",)),
    Layer(("screener.ops",)),
    Layer(("screener.decide",)),
    Layer(("screener.indexes",)),
    Layer(("screener.pipeline",)),
    Layer(("screener.review", "screener.lists"), independent=True),
    Layer(("screener.ledger",)),
    Layer(("screener.screening",)),
    Layer(("screener.models", "screener.db", "screener.settings", "screener.amounts")),
)

# The pure modules (PURE_MODULES) sit below every layer, whatever folder they live in: any module may import
# them (the ORM models import the status StrEnums that live beside their rules; the pipeline sets
# DepositStatus.RECORDED), and rule 4 keeps them from importing anything impure in turn.

# Imports the layer order alone would allow but which are forbidden: (importer component, imported component,
# reason). pipeline -> decide/indexes are upward anyway; pipeline -> review is downward and needs saying.
EXTRA_FORBIDDEN: tuple[tuple[str, str, str], ...] = (
    ("screener.pipeline", "screener.decide", "the decider is passed into the pipeline, never imported"),
    ("screener.pipeline", "screener.indexes", "the pipeline records deposits; index facts are the decider's"),
    ("screener.pipeline", "screener.review", "verdicts reach review through the decider, not the pipeline"),
)

# --- Parsing ----------------------------------------------------------------------------------------------------

MODULE, FUNCTION, TYPE_CHECKING = "module level", "function level", "TYPE_CHECKING"


class ParsedModule(NamedTuple):
    path: str  # repo-relative, for messages
    tree: ast.Module
    lines: tuple[str, ...]  # source lines, for the "lazy" comments (ast drops comments)


Sources = dict[str, ParsedModule]


@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # absolute dotted name
    path: str
    line: int
    scope: str  # MODULE, FUNCTION or TYPE_CHECKING
    lazy_comment: bool

    @property
    def counts(self) -> bool:
        return self.scope != TYPE_CHECKING

    @property
    def top(self) -> str:
        return self.target.split(".", 1)[0]

    @property
    def is_project(self) -> bool:
        return self.top in PROJECT_PACKAGES

    @property
    def is_stdlib(self) -> bool:
        return self.top in sys.stdlib_module_names

    def where(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.target} ({self.scope})"


def module_name(rel_path: str) -> str:
    parts = rel_path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def parse_module(rel_path: str, text: str) -> ParsedModule:
    return ParsedModule(rel_path, ast.parse(text, filename=rel_path), tuple(text.splitlines()))


def sources_from_strings(files: dict[str, str]) -> Sources:
    """{repo-relative path: source} -> Sources; what the self-tests use instead of the tree."""
    return {module_name(path): parse_module(path, text) for path, text in files.items()}


@cache
def project_sources() -> Sources:
    sources: Sources = {}
    for package in PROJECT_PACKAGES:
        for file in sorted((ROOT / package).rglob("*.py")):
            rel = file.relative_to(ROOT).as_posix()
            if any(rel.startswith(skipped + "/") for skipped in SKIPPED_DIRS):
                continue
            sources[module_name(rel)] = parse_module(rel, file.read_text(encoding="utf-8"))
    return sources


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Collector(ast.NodeVisitor):
    def __init__(self, name: str, module: ParsedModule, known: frozenset[str]) -> None:
        self.name, self.module, self.known = name, module, known
        self.is_package = module.path.endswith("__init__.py")
        self.function_depth = 0
        self.type_checking = False
        self.found: list[Import] = []

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self.function_depth += 1
        self.generic_visit(node)
        self.function_depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        outer, self.type_checking = self.type_checking, True
        for stmt in node.body:
            self.visit(stmt)
        self.type_checking = outer
        for stmt in node.orelse:  # the else branch of `if TYPE_CHECKING:` is what runs
            self.visit(stmt)

    def _add(self, node: ast.Import | ast.ImportFrom, targets: list[str]) -> None:
        scope = TYPE_CHECKING if self.type_checking else FUNCTION if self.function_depth else MODULE
        lines = self.module.lines
        nearby = [lines[i] for i in (node.lineno - 1, node.lineno - 2) if 0 <= i < len(lines)]
        lazy = any(LAZY_COMMENT.search(line) for line in nearby)
        for target in dict.fromkeys(targets):  # dedupe, keep order
            if target.split(".", 1)[0] != "__future__":
                self.found.append(Import(self.name, target, self.module.path, node.lineno, scope, lazy))

    def visit_Import(self, node: ast.Import) -> None:
        self._add(node, [alias.name for alias in node.names])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            parts = self.name.split(".") if self.is_package else self.name.split(".")[:-1]
            parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
            base = ".".join([*parts, node.module] if node.module else parts)
        else:
            base = node.module or ""
        targets = []
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            targets.append(sub if sub in self.known else base)
        self._add(node, targets)


def collect_imports(sources: Sources) -> list[Import]:
    known = frozenset(sources)
    found: list[Import] = []
    for name, module in sources.items():
        collector = _Collector(name, module, known)
        collector.visit(module.tree)
        found.extend(collector.found)
    return found


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(_within(name, p[:-2]) if p.endswith(".*") else name == p for p in patterns)


def _counted_by_importer(imports: list[Import]) -> dict[str, list[Import]]:
    out: dict[str, list[Import]] = {}
    for imp in imports:
        if imp.counts:
            out.setdefault(imp.importer, []).append(imp)
    return out


def _report(title: str, problems: list[str]) -> str:
    return f"{title} ({len(problems)}):\n  " + "\n  ".join(problems)


# --- Rule 1: cycles ---------------------------------------------------------------------------------------------


def _tarjan(nodes: list[str], edges: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            successors = edges.get(node, [])
            if i < len(successors):
                work.append((node, i + 1))
                succ = successors[i]
                if succ not in index:
                    work.append((succ, 0))
                elif succ in on_stack:
                    low[node] = min(low[node], index[succ])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
            if work:  # propagate to the parent frame
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def _shortest_cycle(start: str, edges: dict[str, list[str]], members: set[str]) -> list[str]:
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for succ in edges.get(node, []):
            if succ not in members:
                continue
            if succ == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if succ not in previous:
                previous[succ] = node
                queue.append(succ)
    return [start, start]


def check_cycles(sources: Sources) -> list[str]:
    lines: dict[tuple[str, str], list[Import]] = {}
    for imp in collect_imports(sources):
        if imp.counts and imp.target in sources:
            lines.setdefault((imp.importer, imp.target), []).append(imp)
    edges: dict[str, list[str]] = {}
    for a, b in lines:
        edges.setdefault(a, []).append(b)
    problems = []
    for component in _tarjan(sorted(sources), edges):
        members = set(component)
        if len(component) == 1 and (component[0], component[0]) not in lines:
            continue
        cycle = _shortest_cycle(component[0], edges, members)
        inside = [imp for (a, b), imps in sorted(lines.items()) if a in members and b in members for imp in imps]
        problems.append(
            f"cycle among {', '.join(component)}: e.g. {' -> '.join(cycle)}; imports inside it:\n    "
            + "\n    ".join(imp.where() for imp in inside)
        )
    return problems


# --- Rule 2: function-level imports -----------------------------------------------------------------------------


def check_function_imports(sources: Sources) -> list[str]:
    problems = []
    for imp in collect_imports(sources):
        if imp.scope != FUNCTION or _matches(imp.importer, tuple(p + ".*" for p in FUNCTION_IMPORTS_ALLOWED_IN)):
            continue
        if imp.is_project:
            problems.append(f"{imp.where()}: project import inside a function; import it at module level")
        elif not imp.is_stdlib and not imp.lazy_comment:
            problems.append(
                f"{imp.where()}: third-party import inside a function without a '# lazy: ...' comment saying why"
            )
    return problems


# --- Rule 3: independent packages -------------------------------------------------------------------------------


def check_independence(sources: Sources) -> list[str]:
    problems = []
    for imp in collect_imports(sources):
        package = imp.importer.split(".", 1)[0]
        if imp.counts and imp.top in INDEPENDENT_PACKAGES.get(package, ()):
            problems.append(f"{imp.where()}: {package} must not import {imp.top}")
    return problems


# --- Rule 4: pure modules ---------------------------------------------------------------------------------------


def is_pure(name: str) -> bool:
    return _matches(name, PURE_MODULES)


def _pure_verdict(imp: Import) -> str:
    """'ok', 'follow' (a project module outside screener: look into it) or the reason it is forbidden."""
    if imp.is_stdlib:
        return f"{imp.top} does I/O" if imp.top in IO_STDLIB else "ok"
    if not imp.is_project:
        return "third-party library"
    if _matches(imp.target, PURE_MAY_IMPORT) or is_pure(imp.target):
        return "ok"
    if imp.top in PURE_FOLLOWED_PACKAGES:
        return "follow"
    return "not a pure module"


def _first_impure_dependency(start: str, graph: dict[str, list[Import]]) -> list[Import]:
    """Shortest import chain from a project module to a third-party or I/O stdlib import (to say why it matters)."""
    previous: dict[str, Import] = {}
    queue, seen = deque([start]), {start}
    while queue:
        node = queue.popleft()
        for imp in graph.get(node, []):
            if imp.is_project:
                if imp.target in graph and imp.target not in seen:
                    seen.add(imp.target)
                    previous[imp.target] = imp
                    queue.append(imp.target)
            elif not imp.is_stdlib or imp.top in IO_STDLIB:
                chain = [imp]
                while chain[0].importer != start:
                    chain.insert(0, previous[chain[0].importer])
                return chain
    return []


def _chain(chain: list[Import]) -> str:
    return " -> ".join(f"{imp.importer} ({imp.path}:{imp.line})" for imp in chain) + f" -> {chain[-1].target}"


def check_pure(sources: Sources) -> list[str]:
    graph = _counted_by_importer(collect_imports(sources))
    problems = []
    for name in sorted(n for n in sources if is_pure(n)):
        # Walk the pure module's imports, following project modules outside screener (chains, sanctions_lists).
        queue: deque[tuple[str, list[Import]]] = deque([(name, [])])
        seen = {name}
        while queue:
            node, via = queue.popleft()
            for imp in graph.get(node, []):
                verdict = _pure_verdict(imp)
                if verdict == "ok":
                    continue
                if verdict == "follow" and imp.target in sources:
                    if imp.target not in seen:
                        seen.add(imp.target)
                        queue.append((imp.target, [*via, imp]))
                    continue
                if verdict == "follow":
                    verdict = "unknown module"
                chain = [*via, imp]
                message = f"{chain[0].where()}: pure module {name} reaches {imp.target} ({verdict})"
                if len(chain) > 1:
                    message += f"; chain: {_chain(chain)}"
                if imp.is_project and imp.target in graph:
                    why = _first_impure_dependency(imp.target, graph)
                    if why:
                        message += f"; {imp.target} pulls in {why[-1].target}: {_chain(why)}"
                problems.append(message)
    return problems


# --- Rule 5: layers ---------------------------------------------------------------------------------------------


def component_of(name: str) -> tuple[str, int] | None:
    """(component, layer index; 0 is the top) of a screener module, or None if no layer lists it."""
    best: tuple[str, int] | None = None
    for level, layer in enumerate(LAYERS):
        for comp in layer.components:
            hit = name == comp if comp == ROOT_PACKAGE else _within(name, comp)
            if hit and (best is None or len(comp) > len(best[0])):
                best = (comp, level)
    return best


def check_layers(sources: Sources) -> list[str]:
    problems = [
        f"{sources[name].path}: {name} is in no layer; add its package to LAYERS"
        for name in sorted(sources)
        if _within(name, ROOT_PACKAGE) and component_of(name) is None
    ]
    for imp in collect_imports(sources):
        if not (imp.counts and _within(imp.importer, ROOT_PACKAGE) and _within(imp.target, ROOT_PACKAGE)):
            continue
        source, target = component_of(imp.importer), component_of(imp.target)
        if source is None:
            continue  # reported above
        if target is None:
            problems.append(f"{imp.where()}: {imp.target} is in no layer")
            continue
        (src, src_level), (dst, dst_level) = source, target
        if src == dst:
            continue
        if is_pure(imp.target):
            continue  # the bottom layer (see PURE_MODULES)
        forbidden = [(a, b, why) for a, b, why in EXTRA_FORBIDDEN if _within(src, a) and _within(dst, b)]
        if forbidden:
            problems.extend(f"{imp.where()}: {a} must not import {b} ({why})" for a, b, why in forbidden)
            continue
        if dst_level < src_level:
            problems.append(f"{imp.where()}: {src} (layer {src_level}) imports the higher layer {dst} ({dst_level})")
        elif dst_level == src_level and LAYERS[src_level].independent:
            problems.append(f"{imp.where()}: {src} and {dst} are independent and must not import each other")
    return problems


# --- The contracts on the real tree -----------------------------------------------------------------------------


def test_no_import_cycles() -> None:
    """No import cycles among project modules.

    Module-level and function-level imports both count: a function-level import that "breaks" a cycle only
    hides it (the two modules still need each other and must be understood and changed together). Cut the cycle
    by moving the shared piece down or by passing a callable in.
    """
    problems = check_cycles(project_sources())
    assert not problems, _report("import cycles", problems)


def test_no_project_imports_inside_functions_outside_cli() -> None:
    """Project modules are imported at module level (except in screener/cli/, which imports lazily so that
    ``screener --help`` stays fast). A function-level project import usually hides a cycle or a layer violation
    and makes the dependency invisible at the top of the file. Third-party imports inside functions are allowed
    only with a comment containing "lazy" on the line or the line above, saying why start-up needs it.
    """
    problems = check_function_imports(project_sources())
    assert not problems, _report("imports inside functions", problems)


def test_chains_and_sanctions_lists_are_independent() -> None:
    """chains (RPC, decoding) and sanctions_lists (parsing, snapshots) are libraries: neither imports the other
    nor the screener app, and screener_base (shared by all) imports none of them. That keeps them testable and
    reusable on their own and keeps the app the only place where they meet.
    """
    problems = check_independence(project_sources())
    assert not problems, _report("independence violations", problems)


def test_pure_modules_do_no_io() -> None:
    """The pure modules (PURE_MODULES: screener.screening.*, the *.rules modules, chains.transfers)
    import only the standard library minus its I/O modules, screener_base, screener.settings and each other
    (and chains/sanctions_lists modules that are themselves clean, followed transitively). No database, ORM
    model, HTTP, web3 or scheduler: they are the deterministic core, tested without fixtures.
    """
    problems = check_pure(project_sources())
    assert not problems, _report("pure modules with impure imports", problems)


def test_layers() -> None:
    """screener's subpackages form layers (LAYERS, highest first): a module imports its own component and lower
    layers only, and any pure module (PURE_MODULES); screener.review and screener.lists stay independent, and
    EXTRA_FORBIDDEN pins what the pipeline must not know about. Upward imports are how cycles and "everything
    depends on everything" start.
    """
    problems = check_layers(project_sources())
    assert not problems, _report("layer violations", problems)


def test_every_project_file_is_parsed() -> None:
    """The contracts see the whole tree (a package silently missing would pass every rule)."""
    names = set(project_sources())
    assert {"screener.cli", "screener.screening.policy", "chains.transfers", "sanctions_lists.ofac"} <= names
    assert not any(name.startswith("screener.migrations") for name in names)


# --- Self-tests: the checkers catch what they should ------------------------------------------------------------

_CLEAN_BASE = {
    "screener/__init__.py": "",
    "screener/db.py": "import sqlalchemy\n",
    "screener/settings.py": "import pydantic\n",
    "screener/models/__init__.py": "",
    "screener/models/ledger.py": (
        "import sqlalchemy\nfrom screener.db import Amount\nfrom screener.review.rules import HoldState\n"
    ),
    "screener/screening/__init__.py": "",
    "screener/screening/facts.py": "from __future__ import annotations\nfrom dataclasses import dataclass\n",
    "screener/ledger/__init__.py": "",
    "screener/review/__init__.py": "",
    "screener/ledger/rules.py": "import hashlib\n",
    "screener/review/rules.py": "import re\nfrom ..ledger.rules import BLOCKED\n",
    "screener/review/flags.py": (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from screener.cli import app\n"  # not counted
    ),
    "screener/daemon/__init__.py": "",
    "screener/daemon/jobs.py": (
        "from screener.ledger import rules\n"
        "def run():\n"
        "    import json\n"
        "    # lazy: apscheduler is slow to import\n"
        "    import apscheduler\n"
    ),
    "screener/cli/__init__.py": "def main():\n    from screener.daemon.jobs import run\n    import typer\n",
    "chains/__init__.py": "",
    "chains/codec.py": "from screener_base.addresses import canonical\n",
    "screener_base/__init__.py": "",
    "screener_base/addresses.py": "import eth_utils\n",
}


def test_contract_catches_a_forbidden_import() -> None:
    """Synthetic modules with one known violation each: every rule reports it, with path, line and both names;
    the clean synthetic baseline reports nothing (no false positives from TYPE_CHECKING blocks, allow-listed
    enums, stdlib or "lazy" function imports, or the CLI's lazy imports)."""
    clean = sources_from_strings(_CLEAN_BASE)
    for check in (check_cycles, check_function_imports, check_independence, check_pure, check_layers):
        assert check(clean) == [], check.__name__

    bad = sources_from_strings(
        {
            **_CLEAN_BASE,
            "screener/screening/policy.py": "from screener.screening import facts\nimport sqlalchemy\n",
            "chains/transfers.py": "from chains import codec\nfrom screener.db import Amount\n",
            "screener/ledger/rules.py": "def f():\n    from screener.daemon.jobs import Jobs\n",
            "screener/screening/verdicts.py": "from chains.codec import topic_for\n",
            "chains/codec.py": "import httpx\n",
            "screener/pipeline/__init__.py": "",
            "screener/pipeline/tick.py": "from ..review.service import apply_verdict\n",
            "screener/lists/__init__.py": "",
            "screener/lists/store.py": "from screener.review import service\ndef f():\n    import sqlmodel\n",
        }
    )

    pure = "\n".join(check_pure(bad))
    assert "screener/screening/policy.py:2: screener.screening.policy imports sqlalchemy" in pure
    assert "chains/transfers.py:2: chains.transfers imports screener.db" in pure
    assert "pulls in sqlalchemy" in pure
    assert "screener/ledger/rules.py:2: screener.ledger.rules imports screener.daemon.jobs (function level)" in pure
    assert "chain: screener.screening.verdicts (screener/screening/verdicts.py:1) -> chains.codec" in pure
    assert "chains.codec (chains/codec.py:1) -> httpx" in pure
    assert "chains.transfers imports chains.codec" in pure  # transfers -> codec -> httpx, too

    independence = "\n".join(check_independence(bad))
    assert "chains/transfers.py:2: chains.transfers imports screener.db (module level): chains must not" in independence

    layers = "\n".join(check_layers(bad))
    assert "screener/ledger/rules.py:2: screener.ledger.rules imports screener.daemon.jobs" in layers
    assert "higher layer screener.daemon" in layers
    assert "screener/pipeline/tick.py:1: screener.pipeline.tick imports screener.review.service" in layers
    assert "screener/lists/store.py:1: screener.lists.store imports screener.review" in layers
    assert "independent" in layers
    assert "screener.models.ledger" not in layers  # models may import a pure module (the status enums)

    cycles = "\n".join(check_cycles(bad))
    assert "cycle among screener.daemon.jobs, screener.ledger.rules" in cycles
    assert "screener/ledger/rules.py:2: screener.ledger.rules imports screener.daemon.jobs (function level)" in cycles

    functions = "\n".join(check_function_imports(bad))
    assert "screener/ledger/rules.py:2: screener.ledger.rules imports screener.daemon.jobs" in functions
    assert "screener/lists/store.py:3: screener.lists.store imports sqlmodel" in functions
    assert "apscheduler" not in functions and "json" not in functions and "screener.cli" not in functions


def test_import_resolution() -> None:
    """Relative imports, `from pkg import submodule`, `from pkg import name`, and scopes resolve as documented."""
    sources = sources_from_strings(
        {
            "screener/__init__.py": "",
            "screener/ops/__init__.py": "VALUE = 1\n",
            "screener/ops/alerts.py": "",
            "screener/ops/status.py": (
                "from . import alerts, VALUE\n"
                "from .. import ops\n"
                "import screener.ops.alerts as a\n"
                "import typing\n"
                "if typing.TYPE_CHECKING:\n"
                "    import sqlalchemy\n"
                "else:\n"
                "    import json\n"
                "class C:\n"
                "    async def m(self):\n"
                "        from .alerts import x\n"
            ),
        }
    )
    got = [(i.target, i.line, i.scope) for i in collect_imports(sources) if i.importer == "screener.ops.status"]
    assert got == [
        ("screener.ops.alerts", 1, MODULE),
        ("screener.ops", 1, MODULE),
        ("screener.ops", 2, MODULE),
        ("screener.ops.alerts", 3, MODULE),
        ("typing", 4, MODULE),
        ("sqlalchemy", 6, TYPE_CHECKING),
        ("json", 8, MODULE),
        ("screener.ops.alerts", 11, FUNCTION),
    ]
