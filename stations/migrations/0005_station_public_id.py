import uuid

from django.db import migrations, models


def give_every_station_a_public_id(apps, schema_editor):
    Station = apps.get_model("stations", "Station")
    stations = list(Station.objects.filter(public_id__isnull=True).only("pk"))
    for station in stations:
        station.public_id = uuid.uuid4()
    Station.objects.bulk_update(stations, ["public_id"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("stations", "0004_sessions_billable"),
    ]

    operations = [
        # Nullable first: a default would give every existing station the same value.
        migrations.AddField(
            model_name="station",
            name="public_id",
            field=models.UUIDField(editable=False, null=True, verbose_name="public ID"),
        ),
        migrations.RunPython(give_every_station_a_public_id, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="station",
            name="public_id",
            field=models.UUIDField(
                default=uuid.uuid4, editable=False, unique=True, verbose_name="public ID"
            ),
        ),
    ]
