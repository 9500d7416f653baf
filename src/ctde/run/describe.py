"""What a setting means: every field of an algorithm's ``Config`` and every parameter
of an environment, with its default, type and the one-line meaning written beside it
in the source (a field's comment, or a docstring's ``Attributes:``/``Args:`` entry).
Used by ``ctde algos NAME`` and ``ctde envs NAME``.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import re
import sys
import textwrap
import tokenize
import typing


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # the type, as written
    default: typing.Any
    meaning: str


def field_comments(cls) -> dict[str, str]:
    """Field name -> its comment in ``cls``'s source: the comment after the field (with
    the comment-only lines below whose text is indented well past the field: its
    continuation), or else the comment block just above it."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    comments: dict[int, tuple[int, str]] = {}  # line -> (column of the text, text)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            text = tok.string.lstrip("#")
            comments[tok.start[0]] = (tok.end[1] - len(text.lstrip()), text.strip())
    body = ast.parse(source).body[0].body
    fields = [n for n in body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]
    out = {}
    for node in fields:
        line = node.end_lineno
        indent = len(lines[node.lineno - 1]) - len(lines[node.lineno - 1].lstrip())
        parts = []

        def continuation(n, indent=indent):
            return (n in comments and lines[n - 1].lstrip().startswith("#")
                    and comments[n][0] > indent + 4)

        if line in comments and not lines[line - 1].lstrip().startswith("#"):
            parts.append(comments[line][1])
            below = line + 1
            while continuation(below):
                parts.append(comments[below][1])
                below += 1
        else:
            above = node.lineno - 1
            while (above in comments and lines[above - 1].lstrip().startswith("#")
                   and not continuation(above)):
                parts.insert(0, comments[above][1])
                above -= 1
        if parts:
            out[node.target.id] = " ".join(p for p in parts if p)
    return out


def docstring_entries(obj) -> dict[str, str]:
    """Name -> text of the ``Attributes:`` / ``Args:`` / ``Parameters:`` entries of a
    Google-style docstring (continuation lines joined)."""
    doc = inspect.getdoc(obj) or ""
    out: dict[str, str] = {}
    section = None
    current, out_indent = None, 0
    entry = re.compile(r"^(\s*)(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")
    for raw in doc.splitlines():
        if re.match(r"^(Attributes|Args|Arguments|Parameters):\s*$", raw.strip()):
            section = len(raw) - len(raw.lstrip())
            current = None
            continue
        if section is None:
            continue
        if raw.strip() and len(raw) - len(raw.lstrip()) <= section:
            section = current = None  # the section ended
            continue
        match = entry.match(raw)
        if match and (current is None or len(match.group(1)) <= out_indent):
            current, out_indent = match.group(2), len(match.group(1))
            out[current] = match.group(3).strip()
        elif current is not None and raw.strip():
            out[current] += " " + raw.strip()
    return out


def _kind(annotation) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def algorithm_settings(name: str) -> list[Setting]:
    """Every field of algorithm ``name``'s Config; ValueError for an unknown name."""
    from ctde import algos

    config = algos.get(name).Config
    hints = typing.get_type_hints(config)
    meanings = {**docstring_entries(config), **field_comments(config)}
    out = []
    for f in dataclasses.fields(config):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out.append(Setting(f.name, _kind(hints[f.name]), default, meanings.get(f.name, "")))
    return out


def run_settings() -> list[Setting]:
    """The run's own settings (RunSpec), shared by every algorithm."""
    from ctde.run.spec import RUN_FIELDS, RunSpec

    hints = typing.get_type_hints(RunSpec)
    meanings = field_comments(RunSpec)
    return [Setting(f.name, _kind(hints[f.name]), f.default, meanings.get(f.name, ""))
            for f in dataclasses.fields(RunSpec) if f.name in RUN_FIELDS]


def env_parameters(name: str) -> list[Setting]:
    """Every parameter of environment ``name`` with its default and, where the source
    documents it (the factory's docstring or a config dataclass of its module), its
    meaning; ValueError for an unknown name."""
    from ctde.envs import registry

    registry.make(name)  # an unknown name: the registry's one-line error
    factory = registry._catalogue()[name]
    meanings: dict[str, str] = {}
    kinds: dict[str, str] = {}
    module = sys.modules.get(getattr(factory, "__module__", ""), None)
    for obj in vars(module).values() if module else ():
        if dataclasses.is_dataclass(obj) and isinstance(obj, type):
            meanings.update(docstring_entries(obj))
            meanings.update(field_comments(obj))
            kinds.update({k: _kind(v) for k, v in typing.get_type_hints(obj).items()})
    for obj in (factory, getattr(factory, "__init__", None)):
        if obj is not None:
            meanings.update(docstring_entries(obj))
    out = []
    for param, default in registry.parameters(name).items():
        kind = kinds.get(param) or (type(default).__name__ if default is not None else "optional")
        out.append(Setting(param, kind, default, meanings.get(param, "")))
    return out


def table(settings: list[Setting], prefix: str = "--") -> str:
    """Aligned lines ``--name  type  default  meaning``."""
    rows = [(f"{prefix}{s.name.replace('_', '-') if prefix == '--' else s.name}", s.kind,
             repr(s.default) if isinstance(s.default, str) else str(s.default), s.meaning)
            for s in settings]
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(3)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip()
                     for a, b, c, d in rows)
