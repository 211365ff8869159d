"""The fixed-width text tables that scripts print at the end of their work (summaries, comparisons, status):
one formatter, so that column widths, alignment and the header rule are worked out in one place."""


def percent(x) -> str:
    """A fraction as a table cell: 0.753 -> '75.3'; None or NaN -> '-'."""
    return "-" if x is None or x != x else f"{100 * x:.1f}"


def format_table(header, rows, align=None, sep="  ", rule=False, min_widths=()) -> str:
    """`rows` (sequences of cells, each shown with str()) under `header`, one line each: every column as wide as
    its widest cell (at least `min_widths[i]`), left-aligned where `align` has an 'l' and right-aligned where an
    'r' (default: the first column left, the others right), cells joined by `sep`, trailing spaces dropped.
    `rule`: a line of dashes under the header, as long as the header."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    align = align or "l" + "r" * (len(header) - 1)
    widths = [max([len(row[i]) for row in cells if i < len(row)] + [min_widths[i] if i < len(min_widths) else 0])
              for i in range(len(header))]

    def line(row):
        return sep.join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)).rstrip()

    lines = [line(row) for row in cells]
    if rule:
        lines.insert(1, "-" * len(sep.join(" " * w for w in widths)))
    return "\n".join(lines)
