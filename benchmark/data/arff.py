"""A small, fast reader for ARFF files and MULAN label XML files.

Why our own parser: liac-arff and scipy's reader are slow on the large sparse MULAN
files, scipy's reader cannot read sparse rows, and neither reports the line of a
malformed row. This reader tokenises with plain ``str`` methods and converts whole
columns at once with numpy, so a 3 MB sparse file parses in well under a second.

Values come back as *codes* in one float64 matrix (dense ``ndarray`` or CSR when the
file's rows are sparse): numeric attributes hold their value, nominal attributes the
index of the value in the declared list (``{0,1}``-like nominals hold the value
itself, so they stay 0/1 columns), string/date attributes ``nan`` (callers drop them),
and missing values (``?``) ``nan``. Turning codes into features and labels is the MULAN
loader's job (``datasets/mulan.py``).
"""

from __future__ import annotations

import gzip
import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from benchmark.errors import ParseError

GZIP_MAGIC = b"\x1f\x8b"
NUMERIC_TYPES = {"numeric", "real", "integer"}


@dataclass
class Attribute:
    """One ``@attribute`` declaration. ``kind``: numeric, nominal, string or date."""

    name: str
    kind: str
    values: list[str] = field(default_factory=list)

    @property
    def is_binary_nominal(self) -> bool:
        """A nominal attribute declared ``{0,1}`` (in any order): kept as one 0/1 column."""
        return self.kind == "nominal" and sorted(self.values) == ["0", "1"]

    @property
    def is_numeric_coded(self) -> bool:
        """Whether the attribute's tokens convert to its code with ``float()``."""
        return self.kind == "numeric" or self.is_binary_nominal


@dataclass
class ArffData:
    """A parsed ARFF file: attributes, value codes and each data row's line number."""

    path: Path
    relation: str
    attributes: list[Attribute]
    codes: np.ndarray | sp.csr_matrix
    row_lines: np.ndarray

    @property
    def is_sparse(self) -> bool:
        return sp.issparse(self.codes)

    @property
    def n_rows(self) -> int:
        return int(self.codes.shape[0])


def read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic bytes."""
    data = Path(path).read_bytes()
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ParseError(path, f"corrupt gzip data ({exc})") from None
    return data


def read_text(path: Path) -> str:
    data = read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# ---------------------------------------------------------------------------- header


def _unquote(token: str) -> str:
    token = token.strip()
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        inner = token[1:-1]
        return re.sub(r"\\(.)", r"\1", inner)
    return token


def _split_name(rest: str, path: Path, lineno: int) -> tuple[str, str]:
    """Split ``name type`` where the name may be quoted and contain spaces."""
    rest = rest.strip()
    if not rest:
        raise ParseError(path, "@attribute without a name", lineno)
    if rest[0] in "'\"":
        quote = rest[0]
        i = 1
        while i < len(rest):
            if rest[i] == "\\":
                i += 2
                continue
            if rest[i] == quote:
                return _unquote(rest[: i + 1]), rest[i + 1 :].strip()
            i += 1
        raise ParseError(path, "unterminated quoted attribute name", lineno)
    parts = rest.split(None, 1)
    if len(parts) < 2:
        raise ParseError(path, f"@attribute {parts[0]} has no type", lineno)
    # A brace may follow the name without a space: ``@attribute a{0,1}``.
    name, kind = parts
    if "{" in name:
        name, _, tail = name.partition("{")
        kind = "{" + tail + " " + kind
    return name, kind.strip()


def split_values(text: str) -> list[str]:
    """Split a comma-separated list honouring single and double quotes."""
    if "'" not in text and '"' not in text:
        return [t.strip() for t in text.split(",")]
    out, current, quote, i = [], [], None, 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and i + 1 < len(text):
                current.append(text[i : i + 2])
                i += 2
                continue
            if ch == quote:
                quote = None
            current.append(ch)
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch == ",":
            out.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    out.append("".join(current).strip())
    return out


def _parse_attribute(rest: str, path: Path, lineno: int) -> Attribute:
    name, kind = _split_name(rest, path, lineno)
    if kind.startswith("{"):
        if not kind.endswith("}"):
            raise ParseError(path, f"attribute {name!r}: unterminated nominal list", lineno)
        values = [_unquote(v) for v in split_values(kind[1:-1])]
        return Attribute(name, "nominal", values)
    lowered = kind.split()[0].lower()
    if lowered in NUMERIC_TYPES:
        return Attribute(name, "numeric")
    if lowered in ("string", "date"):
        return Attribute(name, lowered)
    raise ParseError(path, f"attribute {name!r}: unsupported type {kind!r}", lineno)


def _parse_header(lines: list[str], path: Path) -> tuple[str, list[Attribute], int]:
    """Return relation name, attributes and the index of the first line after @data."""
    relation, attributes = "", []
    for index, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        keyword, _, rest = line.partition(" ")
        if "\t" in keyword:
            keyword, _, tail = keyword.partition("\t")
            rest = tail + " " + rest
        keyword = keyword.lower()
        if keyword == "@relation":
            relation = _unquote(rest)
        elif keyword == "@attribute":
            attributes.append(_parse_attribute(rest, path, index + 1))
        elif keyword == "@data":
            if not attributes:
                raise ParseError(path, "no @attribute declarations before @data", index + 1)
            return relation, attributes, index + 1
        else:
            raise ParseError(path, f"unexpected line in header: {line[:60]!r}", index + 1)
    raise ParseError(path, "no @data section (truncated or not an ARFF file)")


# ---------------------------------------------------------------------------- data


def _data_lines(lines: list[str], start: int) -> tuple[list[str], np.ndarray]:
    texts, numbers = [], []
    for index in range(start, len(lines)):
        line = lines[index].strip()
        if line and not line.startswith("%"):
            texts.append(line)
            numbers.append(index + 1)
    return texts, np.asarray(numbers, dtype=np.int64)


def _convert(
    tokens: np.ndarray,
    columns: np.ndarray,
    attributes: list[Attribute],
    entry_line,
    path: Path,
) -> np.ndarray:
    """Turn string tokens of the given attribute columns into float codes."""
    values = np.full(tokens.shape[0], np.nan)
    numeric_coded = np.array([a.is_numeric_coded for a in attributes])
    kinds = np.array([a.kind for a in attributes])
    is_numeric = numeric_coded[columns]
    if is_numeric.any():
        numeric_tokens = tokens[is_numeric]
        numeric_tokens = np.where(numeric_tokens == "?", "nan", numeric_tokens)
        try:
            values[is_numeric] = numeric_tokens.astype(np.float64)
        except ValueError:
            positions = np.flatnonzero(is_numeric)
            for pos in positions:
                token = str(tokens[pos])
                try:
                    float("nan" if token == "?" else _unquote(token))
                except ValueError:
                    attr = attributes[columns[pos]]
                    raise ParseError(
                        path, f"attribute {attr.name!r}: {token!r} is not a number", entry_line(pos)
                    ) from None
            values[is_numeric] = [float("nan" if t == "?" else _unquote(t)) for t in numeric_tokens]
    nominal_columns = np.unique(columns[(~is_numeric) & (kinds[columns] == "nominal")])
    for col in nominal_columns:
        attr = attributes[col]
        lookup = {v: float(i) for i, v in enumerate(attr.values)}
        lookup["?"] = np.nan
        positions = np.flatnonzero(columns == col)
        codes = []
        for pos in positions:
            token = _unquote(str(tokens[pos]))
            if token not in lookup:
                raise ParseError(
                    path, f"attribute {attr.name!r}: value {token!r} not in its declared list",
                    entry_line(pos),
                )
            codes.append(lookup[token])
        values[positions] = codes
    return values


def _numbers(text: str, sep: str) -> np.ndarray | None:
    """All numbers in ``text`` via numpy's C parser; None if any token is not a number."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return np.fromstring(text, sep=sep)
        except (ValueError, DeprecationWarning):
            return None


def _fast_path_ok(texts, attributes) -> bool:
    """Every attribute converts with float() and no row has quotes: numpy can parse."""
    return all(a.is_numeric_coded for a in attributes) and not any(
        "'" in t or '"' in t for t in texts
    )


def _parse_dense_fast(texts, row_lines, n_attrs, path) -> np.ndarray | None:
    for text, lineno, commas in zip(texts, row_lines, (t.count(",") for t in texts)):
        if commas != n_attrs - 1:
            if text.startswith("{"):
                raise ParseError(path, "sparse row in a file whose first row is dense", int(lineno))
            raise ParseError(path, f"row has {commas + 1} values, expected {n_attrs}", int(lineno))
    numbers = _numbers(",".join(texts), ",")
    if numbers is None or numbers.size != len(texts) * n_attrs:
        return None  # let the general path find and report the bad token
    return numbers.reshape(len(texts), n_attrs)


def _parse_sparse_fast(texts, row_lines, n_attrs, path) -> sp.csr_matrix | None:
    inners = []
    for text, lineno in zip(texts, row_lines):
        if not (text.startswith("{") and text.endswith("}")):
            return None
        inners.append(text[1:-1])
    counts = np.fromiter(((i.count(",") + 1) if i.strip() else 0 for i in inners), np.int64, len(inners))
    numbers = _numbers(" ".join(inners).replace(",", " "), " ")
    if numbers is None or numbers.size != 2 * counts.sum():
        return None
    columns_float = numbers[0::2]
    columns = columns_float.astype(np.int64)
    if not np.array_equal(columns, columns_float):
        return None
    entry_rows = np.repeat(np.arange(len(texts)), counts)
    bad = np.flatnonzero((columns < 0) | (columns >= n_attrs))
    if bad.size:
        raise ParseError(
            path, f"sparse index {columns[bad[0]]} out of range (file has {n_attrs} attributes)",
            int(row_lines[entry_rows[bad[0]]]),
        )
    indptr = np.concatenate([[0], np.cumsum(counts)])
    matrix = sp.csr_matrix((numbers[1::2].copy(), columns, indptr), shape=(len(texts), n_attrs))
    matrix.sum_duplicates()
    return matrix


def _parse_dense(texts, row_lines, attributes, path) -> np.ndarray:
    n_attrs = len(attributes)
    if _fast_path_ok(texts, attributes):
        fast = _parse_dense_fast(texts, row_lines, n_attrs, path)
        if fast is not None:
            return fast
    flat: list[str] = []
    for text, lineno in zip(texts, row_lines):
        if text.startswith("{"):
            raise ParseError(path, "sparse row in a file whose first row is dense", int(lineno))
        row = split_values(text) if ("'" in text or '"' in text) else text.split(",")
        if len(row) != n_attrs:
            raise ParseError(path, f"row has {len(row)} values, expected {n_attrs}", int(lineno))
        flat.extend(row)
    tokens = np.asarray(flat, dtype=str) if flat else np.empty(0, dtype=str)
    tokens = np.char.strip(tokens) if tokens.size else tokens
    columns = np.tile(np.arange(n_attrs), len(texts))
    values = _convert(tokens, columns, attributes, lambda pos: int(row_lines[pos // n_attrs]), path)
    return values.reshape(len(texts), n_attrs)


def _parse_sparse(texts, row_lines, attributes, path) -> sp.csr_matrix:
    n_attrs = len(attributes)
    if _fast_path_ok(texts, attributes):
        fast = _parse_sparse_fast(texts, row_lines, n_attrs, path)
        if fast is not None:
            return fast
    index_tokens: list[str] = []
    value_tokens: list[str] = []
    counts = np.zeros(len(texts), dtype=np.int64)
    for row, (text, lineno) in enumerate(zip(texts, row_lines)):
        if not (text.startswith("{") and text.endswith("}")):
            raise ParseError(path, "dense or malformed row in a sparse file (expected {index value, ...})", int(lineno))
        inner = text[1:-1]
        if "'" in inner or '"' in inner:
            pairs = [p.split(None, 1) for p in split_values(inner) if p]
        else:
            parts = inner.replace(",", " ").split()
            if len(parts) % 2:
                raise ParseError(path, "sparse row has an index without a value", int(lineno))
            pairs = None
            index_tokens.extend(parts[0::2])
            value_tokens.extend(parts[1::2])
            counts[row] = len(parts) // 2
        if pairs is not None:
            if any(len(p) != 2 for p in pairs):
                raise ParseError(path, "sparse row has an index without a value", int(lineno))
            index_tokens.extend(p[0] for p in pairs)
            value_tokens.extend(p[1] for p in pairs)
            counts[row] = len(pairs)
    entry_rows = np.repeat(np.arange(len(texts)), counts)
    entry_line = lambda pos: int(row_lines[entry_rows[pos]])  # noqa: E731
    try:
        columns = np.asarray(index_tokens, dtype=str).astype(np.int64) if index_tokens else np.empty(0, np.int64)
    except ValueError:
        for pos, token in enumerate(index_tokens):
            if not token.lstrip("-").isdigit():
                raise ParseError(path, f"sparse index {token!r} is not an integer", entry_line(pos)) from None
        raise
    bad = np.flatnonzero((columns < 0) | (columns >= n_attrs))
    if bad.size:
        raise ParseError(
            path, f"sparse index {columns[bad[0]]} out of range (file has {n_attrs} attributes)",
            entry_line(bad[0]),
        )
    tokens = np.asarray(value_tokens, dtype=str) if value_tokens else np.empty(0, dtype=str)
    values = _convert(tokens, columns, attributes, entry_line, path)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    matrix = sp.csr_matrix((values, columns, indptr), shape=(len(texts), n_attrs))
    matrix.sum_duplicates()
    return matrix


def read_arff(path: str | Path) -> ArffData:
    """Parse a dense or sparse ARFF file (plain or gzip)."""
    path = Path(path)
    if not path.exists():
        raise ParseError(path, "file not found")
    text = read_text(path)
    if not text.strip():
        raise ParseError(path, "file is empty")
    lines = text.splitlines()
    relation, attributes, start = _parse_header(lines, path)
    texts, row_lines = _data_lines(lines, start)
    if not texts:
        raise ParseError(path, "no data rows after @data")
    if texts[0].startswith("{"):
        codes = _parse_sparse(texts, row_lines, attributes, path)
    else:
        codes = _parse_dense(texts, row_lines, attributes, path)
    return ArffData(path, relation, attributes, codes, row_lines)


# ---------------------------------------------------------------------------- label XML


def read_label_xml(path: str | Path) -> list[str]:
    """Label names from a MULAN XML file (plain or gzip, any namespace, nested labels)."""
    path = Path(path)
    if not path.exists():
        raise ParseError(path, "label XML file not found")
    data = read_bytes(path)
    if not data.strip():
        raise ParseError(path, "file is empty")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ParseError(path, f"malformed XML ({exc})", exc.position[0]) from None
    names = [
        element.get("name")
        for element in root.iter()
        if element.tag.rsplit("}", 1)[-1] == "label" and element.get("name") is not None
    ]
    if not names:
        raise ParseError(path, "no <label name=...> elements")
    return names
