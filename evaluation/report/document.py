"""A report as a list of blocks — headings, paragraphs, bullet lists, tables, figures — and its Markdown.

The same blocks become ``report.md`` (:func:`to_markdown`, figures linked as files) and
``report.html`` (:func:`evaluation.report.html.to_html`, figures embedded). Text may use
two inline marks: ```code``` and ``**bold**``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from evaluation.results.report import Column, markdown_table

__all__ = ["Block", "Bullets", "Figure", "Heading", "Paragraph", "Table", "figures_of", "to_markdown"]


@dataclass(frozen=True)
class Heading:
    """A section title; ``level`` 1 is the report's title."""

    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    """One paragraph of text."""

    text: str


@dataclass(frozen=True)
class Bullets:
    """A bullet list, one item per string."""

    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """A table of pre-formatted cells.

    Attributes:
        records: one ``{column key: text}`` dict per row (a missing key prints ``–``).
        columns: the columns in order; a column with a non-empty ``fmt`` is right-aligned.
        caption: a line printed under the table.
    """

    records: tuple[dict[str, str], ...]
    columns: tuple[Column, ...]
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    """A PNG figure with its caption."""

    path: Path
    caption: str


Block = Union[Heading, Paragraph, Bullets, Table, Figure]


def figures_of(blocks: list[Block]) -> list[Path]:
    """The paths of every figure, in order."""
    return [block.path for block in blocks if isinstance(block, Figure)]


def to_markdown(blocks: list[Block], base: str | Path) -> str:
    """GitHub-flavoured Markdown of the blocks; figure links are relative to ``base`` (the .md's folder)."""
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            lines += [block.text, ""]
        elif isinstance(block, Bullets):
            lines += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, Table):
            lines += [markdown_table(list(block.records), block.columns).rstrip("\n"), ""]
            if block.caption:
                lines += [block.caption, ""]
        elif isinstance(block, Figure):
            link = Path(os.path.relpath(block.path, base)).as_posix()
            lines += [f"![{block.caption}]({link})", "", f"*{block.caption}*", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
