"""Writes for the hot paths: bulk inserts, bulk updates, a batch written as one.

`bulk_insert` COPYs rows on PostgreSQL (bulk_create elsewhere): bulk_create builds a
model instance per row and renders every value into the SQL text, in Python.
`bulk_update` sets per-row values on many rows in one statement on PostgreSQL (a join
with unnest arrays), with its fallback for SQLite (development, some tests).
`write_batch` writes a batch of items in one transaction, and item by item when the
database refuses the batch, so a bad item fails alone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from django.db import InterfaceError, OperationalError, connections, models, transaction
from django.db.models import Case, Q, Value, When

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# Errors that mean the database is away rather than refusing one item's data.
DATABASE_AWAY = (OperationalError, InterfaceError)
# SQLite's CASE is evaluated branch by branch for every row: keep each statement small.
SQLITE_CASE_CHUNK = 300


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
        # Django's cursor wrapper has no copy(); the psycopg cursor under it does. Its
        # errors are psycopg's own: wrapped, a database that went away raises Django's
        # OperationalError (DATABASE_AWAY), so callers keep the rows instead of dropping them.
        with (
            connection.wrap_database_errors,
            cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)


# PostgreSQL array types for the unnest columns, by Django field type.
_ARRAY_TYPES = {
    "AutoField": "bigint",
    "BigAutoField": "bigint",
    "BigIntegerField": "bigint",
    "IntegerField": "bigint",
    "PositiveIntegerField": "bigint",
    "PositiveSmallIntegerField": "bigint",
    "SmallIntegerField": "bigint",
    "CharField": "text",
    "TextField": "text",
    "DateTimeField": "timestamptz",
    "BooleanField": "boolean",
}


def _array_type(field: models.Field) -> str:
    target = field.target_field if field.is_relation else field
    return _ARRAY_TYPES[target.get_internal_type()]


def bulk_update(
    model: type[models.Model],
    *,
    keys: Sequence[str],
    columns: Sequence[str],
    rows: Sequence[Sequence],
    not_newer: str = "",
    also: Mapping[str, Any] | None = None,
    returning: bool = False,
    with_clause: tuple[str, Sequence] = ("", ()),
) -> set[tuple] | None:
    """Set `columns` on the rows matched by `keys`; `rows` hold the key values, then the
    column values (attnames, e.g. station_id; a None key matches NULL).

    `not_newer`: a timestamp among `columns`; a row whose stored value is later than the
    new one is left alone (a replayed older report cannot overwrite a newer one; the
    condition is in the statement, so concurrent writers cannot slip in between).
    `also`: values set on every updated row (e.g. updated_at). With `returning`, the
    key tuples of the rows updated. Runs in the caller's transaction: one statement on
    PostgreSQL; on SQLite a CASE per few hundred rows keyed by pk, else a statement per row.
    `with_clause`: PostgreSQL only, `("WITH name AS (…)", parameters)` run by the same
    statement (a data-modifying one runs whatever the UPDATE matches); elsewhere the
    caller does that work itself.
    """
    if not rows:
        return set() if returning else None
    also = dict(also or {})
    connection = connections[model.objects.db]
    if connection.vendor == "postgresql":
        return _bulk_update_pg(
            connection, model, keys, columns, rows, not_newer, also, returning, with_clause
        )
    if tuple(keys) == (model._meta.pk.attname,) and not not_newer and not returning:
        _bulk_update_by_case(model, columns, rows, also)
        return None
    updated = set()
    width = len(keys)
    for row in rows:
        match = Q()
        for name, value in zip(keys, row[:width], strict=True):
            match &= Q(**{f"{name}__isnull": True}) if value is None else Q(**{name: value})
        values = dict(zip(columns, row[width:], strict=True))
        if not_newer:
            match &= Q(**{f"{not_newer}__isnull": True}) | Q(
                **{f"{not_newer}__lte": values[not_newer]}
            )
        if model.objects.filter(match).update(**values, **also):
            updated.add(tuple(row[:width]))
    return updated if returning else None


def _bulk_update_pg(
    connection, model, keys, columns, rows, not_newer, also, returning, with_clause
):
    quote = connection.ops.quote_name
    fields = {name: model._meta.get_field(name) for name in (*keys, *columns)}
    table = quote(model._meta.db_table)
    sets = [f"{quote(fields[c].column)} = v.{quote(fields[c].column)}" for c in columns]
    sets += [f"{quote(model._meta.get_field(name).column)} = %s" for name in also]
    arrays = ", ".join(f"%s::{_array_type(fields[name])}[]" for name in (*keys, *columns))
    aliases = ", ".join(quote(fields[name].column) for name in (*keys, *columns))
    where = []
    for name in keys:
        column = quote(fields[name].column)
        # A nullable key (an OCPP 1.6 connector's EVSE) matches NULL too.
        equal = "IS NOT DISTINCT FROM" if fields[name].null else "="
        where.append(f"t.{column} {equal} v.{column}")
    if not_newer:
        column = quote(fields[not_newer].column)
        where.append(f"(t.{column} IS NULL OR t.{column} <= v.{column})")
    with_sql, with_params = with_clause
    sql = (
        f"{with_sql + ' ' if with_sql else ''}UPDATE {table} AS t SET {', '.join(sets)}"
        f" FROM unnest({arrays}) AS v({aliases})"
        f" WHERE {' AND '.join(where)}"
    )
    if returning:
        sql += " RETURNING " + ", ".join(f"t.{quote(fields[name].column)}" for name in keys)
    params = [
        *with_params,
        *also.values(),
        *(list(values) for values in zip(*rows, strict=True)),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return set(cursor.fetchall()) if returning else None


def _bulk_update_by_case(model, columns, rows, also) -> None:
    pk = model._meta.pk.attname
    for start in range(0, len(rows), SQLITE_CASE_CHUNK):
        chunk = rows[start : start + SQLITE_CASE_CHUNK]
        values = {
            column: Case(
                *(When(**{pk: row[0]}, then=Value(row[1 + i])) for row in chunk),
                output_field=model._meta.get_field(column),
            )
            for i, column in enumerate(columns)
        }
        model.objects.filter(**{f"{pk}__in": [row[0] for row in chunk]}).update(**values, **also)


def write_batch(
    write_many: Callable[[Sequence[T]], Sequence[R]], items: Sequence[T], *, name: str
) -> list[R | Exception]:
    """`write_many(items)` in one transaction; one result per item.

    When the database refuses the batch (one item's data breaks a constraint), the items
    are written again one by one, each in its own transaction, and a refused one gives
    its exception as its result. A database that is away raises (DATABASE_AWAY).
    """
    try:
        with transaction.atomic():
            results = list(write_many(items))
    except DATABASE_AWAY:
        raise
    except Exception as exc:
        if len(items) == 1:
            return [exc]
        logger.warning(
            "%s: a batch of %d was refused (%s); writing them one by one", name, len(items), exc
        )
        return [_write_one(write_many, item, name=name) for item in items]
    if len(results) != len(items):
        raise RuntimeError(f"{name}: {len(results)} results for {len(items)} items")
    return results


def _write_one(write_many: Callable[[Sequence[T]], Sequence[R]], item: T, *, name: str):
    try:
        with transaction.atomic():
            return write_many([item])[0]
    except DATABASE_AWAY:
        raise
    except Exception as exc:
        logger.exception("%s: the database refused %r", name, item)
        return exc
