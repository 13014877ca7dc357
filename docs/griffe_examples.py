"""A griffe extension for the API reference (mkdocs.yml loads it): it fences the docstrings' doctests
as ``pycon`` code before they are rendered.

The package's doctests sit under an ``Example:`` heading (Google style allows it; griffe renders it
as a Markdown note) or in a docstring's body. Either way Markdown reads ``>>>`` lines as nested
quotes and outputs such as ``[[0, 1], [0, 1]]`` as links to nothing, which ``mkdocs build --strict``
refuses. Fencing each doctest renders it as the code it is; the docstrings themselves stay as they
are, and pytest still runs them as doctests."""

from __future__ import annotations

from typing import Any

import griffe


def fence_doctests(text: str) -> str:
    """``text`` with each doctest (a ``>>>`` line, the lines after it up to a blank line or a line
    indented less) inside a ```` ```pycon ```` fence at the doctest's own indentation
    (tests/test_docs.py checks it).
    """
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
                out.append(lines[i])
                i += 1
            out.append(f"{indent}```")
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


class FencedDoctests(griffe.Extension):
    """Fences every docstring's doctests before griffe parses the docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
