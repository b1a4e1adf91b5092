"""One table, four renderings (Markdown, LaTeX/booktabs, HTML, CSV).

Tables are built once as a grid of :class:`Cell` (text plus a bold flag, with the
numbers kept beside the text) and rendered by small writers, so the Markdown, LaTeX
and HTML versions can never disagree about a number or about which cell is bold.
"""

from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass, field

MISSING = "n/a"  # no finished run for this cell
NO_STD = "—"  # one seed: the standard deviation is undefined


@dataclass
class Cell:
    text: str
    bold: bool = False
    mean: float | None = None
    std: float | None = None
    n: int = 0


@dataclass
class TextTable:
    """A titled grid: ``header`` names the columns; each row is a list of cells."""

    title: str
    header: list[str]
    rows: list[list[Cell]]
    notes: list[str] = field(default_factory=list)
    label: str = ""
    # Rows after this index are summary rows (e.g. the average rank), set off by a rule.
    n_body_rows: int | None = None


def format_mean_std(mean: float, std: float | None, digits: int = 3) -> str:
    if std is None or std != std:  # None or NaN: a single seed
        return f"{mean:.{digits}f} ± {NO_STD}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


# ---------------------------------------------------------------- Markdown


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(table: TextTable) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    out = [line([_md_escape(h) for h in table.header])]
    out.append(line(["---"] + ["---:"] * (len(table.header) - 1)))
    for row in table.rows:
        out.append(line([f"**{_md_escape(c.text)}**" if c.bold and c.text else _md_escape(c.text) for c in row]))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- LaTeX

_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "@": "{@}",  # harmless in text mode; braced so it is never read as part of a macro name
}


def latex_escape(text: str) -> str:
    """Escape LaTeX specials and map the few Unicode symbols we print to ASCII LaTeX."""
    out = "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)
    return (out.replace("±", r"$\pm$").replace(NO_STD, "---").replace("≤", r"$\leq$")
            .replace("Δ", r"$\Delta$").replace("−", "-"))


def to_latex(table: TextTable) -> str:
    """A booktabs ``table`` environment; needs ``\\usepackage{booktabs}`` only."""
    n_cols = len(table.header)
    spec = "l" + "r" * (n_cols - 1)
    body_rows = table.n_body_rows if table.n_body_rows is not None else len(table.rows)

    def line(cells: list[str]) -> str:
        return " & ".join(cells) + r" \\"

    out = [
        r"\begin{table}[t]",
        r"\centering",
        r"\caption{" + latex_escape(table.title) + "}",
    ]
    if table.label:
        out.append(r"\label{" + table.label + "}")
    out += [r"\begin{tabular}{" + spec + "}", r"\toprule"]
    out.append(line([latex_escape(h) for h in table.header]))
    out.append(r"\midrule")
    for i, row in enumerate(table.rows):
        if i == body_rows:
            out.append(r"\midrule")
        texts = [latex_escape(c.text) for c in row]
        out.append(line([r"\textbf{" + t + "}" if c.bold and t else t for c, t in zip(row, texts)]))
    out += [r"\bottomrule", r"\end{tabular}"]
    for note in table.notes:
        out.append(r"\par\smallskip{\footnotesize " + latex_escape(note.replace("`", "")) + "}")
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


def latex_document(table_files: list[str]) -> str:
    """A standalone document that inputs every table (``pdflatex tables.tex``)."""
    lines = [
        r"\documentclass{article}",
        r"\usepackage[T1]{fontenc}",
        r"\usepackage{booktabs}",
        r"\usepackage[margin=1.5cm,landscape]{geometry}",
        r"\begin{document}",
    ]
    lines += [r"\input{" + name + "}" for name in table_files]
    lines.append(r"\end{document}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- HTML and CSV


def to_html(table: TextTable) -> str:
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in table.header) + "</tr></thead>"]
    out.append("<tbody>")
    for row in table.rows:
        cells = []
        for c in row:
            text = html.escape(c.text)
            cells.append(f"<td><b>{text}</b></td>" if c.bold and text else f"<td>{text}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out) + "\n"


def to_csv(table: TextTable) -> str:
    """The displayed table as CSV (mean and std kept as separate numeric columns)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    row_label = table.header[0]
    writer.writerow([row_label, "column", "text", "mean", "std", "n", "best"])
    for row in table.rows:
        for name, cell in zip(table.header[1:], row[1:]):
            writer.writerow([
                row[0].text,
                name,
                cell.text,
                "" if cell.mean is None else repr(cell.mean),
                "" if cell.std is None or cell.std != cell.std else repr(cell.std),
                cell.n,
                int(cell.bold),
            ])
    return buffer.getvalue()


# ---------------------------------------------------------------- wide tables

WIDE_TABLE_MODELS = 8  # more model columns than this: models become rows


def transposed(table: TextTable) -> TextTable:
    """Models as rows and datasets as columns, for tables with many models.

    Expects the paper layout (``Dataset``, ``seeds``, one column per model; body rows per
    dataset, then summary rows such as the average rank): summary rows become trailing
    columns and the per-dataset seed counts move into the header.
    """
    n_body = len(table.rows) if table.n_body_rows is None else table.n_body_rows
    body, summary = table.rows[:n_body], table.rows[n_body:]
    models = table.header[2:]
    header = ["Model"] + [f"{row[0].text} (n={row[1].text})" for row in body] + [row[0].text for row in summary]
    rows = [[Cell(model)] + [row[2 + j] for row in body] + [row[2 + j] for row in summary]
            for j, model in enumerate(models)]
    notes = table.notes + ["Transposed (models as rows) because the table has many models; n = seeds per dataset."]
    return TextTable(title=table.title, header=header, rows=rows, notes=notes, label=table.label)
