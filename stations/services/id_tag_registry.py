"""A CPO's ID tags: added, edited, blocked, deleted, imported from and exported to CSV.

One set of rules for the panel, the CLI (`manage.py tags`) and Django admin's users:
`id_tag_values_check` says what is wrong with a tag's values, and every write goes
through it. Writes need an admin or a technician of the CPO (`id_tags_check_write`).

CSV (UTF-8, a BOM tolerated, comma or semicolon separated, a header row first; the
export writes exactly these columns, so an export imports again):

    id_tag, type, status, expiry, group, label

- `id_tag`: required, printable ASCII, at most 36 characters (1.6 chargers take 20);
  a tag already in the CPO (whatever its case) is updated (keeping its spelling), any
  other is added. Columns left out of the header keep their values on updated tags.
- `type`: a 2.x idToken type (ISO14443, ISO15693, eMAID, Central, KeyCode, Local,
  MacAddress, NoAuthorization) or empty for any type.
- `status`: Accepted (the default when empty) or Blocked.
- `expiry`: ISO 8601 (`2027-01-31T23:59:59+02:00`; without an offset: UTC), or a date
  (the tag expires at the start of that day, UTC); empty: never.
- `group`: the group (parent) id, at most 20 characters. `label`: free text, 100.

An import is all or nothing: `id_tags_import_preview` checks every row and lists each
row's errors; `id_tags_import` saves only a file without any.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from cpo.audit import Action, audit_record
from cpo.models import WRITE_ROLES, Cpo, Membership
from stations.models import IdTag

CSV_COLUMNS = ("id_tag", "type", "status", "expiry", "group", "label")
# A file bigger than this is refused whole (the panel keeps it in a form field).
IMPORT_MAX_BYTES = 5 * 1024 * 1024
IMPORT_MAX_ROWS = 50_000
TAG_MAX, GROUP_MAX, LABEL_MAX = 36, 20, 100
TAG_WRITE_DENIED = "Only admins and technicians of the CPO may change its ID tags."
TOKEN_TYPES = {value.lower(): value for value in IdTag.TokenType.values}
STATUSES = {value.lower(): value for value in IdTag.Status.values}
# The status filter of the list: what staff see (Expired is derived from the expiry).
LIST_STATUSES = ("accepted", "blocked", "expired")


class IdTagError(Exception):
    """Invalid tag values; `errors` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


# ---- who may ------------------------------------------------------------------------


def id_tags_may_write(*, user, cpo: Cpo) -> bool:
    """Admins and technicians of the CPO, and superusers, change its tags."""
    return Cpo.objects.for_user(user, roles=WRITE_ROLES).filter(pk=cpo.pk).exists()


def id_tags_check_write(*, user, cpo: Cpo) -> None:
    if not id_tags_may_write(user=user, cpo=cpo):
        raise PermissionDenied(TAG_WRITE_DENIED)


def cpo_may_configure(*, user, cpo: Cpo) -> bool:
    """CPO settings (one session per tag) are its admins' (and superusers')."""
    return Cpo.objects.for_user(user, roles=[Membership.Role.ADMIN]).filter(pk=cpo.pk).exists()


# ---- reading ------------------------------------------------------------------------


def id_tag_list(*, cpo: Cpo, query: str = "", status: str = "") -> QuerySet[IdTag]:
    """The CPO's tags by value, filtered by a search (value, label, group) and a status
    (accepted / blocked / expired, as LIST_STATUSES)."""
    tags = IdTag.objects.filter(cpo=cpo)
    if query:
        tags = tags.filter(
            Q(tag__icontains=query) | Q(label__icontains=query) | Q(parent_id_tag__icontains=query)
        )
    now = timezone.now()
    unexpired = Q(expiry_date__isnull=True) | Q(expiry_date__gt=now)
    if status == "accepted":
        tags = tags.filter(unexpired, status=IdTag.Status.ACCEPTED)
    elif status == "blocked":
        tags = tags.filter(status=IdTag.Status.BLOCKED)
    elif status == "expired":
        tags = tags.filter(status=IdTag.Status.ACCEPTED, expiry_date__lte=now)
    return tags.order_by(Lower("tag"), "pk")


# ---- single tags --------------------------------------------------------------------


def id_tag_values_check(
    *, cpo: Cpo | None, values: dict, existing: IdTag | None = None
) -> dict[str, list[str]]:
    """What is wrong with a tag's values (field → messages); empty when nothing.

    `values`: tag, token_type, status, expiry_date, parent_id_tag, label (clean types).
    With `cpo`, a tag the CPO already has (other than `existing`) is an error too.
    """
    errors: dict[str, list[str]] = {}
    tag = values.get("tag", "")
    if not tag:
        errors.setdefault("tag", []).append("Enter the ID tag.")
    elif len(tag) > TAG_MAX:
        errors.setdefault("tag", []).append(f"At most {TAG_MAX} characters.")
    elif not (tag.isascii() and tag.isprintable()) or tag != tag.strip():
        errors.setdefault("tag", []).append(
            "Only printable ASCII characters, no spaces around (OCPP id tags)."
        )
    elif cpo is not None:
        clash = IdTag.objects.filter(cpo=cpo).by_tag(tag)
        if existing is not None:
            clash = clash.exclude(pk=existing.pk)
        if clash.exists():
            errors.setdefault("tag", []).append(
                "The CPO already has this ID tag (tags are the same whatever their case)."
            )
    if values.get("token_type", "") not in ("", *IdTag.TokenType.values):
        errors.setdefault("token_type", []).append("Not an OCPP idToken type.")
    if values.get("status", IdTag.Status.ACCEPTED) not in IdTag.Status.values:
        errors.setdefault("status", []).append("Accepted or Blocked.")
    parent = values.get("parent_id_tag", "")
    if len(parent) > GROUP_MAX:
        errors.setdefault("parent_id_tag", []).append(f"At most {GROUP_MAX} characters.")
    elif parent and not (parent.isascii() and parent.isprintable()):
        errors.setdefault("parent_id_tag", []).append("Only printable ASCII characters.")
    if len(values.get("label", "")) > LABEL_MAX:
        errors.setdefault("label", []).append(f"At most {LABEL_MAX} characters.")
    return errors


def id_tag_save(*, cpo: Cpo, user, values: dict, tag: IdTag | None = None) -> IdTag:
    """Add a tag to the CPO (`tag` None) or change one of its tags. IdTagError when the
    values are wrong; PermissionDenied for a viewer."""
    id_tags_check_write(user=user, cpo=cpo)
    if tag is not None and tag.cpo_id != cpo.pk:
        raise PermissionDenied(TAG_WRITE_DENIED)
    errors = id_tag_values_check(cpo=cpo, values=values, existing=tag)
    if errors:
        raise IdTagError(errors)
    created = tag is None
    tag = tag or IdTag(cpo=cpo)
    for name in ("tag", "token_type", "status", "expiry_date", "parent_id_tag", "label"):
        if name in values:
            setattr(tag, name, values[name])
    with transaction.atomic():
        tag.save()
        audit_record(
            action=Action.ID_TAGS_CHANGED,
            user=user,
            cpo=cpo,
            target=tag.tag,
            details={"change": "added" if created else "edited", "status": tag.status},
        )
    return tag


def id_tag_set_status(*, tag: IdTag, user, status: str) -> IdTag:
    """Block (status Blocked) or unblock (Accepted) a tag."""
    if status not in IdTag.Status.values:
        raise ValueError(f"unknown status {status!r}")
    id_tags_check_write(user=user, cpo=tag.cpo)
    with transaction.atomic():
        tag.status = status
        tag.save(update_fields=["status"])
        audit_record(
            action=Action.ID_TAGS_CHANGED,
            user=user,
            cpo=tag.cpo_id,
            target=tag.tag,
            details={"change": "blocked" if status == IdTag.Status.BLOCKED else "unblocked"},
        )
    return tag


def id_tag_delete(*, tag: IdTag, user) -> None:
    """Delete a tag: it is Invalid from then on (past sessions keep its value)."""
    id_tags_check_write(user=user, cpo=tag.cpo)
    with transaction.atomic():
        audit_record(
            action=Action.ID_TAGS_CHANGED,
            user=user,
            cpo=tag.cpo_id,
            target=tag.tag,
            details={"change": "deleted"},
        )
        tag.delete()


def cpo_one_session_per_tag_set(*, cpo: Cpo, user, value: bool) -> Cpo:
    """Whether a tag in a running session is refused elsewhere (ConcurrentTx): admins."""
    if not cpo_may_configure(user=user, cpo=cpo):
        raise PermissionDenied("Only admins of the CPO change its settings.")
    with transaction.atomic():
        cpo.one_session_per_tag = value
        cpo.save(update_fields=["one_session_per_tag"])
        audit_record(
            action=Action.CPO_SETTINGS_CHANGED,
            user=user,
            cpo=cpo,
            target=cpo.name,
            details={"one_session_per_tag": value},
        )
    return cpo


# ---- CSV ----------------------------------------------------------------------------


@dataclass
class ImportRow:
    """One data row of an import: its line in the file, values, and what would happen."""

    line: int
    tag: str
    values: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    # "add" or "update"; "" for a row with errors.
    action: str = ""


@dataclass
class ImportPreview:
    rows: list[ImportRow]
    # Errors of the file as a whole (encoding, header, size).
    file_errors: list[str] = field(default_factory=list)

    @property
    def error_count(self) -> int:
        return len(self.file_errors) + sum(1 for row in self.rows if row.errors)

    @property
    def ok(self) -> bool:
        return self.error_count == 0 and bool(self.rows)

    @property
    def added(self) -> int:
        return sum(1 for row in self.rows if row.action == "add")

    @property
    def updated(self) -> int:
        return sum(1 for row in self.rows if row.action == "update")


def id_tags_csv_decode(data: bytes) -> str:
    """The file's text (UTF-8, BOM tolerated); ValueError for anything else."""
    if len(data) > IMPORT_MAX_BYTES:
        raise ValueError(f"The file is larger than {IMPORT_MAX_BYTES // (1024 * 1024)} MB.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"The file is not UTF-8 text (byte {exc.start}).") from exc


def id_tags_import_preview(*, cpo: Cpo, text: str) -> ImportPreview:
    """Check every row of a CSV (the module docstring) against the CPO's tags; saves nothing."""
    if len(text.encode()) > IMPORT_MAX_BYTES:
        return ImportPreview(rows=[], file_errors=["The file is too large."])
    # Blank lines before the header mean nothing (a form field may add one).
    text = text.lstrip("\r\n")
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        return ImportPreview(rows=[], file_errors=["The file is empty: it needs a header row."])
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [name.strip().lower() for name in next(reader)]
    unknown = [name for name in header if name not in CSV_COLUMNS]
    file_errors = []
    if "id_tag" not in header:
        file_errors.append("The header has no id_tag column.")
    if unknown:
        file_errors.append(
            f"Unknown columns: {', '.join(unknown)} (known: {', '.join(CSV_COLUMNS)})."
        )
    if len(set(header)) != len(header):
        file_errors.append("A column appears twice in the header.")
    if file_errors:
        return ImportPreview(rows=[], file_errors=file_errors)
    rows: list[ImportRow] = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        if len(rows) >= IMPORT_MAX_ROWS:
            return ImportPreview(
                rows=[], file_errors=[f"More than {IMPORT_MAX_ROWS} rows: split the file."]
            )
        rows.append(_row_parse(reader.line_num, header, cells))
    if not rows:
        return ImportPreview(rows=[], file_errors=["The file has no tags, only a header."])
    _rows_check(cpo, rows)
    return ImportPreview(rows=rows)


def id_tags_import(*, cpo: Cpo, user, text: str) -> ImportPreview:
    """Import a CSV into the CPO: every row saved, or (any error) none. Returns the
    preview it acted on; nothing was saved unless `preview.ok`. `user` None: the system
    (`manage.py tags import`, run by whoever may run it)."""
    if user is not None:
        id_tags_check_write(user=user, cpo=cpo)
    with transaction.atomic():
        # Two imports of one CPO at once would both see a tag missing and both add it.
        Cpo.objects.select_for_update().filter(pk=cpo.pk).first()
        preview = id_tags_import_preview(cpo=cpo, text=text)
        if not preview.ok:
            return preview
        existing = {
            tag.tag.lower(): tag
            for tag in IdTag.objects.filter(cpo=cpo)
            .alias(tag_lower=Lower("tag"))
            .filter(tag_lower__in=[row.tag.lower() for row in preview.rows])
        }
        new, changed = [], []
        for row in preview.rows:
            tag = existing.get(row.tag.lower())
            if tag is None:
                new.append(IdTag(cpo=cpo, **row.values))
            else:
                for name, value in row.values.items():
                    # The stored spelling stays: the file's differs only in case.
                    if name != "tag":
                        setattr(tag, name, value)
                changed.append(tag)
        IdTag.objects.bulk_create(new, batch_size=1000)
        IdTag.objects.bulk_update(
            changed,
            ["token_type", "status", "expiry_date", "parent_id_tag", "label"],
            batch_size=1000,
        )
        audit_record(
            action=Action.ID_TAGS_CHANGED,
            user=user,
            cpo=cpo,
            target=f"{len(preview.rows)} tags",
            details={"change": "imported", "added": len(new), "updated": len(changed)},
        )
    return preview


def id_tags_csv_rows(*, cpo: Cpo) -> Iterator[list[str]]:
    """The CPO's tags as CSV rows, header first (streamed: `iterator()`)."""
    yield list(CSV_COLUMNS)
    tags = IdTag.objects.filter(cpo=cpo).order_by(Lower("tag"), "pk")
    for tag in tags.iterator(chunk_size=2000):
        yield [
            tag.tag,
            tag.token_type,
            tag.status,
            tag.expiry_date.astimezone(UTC).isoformat() if tag.expiry_date else "",
            tag.parent_id_tag,
            tag.label,
        ]


def csv_lines(rows: Iterable[list[str]]) -> Iterator[str]:
    """Each row as one CSV line (for a streamed response or a file)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _row_parse(line: int, header: list[str], cells: list[str]) -> ImportRow:
    raw = {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(header)}
    row = ImportRow(line=line, tag=raw.get("id_tag", ""))
    if len(cells) > len(header):
        row.errors.append(f"{len(cells)} cells for {len(header)} columns.")
    values: dict = {"tag": row.tag}
    if "type" in raw:
        token_type = TOKEN_TYPES.get(raw["type"].lower()) if raw["type"] else ""
        if token_type is None:
            row.errors.append(f"type: {raw['type']!r} is not an OCPP idToken type.")
        values["token_type"] = token_type or ""
    if "status" in raw:
        status = STATUSES.get(raw["status"].lower()) if raw["status"] else IdTag.Status.ACCEPTED
        if status is None:
            row.errors.append(f"status: {raw['status']!r} is neither Accepted nor Blocked.")
        values["status"] = status or IdTag.Status.ACCEPTED
    if "expiry" in raw:
        try:
            values["expiry_date"] = _expiry_parse(raw["expiry"])
        except ValueError as exc:
            row.errors.append(f"expiry: {exc}")
    if "group" in raw:
        values["parent_id_tag"] = raw["group"]
    if "label" in raw:
        values["label"] = raw["label"]
    row.values = values
    return row


def _expiry_parse(text: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = parse_datetime(text)
    except ValueError:
        moment = None
    if moment is None:
        try:
            day = parse_date(text)
        except ValueError:
            day = None
        if day is None:
            raise ValueError(f"{text!r} is not an ISO 8601 date or date-time.")
        moment = datetime.combine(day, time.min)
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment


def _rows_check(cpo: Cpo, rows: list[ImportRow]) -> None:
    """Per-row rules (the same as a single tag's) and duplicates within the file."""
    existing = {
        value.lower()
        for value in IdTag.objects.filter(cpo=cpo)
        .alias(tag_lower=Lower("tag"))
        .filter(tag_lower__in=[row.tag.lower() for row in rows])
        .values_list("tag", flat=True)
    }
    seen: dict[str, int] = {}
    for row in rows:
        # A tag the CPO already has is an update here, not a clash.
        errors = id_tag_values_check(cpo=None, values=row.values)
        for name, messages in errors.items():
            column = {"tag": "id_tag", "token_type": "type", "parent_id_tag": "group"}.get(
                name, name
            )
            if name in ("token_type", "status") and row.errors:
                continue  # already said, with the value as written
            row.errors.extend(f"{column}: {message}" for message in messages)
        key = row.tag.lower()
        if key and key in seen:
            row.errors.append(f"id_tag: {row.tag!r} is already on line {seen[key]}.")
        seen.setdefault(key, row.line)
        if not row.errors:
            row.action = "update" if key in existing else "add"
