"""``.csv`` data as people have them, read under a memory cap.

- a header row names the columns; ``target:`` names the label column(s),
  ``features:`` (optional) the input columns, else every other column;
- the separator is a comma, a semicolon (with decimal commas allowed) or a
  tab, told apart by the header row;
- a label column of words (``setosa``, ``versicolor``…) is read as classes,
  with ids in the words' sorted order and the names kept;
- the unnamed first column ``pandas.DataFrame.to_csv`` writes (an empty header
  cell above 0, 1, 2…) is the row number, not a feature, and is dropped;
- the rows stream into one array allocated up front, its size bounded by
  the cap before reading; errors quote at most the one offending cell, cut
  short, its control characters made visible.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..safetext import quote, visible
from .arrayfile import ArrayFileError, Cap, check_file_size, human

F64 = NDArray[np.float64]

SEPARATORS = {",": "a comma", ";": "a semicolon", "\t": "a tab"}
INDEX_NAMES = ("", "Unnamed: 0")  # what pandas writes above its index, and reads it back as
MAX_HEADER_CHARS = 1_000_000
MAX_FIELD_CHARS = 1_000_000
CHUNK = 1 << 20


class CsvError(Exception):
    """A .csv file that cannot be used; ``key`` is the scenario key the mistake belongs to."""

    def __init__(self, message: str, key: str = "data.file") -> None:
        self.message = message
        self.key = key
        super().__init__(message)


@dataclass(frozen=True, eq=False)
class CsvData:
    """x: (samples, features); y: (samples, targets), or class ids (samples,) with names."""

    x: F64
    y: F64
    class_names: tuple[str, ...] | None
    features: tuple[str, ...]


def _count_lines(path: Path) -> int:
    """How many lines the file has at most, ended by CR LF, LF or a lone CR (old Macs)."""
    lines = 0
    last = b""
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            lines += chunk.count(b"\n") + chunk.count(b"\r") - chunk.count(b"\r\n")
            if last == b"\r" and chunk[:1] == b"\n":
                lines -= 1  # a CR LF cut between two chunks
            last = chunk[-1:]
    return lines + 1  # the last line may end without a line feed


def _separator(line: str) -> str:
    counts = {sep: line.count(sep) for sep in SEPARATORS}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _name(header: list[str], column: int) -> str:
    name = header[column]
    return name if name else f"column {column + 1}"


def _number_parser(separator: str) -> Callable[[str], float]:
    if separator != ";":
        return float

    def parse(cell: str) -> float:
        try:
            return float(cell)
        except ValueError:
            return float(cell.replace(",", "."))  # 5,1 where a semicolon separates

    return parse


def _is_number(cell: str, parse: Callable[[str], float]) -> bool:
    try:
        parse(cell)
    except ValueError:
        return False
    return True


def _columns(header: list[str], names: list[str], key: str, file: str) -> list[int]:
    out = []
    for name in names:
        found = [i for i, h in enumerate(header) if h == name]
        if not found:
            shown = ", ".join(quote(h or f"column {i + 1}", 24) for i, h in enumerate(header[:20]))
            more = f" and {len(header) - 20} more" if len(header) > 20 else ""
            raise CsvError(
                f"{file} has no column {quote(name)}; its columns are {shown}{more}", key
            )
        if len(found) > 1:
            raise CsvError(f"{file} has {len(found)} columns named {quote(name)}; rename one", key)
        out.append(found[0])
    return out


def read_csv(
    path: Path,
    file: str,
    targets: list[str],
    features: list[str] | None,
    cap: Cap,
) -> CsvData:
    """Read ``path`` (shown as ``file``) into inputs and labels; every mistake is a CsvError."""
    try:
        check_file_size(path, cap, file)
    except ArrayFileError as err:
        raise CsvError(str(err)) from None
    except OSError as err:
        raise CsvError(f"{file} cannot be read ({err.strerror or err})") from None
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # Excel writes a BOM
            first = handle.readline(MAX_HEADER_CHARS)
            if len(first) >= MAX_HEADER_CHARS:
                raise CsvError(
                    f"the first line of {file} is over {MAX_HEADER_CHARS:,} characters; "
                    "a .csv file starts with a header row naming its columns"
                )
            separator = _separator(first)
            csv.field_size_limit(MAX_FIELD_CHARS)
            header = [h.strip() for h in next(csv.reader([first], delimiter=separator), [])]
            rows = csv.reader(handle, delimiter=separator)
            return _read_rows(path, file, header, rows, separator, targets, features, cap)
    except UnicodeDecodeError:
        raise CsvError(f"{file} is not UTF-8 text; save it as a UTF-8 .csv file") from None
    except csv.Error as err:
        raise CsvError(f"{file} cannot be read as CSV ({visible(str(err))[:80]})") from None
    except OSError as err:
        raise CsvError(f"{file} cannot be read ({err.strerror or err})") from None


def _read_rows(
    path: Path,
    file: str,
    header: list[str],
    rows: Iterator[list[str]],
    separator: str,
    targets: list[str],
    features: list[str] | None,
    cap: Cap,
) -> CsvData:
    width = len(header)
    if width == 0 or header == [""]:
        raise CsvError(f"{file} is empty; it needs a header row and at least one row of data")
    if width == 1 and targets and header[0] != targets[0]:
        raise CsvError(
            f"{file} has one column, {quote(header[0])}: its separator is not a comma, "
            "a semicolon or a tab; save it with commas",
        )
    y_cols = _columns(header, targets, "data.target", file)
    index_col: int | None = None
    if features is not None:
        x_cols = _columns(header, features, "data.features", file)
        both = sorted(set(x_cols) & set(y_cols))
        if both:
            raise CsvError(
                f"{quote(header[both[0]])} is both a feature and a target; keep it in one",
                "data.features",
            )
    else:
        x_cols = [i for i in range(width) if i not in y_cols]
        if x_cols and x_cols[0] == 0 and header[0] in INDEX_NAMES:
            index_col = 0  # pandas' row numbers, unless they turn out not to count 0, 1, 2…
            x_cols = x_cols[1:]
    if not x_cols and index_col is None:
        raise CsvError(f"{file} has no column left for the inputs besides the target", "data")
    lines = _count_lines(path)
    columns = len(x_cols) + len(y_cols) + (index_col is not None)
    need = lines * columns * 8
    if need > cap.nbytes:
        raise CsvError(
            f"{file} would take about {human(need)} in memory ({lines:,} rows × {columns} "
            f"columns), over the {human(cap.nbytes)} cap on data; {cap.how_to_raise()}"
        )
    parse = _number_parser(separator)
    x = np.empty((lines, len(x_cols)), dtype=np.float64)
    index = np.empty(lines if index_col is not None else 0, dtype=np.float64)
    words = len(y_cols) == 1
    labels: list[str] = []
    y = np.empty((0 if words else lines, len(y_cols)), dtype=np.float64)
    n = 0
    for number, row in enumerate(rows, start=2):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != width:
            hint = ""
            if width > 1 and len(row) == 1:
                hint = " (is its separator another than the header's?)"
            raise CsvError(
                f"line {number} of {file} has {len(row)} cells; every row must have {width} "
                f"cells, like the header{hint}"
            )
        if n == lines:  # cannot happen: every row ends a line
            raise CsvError(f"{file} has more rows than lines; save it again as plain CSV")
        column = -1
        try:
            for j, column in enumerate(x_cols):
                x[n, j] = parse(row[column])
            if index_col is not None:
                column = index_col
                index[n] = parse(row[column])
            if words:
                labels.append(row[y_cols[0]].strip())
            else:
                for j, column in enumerate(y_cols):
                    y[n, j] = parse(row[column])
        except ValueError:
            raise CsvError(
                f"line {number} of {file}, column {quote(_name(header, column), 24)}: "
                f"{quote(row[column])} is not a number"
            ) from None
        n += 1
    if n == 0:
        raise CsvError(f"{file} needs a header row and at least one row of data")
    x = x[:n] if n > 0.9 * lines else x[:n].copy()  # blank lines: keep no buffer around
    if index_col is not None and not np.array_equal(index[:n], np.arange(n)):
        x = np.concatenate([index[:n, None], x], axis=1)  # a real feature after all
        x_cols = [index_col, *x_cols]
    class_names: tuple[str, ...] | None = None
    if words:
        y, class_names = _label_column(labels, file, _name(header, y_cols[0]), parse)
    else:
        y = y[:n]
    return CsvData(x, y, class_names, tuple(visible(_name(header, c)) for c in x_cols))


def _label_column(
    labels: list[str], file: str, column: str, parse: Callable[[str], float]
) -> tuple[F64, tuple[str, ...] | None]:
    """Numbers as they are; words as class ids in sorted order, with their names."""
    numeric = [_is_number(cell, parse) for cell in labels]
    if all(numeric):
        return np.array([parse(cell) for cell in labels], dtype=np.float64)[:, None], None
    if any(numeric):
        odd = numeric.index(not (numeric.count(True) > len(numeric) // 2))
        raise CsvError(
            f"the column {quote(column, 24)} of {file} mixes numbers and words "
            f"({quote(labels[odd])} on data row {odd + 1}); use one kind of label",
            "data.target",
        )
    if not all(labels):
        empty = labels.index("")
        raise CsvError(
            f"the column {quote(column, 24)} of {file} is empty on data row {empty + 1}; "
            "give every row a label",
            "data.target",
        )
    names = sorted(set(labels))
    ids = {name: i for i, name in enumerate(names)}
    y = np.fromiter((ids[cell] for cell in labels), dtype=np.float64, count=len(labels))
    return y, tuple(visible(name) for name in names)
