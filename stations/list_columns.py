"""Columns that apps above `stations` add to the Station List (an extension point).

An app registers a column in its `AppConfig.ready()`:

    @station_list_column(_("Uptime this month"))
    def uptime(stations: Sequence[Station]) -> dict[int, str]: ...

The function gets the page's stations and returns their cell texts by station id, in a
fixed number of queries whatever the page size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stations.models import Station

CellsFor = Callable[[Sequence[Station]], dict[int, str]]


@dataclass(frozen=True)
class ListColumn:
    title: str
    cells: CellsFor


_columns: dict[str, ListColumn] = {}


def station_list_column(title: str) -> Callable[[CellsFor], CellsFor]:
    def register(cells: CellsFor) -> CellsFor:
        _columns[f"{cells.__module__}.{cells.__qualname__}"] = ListColumn(str(title), cells)
        return cells

    return register


def station_list_extra_columns(stations: Sequence[Station]) -> list[str]:
    """The registered columns' titles; each station gets `extra_cells`: (title, text) pairs."""
    columns = list(_columns.values())
    if not columns:
        return []
    stations = list(stations)
    cells = [(column.title, column.cells(stations)) for column in columns]
    for station in stations:
        station.extra_cells = [(title, by_id.get(station.pk, "")) for title, by_id in cells]
    return [column.title for column in columns]
