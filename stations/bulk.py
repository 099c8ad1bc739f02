"""Bulk inserts for the gateway's hot paths: COPY on PostgreSQL, bulk_create elsewhere.

bulk_create builds a model instance per row and renders every value into the SQL text,
in Python: at 800 frames a second that was a quarter of a daphne process's busy time for
the message log alone. COPY streams the values as they are.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from django.db import connections, models


def bulk_insert(
    model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence]
) -> None:
    """Insert `rows`, each a sequence of values for `columns` (attnames, e.g. station_id).

    Values are stored as given: callers clip strings to their columns, and JSON columns
    take JSON text (None for SQL NULL). Runs in the caller's transaction. COPY applies
    no Django default to columns not named: name every column that has one.
    """
    connection = connections[model.objects.db]
    fields = [model._meta.get_field(column) for column in columns]
    json_at = [i for i, field in enumerate(fields) if isinstance(field, models.JSONField)]
    if connection.vendor != "postgresql":
        instances = []
        for row in rows:
            values = dict(zip(columns, row, strict=True))
            for i in json_at:
                text = values[columns[i]]
                values[columns[i]] = None if text is None else json.loads(text)
            instances.append(model(**values))
        model.objects.bulk_create(instances, batch_size=500)
        return
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    with connection.cursor() as cursor:
        # Django's cursor wrapper has no copy(); the psycopg cursor under it does.
        with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
