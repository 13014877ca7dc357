"""A griffe extension for the API reference (mkdocs.yml loads it): it makes the package's docstrings,
written for reading in source and for pytest's doctests, render as Markdown.

* Doctests sit under an ``Example:`` heading (Google style allows it; griffe renders it as a
  Markdown note) or in a docstring's body. Either way Markdown reads ``>>>`` lines as nested quotes
  and outputs such as ``[[0, 1], [0, 1]]`` as links to nothing, which ``mkdocs build --strict``
  refuses. Each doctest is fenced as ``pycon`` code, its ``# doctest:`` directives left out.
* Sphinx roles (``:class:`Poses```, ``:meth:`load```) would show as written; they become code.

The docstrings themselves stay as they are, and pytest still runs them as doctests."""

from __future__ import annotations

import re
from typing import Any

import griffe

# A doctest directive at the end of a line: "  # doctest: +SKIP".
_DIRECTIVE = re.compile(r"\s*#\s*doctest:.*$")
# A Sphinx role: :class:`Poses`, :meth:`~posetrack_cli.VideoTracker.load`.
_ROLE = re.compile(r":(?:class|meth|func|mod|attr|data|obj|exc):`~?\.?([^`]+)`")


def fence_doctests(text: str) -> str:
    """``text`` with each doctest (a ``>>>`` line, the lines after it up to a blank line or a line
    indented less) inside a ```` ```pycon ```` fence at the doctest's own indentation, without
    ``# doctest:`` directives (tests/test_docs.py checks it)."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}```pycon")
            while i < len(lines) and lines[i].strip() and lines[i].startswith(indent):
                out.append(_DIRECTIVE.sub("", lines[i]))
                i += 1
            out.append(f"{indent}```")
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def code_for_roles(text: str) -> str:
    """``text`` with each Sphinx role written as inline code: ``:meth:`load``` -> ```load```."""
    return _ROLE.sub(r"`\1`", text)


class FencedDoctests(griffe.Extension):
    """Fences every docstring's doctests and turns its Sphinx roles into code, before griffe
    parses the docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = code_for_roles(fence_doctests(obj.docstring.value))
