"""The index page: one document, rendered to Markdown (index.md) and HTML (index.html).

The page is a list of blocks (headings, paragraphs, tables, links, images) so both
renderings carry the same content and every link is written in one place.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from benchmark.report.formatting import TextTable, to_html, to_markdown


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Links:
    """Inline links, ``[(label, relative path)]``, on one line after ``lead``."""

    lead: str
    links: list[tuple[str, str]]


@dataclass
class Image:
    path: str
    alt: str


@dataclass
class Table:
    table: TextTable
    show_title: bool = True


@dataclass
class Raw:
    """HTML for index.html only (an interactive figure); index.md gets ``markdown`` instead."""

    html: str
    markdown: str


Block = Heading | Paragraph | Bullets | Links | Image | Table | Raw


def render_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append("#" * block.level + " " + block.text + "\n")
        elif isinstance(block, Paragraph):
            out.append(block.text + "\n")
        elif isinstance(block, Bullets):
            out.append("\n".join(f"- {item}" for item in block.items) + "\n")
        elif isinstance(block, Links):
            out.append(block.lead + " " + " · ".join(f"[{label}]({path})" for label, path in block.links) + "\n")
        elif isinstance(block, Image):
            out.append(f"![{block.alt}]({block.path})\n")
        elif isinstance(block, Table):
            if block.show_title:
                out.append(f"**{block.table.title}**\n")
            out.append(to_markdown(block.table))
            out += [f"_{note}_\n" for note in block.table.notes]
        elif isinstance(block, Raw):
            out.append(block.markdown + "\n")
    return "\n".join(out)


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border-top: 1px solid #ccc; border-bottom: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 2px solid #333; }
img { max-width: 100%; }
.note { color: #555; font-size: 0.85em; }
"""


def render_html(blocks: list[Block], title: str) -> str:
    out = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">",
           f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"]
    for block in blocks:
        if isinstance(block, Heading):
            anchor = re.sub(r"[^a-z0-9]+", "-", block.text.lower()).strip("-")
            out.append(f'<h{block.level} id="{anchor}">{html.escape(block.text)}</h{block.level}>')
        elif isinstance(block, Paragraph):
            out.append(f"<p>{_inline_html(block.text)}</p>")
        elif isinstance(block, Bullets):
            out.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, Links):
            links = " · ".join(f'<a href="{html.escape(p)}">{html.escape(label)}</a>' for label, p in block.links)
            out.append(f"<p>{_inline_html(block.lead)} {links}</p>")
        elif isinstance(block, Image):
            out.append(f'<p><img src="{html.escape(block.path)}" alt="{html.escape(block.alt)}"></p>')
        elif isinstance(block, Table):
            if block.show_title:
                out.append(f"<p><b>{html.escape(block.table.title)}</b></p>")
            out.append(to_html(block.table))
            out += [f'<p class="note">{_inline_html(note)}</p>' for note in block.table.notes]
        elif isinstance(block, Raw):
            out.append(block.html)
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _inline_html(text: str) -> str:
    """Escape text and turn the Markdown we use inline (`code`, **bold**, [links](#x)) into tags."""
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)
    escaped = re.sub(r"\[([^\]]+)\]\((#[^)]+)\)", r'<a href="\2">\1</a>', escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def write_index(blocks: list[Block], out_dir: Path, title: str) -> list[Path]:
    md, page = out_dir / "index.md", out_dir / "index.html"
    md.write_text(render_markdown(blocks), encoding="utf-8")
    page.write_text(render_html(blocks, title), encoding="utf-8")
    return [md, page]


def linked_paths(blocks: list[Block]) -> list[str]:
    """Every relative path the page links to or embeds (tests check they exist)."""
    paths: list[str] = []
    for block in blocks:
        if isinstance(block, Links):
            paths += [p for _, p in block.links]
        elif isinstance(block, Image):
            paths.append(block.path)
    return paths
