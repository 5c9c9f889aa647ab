"""Grid placement: panels flow left to right in rows of Grafana's 24 columns."""

from __future__ import annotations

from typing import Any

GRID_WIDTH = 24


class Grid:
    """Places panels left to right, wrapping to a new row when the next one does not fit; assigns panel ids."""

    def __init__(self) -> None:
        self._x = 0
        self._y = 0
        self._row_height = 0
        self._next_id = 1
        self.panels: list[dict[str, Any]] = []

    def add(self, panel: dict[str, Any], w: int, h: int) -> dict[str, Any]:
        if not 0 < w <= GRID_WIDTH:
            raise ValueError(f"panel width {w} outside 1..{GRID_WIDTH}")
        if self._x + w > GRID_WIDTH:
            self.newline()
        panel["id"] = self._next_id
        panel["gridPos"] = {"h": h, "w": w, "x": self._x, "y": self._y}
        self._next_id += 1
        self._x += w
        self._row_height = max(self._row_height, h)
        self.panels.append(panel)
        return panel

    def newline(self) -> None:
        self._y += self._row_height
        self._x = 0
        self._row_height = 0

    def row(self, title: str) -> dict[str, Any]:
        """A full-width (collapsed=false) row header."""
        if self._x:
            self.newline()
        panel = {"type": "row", "title": title, "collapsed": False, "panels": []}
        return self.add(panel, GRID_WIDTH, 1)
