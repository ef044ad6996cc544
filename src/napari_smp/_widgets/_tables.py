"""Filling read-only ``QTableWidget``s from rows of text and numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence

from qtpy.QtCore import Qt
from qtpy.QtGui import QFont
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

__all__ = ["make_table", "fill_table", "table_text", "format_cell"]


def make_table(min_height: int = 120) -> QTableWidget:
    table = QTableWidget()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    table.setMinimumHeight(min_height)
    return table


def format_cell(value: object, digits: int = 3, percent: bool = False) -> str:
    """Numbers to text: NaN becomes ``n/a``; ``percent`` shows a share in [0, 1] as ``12.5 %``."""
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{100 * value:.1f} %" if percent else f"{value:.{digits}f}"
    return str(value)


def fill_table(table: QTableWidget, header: Sequence[str], rows: Sequence[Sequence[object]],
               percent: bool = False, bold_last: bool = False,
               tooltips: dict[tuple[int, int], str] | None = None) -> None:
    """Replace the table's content; numbers right-aligned, ``bold_last`` for a mean row."""
    table.clear()
    table.setColumnCount(len(header))
    table.setRowCount(len(rows))
    table.setHorizontalHeaderLabels(list(header))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            item = QTableWidgetItem(format_cell(value, percent=percent))
            if isinstance(value, (int, float)):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if tooltips and (r, c) in tooltips:
                item.setToolTip(tooltips[(r, c)])
            if bold_last and r == len(rows) - 1:
                font = QFont()
                font.setBold(True)
                item.setFont(font)
            table.setItem(r, c, item)


def table_text(table: QTableWidget) -> list[list[str]]:
    """The table's cells as text, header first (what tests and CSV export read)."""
    header = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    body = [[table.item(r, c).text() if table.item(r, c) else "" for c in range(table.columnCount())]
            for r in range(table.rowCount())]
    return [header, *body]
