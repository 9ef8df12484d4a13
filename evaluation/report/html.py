"""Report blocks → one self-contained HTML file: figures as base64 ``<img>``, tables as HTML, CSS inline.

Nothing is loaded from elsewhere (no scripts, fonts, style sheets or linked images), so
the file can be mailed or opened offline.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from evaluation.report.document import Block, Bullets, Figure, Heading, Paragraph, Table

__all__ = ["STYLE", "inline", "to_html", "write_html"]

#: The page's style sheet.
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1200px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #eee; padding-bottom: .15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr:nth-child(even) td { background: #fafafa; }
p.caption, figcaption { color: #555; font-size: 0.9em; }
figure { margin: 1em 0 2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
code { background: #f3f3f3; padding: 0 .2em; border-radius: 3px; }
"""


def inline(text: str) -> str:
    """Escaped text with ```code``` and ``**bold**`` turned into ``<code>`` and ``<strong>``."""
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


_NUMERIC = ' class="num"'


def _table(block: Table) -> str:
    head = "".join(f"<th>{inline(c.title)}</th>" for c in block.columns)
    rows = []
    for record in block.records:
        cells = "".join(f"<td{_NUMERIC if c.fmt else ''}>{inline(str(record.get(c.key, '–')))}</td>"
                        for c in block.columns)
        rows.append(f"<tr>{cells}</tr>")
    caption = f'<p class="caption">{inline(block.caption)}</p>' if block.caption else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{caption}"


def _figure(block: Figure) -> str:
    data = base64.b64encode(Path(block.path).read_bytes()).decode("ascii")
    alt = html.escape(block.caption)
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">'
            f"<figcaption>{inline(block.caption)}</figcaption></figure>")


def to_html(blocks: list[Block], title: str) -> str:
    """The whole page: ``<head>`` with the title and :data:`STYLE`, each block in order."""
    body = []
    for block in blocks:
        if isinstance(block, Heading):
            level = min(max(block.level, 1), 6)
            body.append(f"<h{level}>{inline(block.text)}</h{level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{inline(block.text)}</p>")
        elif isinstance(block, Bullets):
            body.append("<ul>" + "".join(f"<li>{inline(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            body.append(_table(block))
        elif isinstance(block, Figure):
            body.append(_figure(block))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def write_html(blocks: list[Block], path: str | Path, title: str) -> Path:
    """Write :func:`to_html` to ``path`` (UTF-8); returns it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_html(blocks, title), encoding="utf-8")
    return path
