"""The CLI's one output layer: how a listing or a message reaches a person or a script.

Modelled on pypa/hatch's ``Terminal``: every command hands its rows and lines
here and never decides the layout itself, so the rules hold everywhere.

* On a terminal, tables are Rich tables whose long values *fold* onto the next
  line (a URL or a run id is never cut to ``http://127.0…``).
* When stdout is not a terminal (a pipe, a file, ``$(...)``), a table is plain
  text with every value whole: aligned columns by default, or tab-separated
  with ``AME_TABLE=tsv`` (for ``cut -f``). No colour, no box, no wrapping.
* Messages are printed whole; the consoles of ``ame.cli.common`` never wrap
  them mid-word when piped.
* ``--json`` (``ame.cli.common.print_json``) is the stable form for programs.

Rich is imported only when a table is drawn on a terminal: piped output is
plain string work, and ``ame --help`` never pays for it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Optional, Union

import typer

TABLE_ENV = "AME_TABLE"
# Columns at most this wide are never folded on a terminal.
_SHORT = 10


@dataclass(frozen=True)
class Styled:
    """A cell value with a Rich style for the terminal (``"green"``, ``"bold red"``).

    The style only colours: piped output shows ``text`` alone.
    """

    text: str
    style: str = ""

    def __str__(self) -> str:
        return self.text


Cell = Union[str, Styled, None]


def is_terminal(err: bool = False) -> bool:
    """True when stdout (stderr with ``err``) is a terminal a person reads."""
    stream = sys.stderr if err else sys.stdout
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def _text(cell: Cell) -> str:
    """A cell as one line of plain text (tabs and newlines would break the columns)."""
    if cell is None:
        return ""
    text = str(cell)
    return text.replace("\t", " ").replace("\r\n", " ").replace("\n", " ")


def plain_table(
    columns: Sequence[str], rows: Iterable[Sequence[Cell]], *, tsv: bool = False
) -> str:
    """The rows as plain text, every value whole: aligned columns, or tab-separated.

    Aligned columns are padded with spaces and separated by two, trailing
    spaces removed, so ``awk '{print $4}'`` works on values without spaces and
    ``grep`` always finds the full value.
    """
    lines = [[_text(c) for c in columns]] + [[_text(c) for c in row] for row in rows]
    if tsv:
        return "\n".join("\t".join(line) for line in lines)
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    return "\n".join(
        "  ".join(value.ljust(widths[i]) for i, value in enumerate(line)).rstrip() for line in lines
    )


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    title: Optional[str] = None,
    styles: Optional[Mapping[str, str]] = None,
    err: bool = False,
) -> None:
    """Print a table: Rich with folding values on a terminal, plain full values otherwise.

    ``styles`` colours whole columns on a terminal (``{"name": "cyan"}``); a
    ``Styled`` cell colours one value. ``title`` is shown on a terminal only:
    piped output is the header line and the rows, nothing else to skip.
    """
    rows = [list(row) for row in rows]
    if not is_terminal(err):
        tsv = os.environ.get(TABLE_ENV, "").strip().lower() == "tsv"
        typer.echo(plain_table(columns, rows, tsv=tsv), err=err)
        return
    from rich.table import Table
    from rich.text import Text

    from ame.cli import common

    rich_table = Table(title=title, show_edge=False, header_style="bold")
    # On a terminal a column empty in every row only takes width from the
    # others (piped output keeps it, so column positions never move).
    shown = [
        i for i in range(len(columns)) if any(_text(row[i]) for row in rows if i < len(row))
    ] or list(range(len(columns)))
    for index in shown:
        column = columns[index]
        longest = max([len(_text(row[index])) for row in rows if index < len(row)] or [0])
        rich_table.add_column(
            column,
            # fold: a value longer than its column continues on the next line,
            # whole, instead of ending in an ellipsis.
            overflow="fold",
            # Short columns (a version, a status) stay on one line, so the
            # long ones are the ones that fold.
            no_wrap=max(longest, len(column)) <= _SHORT,
            style=(styles or {}).get(column),
        )
    for row in rows:
        cells = [row[i] if i < len(row) else None for i in shown]
        rich_table.add_row(
            *(
                Text(_text(cell), style=cell.style if isinstance(cell, Styled) else "")
                for cell in cells
            )
        )
    (common.err_console if err else common.console).print(rich_table)


def message(text: str, *, style: Optional[str] = None, err: bool = False) -> None:
    """Print one message, whole: styled on a terminal, plain text when piped.

    ``text`` is taken literally (no Rich markup is read from it), so a value
    holding ``[brackets]`` prints as it is.
    """
    if style and is_terminal(err):
        from ame.cli import common

        (common.err_console if err else common.console).print(text, style=style, markup=False)
        return
    typer.echo(text, err=err)
