"""`manage.py tags import FILE --cpo NAME` and `manage.py tags export --cpo NAME`.

The same CSV and the same checks as the panel's import and export
(`stations.services.id_tag_registry`): an import with any bad row saves nothing.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cpo.services import CpoError, cpo_get
from stations.services.id_tag_registry import (
    csv_lines,
    id_tags_csv_decode,
    id_tags_csv_rows,
    id_tags_import,
)


class Command(BaseCommand):
    help = "A CPO's ID tags as CSV: import a file (all rows or none), export them all."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, parser_class=CommandParser)
        load = sub.add_parser("import", help="Add or update the CPO's tags from a CSV file.")
        load.add_argument("file", help="CSV file (columns: id_tag,type,status,expiry,group,label)")
        load.add_argument("--cpo", required=True, help="CPO name (any case)")
        dump = sub.add_parser("export", help="Write the CPO's tags as CSV.")
        dump.add_argument("--cpo", required=True, help="CPO name (any case)")
        dump.add_argument("--output", "-o", help="file to write (default: standard output)")

    def handle(self, *args, **options) -> None:
        try:
            cpo = cpo_get(name=options["cpo"])
        except CpoError as exc:
            raise CommandError(exc.message)
        if options["action"] == "import":
            self._import(cpo, Path(options["file"]))
        else:
            self._export(cpo, options.get("output"))

    def _import(self, cpo, path: Path) -> None:
        try:
            text = id_tags_csv_decode(path.read_bytes())
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.")
        except ValueError as exc:
            raise CommandError(str(exc))
        preview = id_tags_import(cpo=cpo, user=None, text=text)
        if not preview.ok:
            for error in preview.file_errors:
                self.stderr.write(f"{path}: {error}")
            for row in preview.rows:
                for error in row.errors:
                    self.stderr.write(f"{path}:{row.line}: {error}")
            raise CommandError(f"{preview.error_count} errors: nothing imported.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {len(preview.rows)} ID tags into {cpo.name}: "
                f"{preview.added} added, {preview.updated} updated."
            )
        )

    def _export(self, cpo, output: str | None) -> None:
        lines = csv_lines(id_tags_csv_rows(cpo=cpo))
        if output:
            with open(output, "w", encoding="utf-8", newline="") as handle:
                handle.writelines(lines)
        else:
            for line in lines:
                self.stdout.write(line, ending="")
