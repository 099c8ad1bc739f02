"""Fill a database with charging sessions and time the Sessions page over them.

    createdb -h 127.0.0.1 -U postgres virta_bench_sessions
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/virta_bench_sessions SECRET_KEY=x \\
        .venv/bin/python bench/sessions_page.py --sessions 1000000 --stations 1000

Only a database whose name contains "bench" is touched. It is migrated, then given one
CPO with --stations stations (one connector each) and --sessions sessions spread over the
last year (1.6 and 2.x, most finished, some running, stopped by the backend or never
stopped), plus a second CPO with a tenth as many, so the page's CPO filter has work to do.
A fill is kept: run again with --no-fill to time only.

The page is requested through Django's test client (the whole view: middleware, scoping,
filters, template), each URL --repeat times after one warm-up; the median and the worst
are printed, one JSON object per URL on stdout:
- first: the first page (newest 50);
- deep: a keyset page half-way down (the cursor of the 500,000th session of 1,000,000);
- station: the first page of one station;
- running: the first page of the running sessions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "virta.settings")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("STATIC_MANIFEST", "0")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")


def fill(*, sessions: int, stations: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from cpo.models import Cpo, Membership
    from stations.models import Connector, Station

    User = get_user_model()
    cpo, _ = Cpo.objects.get_or_create(name="Bench CPO")
    other, _ = Cpo.objects.get_or_create(name="Bench Other CPO")
    user, created = User.objects.get_or_create(username="bench-admin")
    if created:
        user.set_password("bench-admin-password")
        user.save()
    Membership.objects.get_or_create(user=user, cpo=cpo, defaults={"role": "admin"})
    for owner, count, prefix in ((cpo, stations, "BS"), (other, max(1, stations // 10), "BO")):
        existing = Station.objects.filter(cpo=owner).count()
        Station.objects.bulk_create(
            [
                Station(cbid=f"{prefix}-{i:06d}", cpo=owner, name=f"Bench {i}")
                for i in range(existing, count)
            ]
        )
        Connector.objects.bulk_create(
            [
                Connector(station=s, connector_id=1)
                for s in Station.objects.filter(cpo=owner, connectors__isnull=True)
            ]
        )
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM stations_transaction")
        have = cursor.fetchone()[0]
        want = sessions + sessions // 10
        if have >= want:
            print(f"{have} sessions there already", file=sys.stderr)
            return
        # One statement per CPO: sessions spread over the last year, one per station in
        # turn; every 40th running, every 25th stopped remotely, every 97th never stopped;
        # every other one a 2.x session (the charger's string id).
        for owner, count in ((cpo, sessions), (other, sessions // 10)):
            cursor.execute(
                """
                WITH s AS (
                    SELECT st.id AS station_id, c.id AS connector_id,
                           row_number() OVER (ORDER BY st.id) - 1 AS k, count(*) OVER () AS n
                    FROM stations_station st JOIN stations_connector c ON c.station_id = st.id
                    WHERE st.cpo_id = %s
                )
                INSERT INTO stations_transaction (
                    charger_transaction_id, id_tag, id_tag_status, stop_id_tag, state,
                    start_time, stop_time, meter_start, meter_stop, energy_wh, stop_reason,
                    offline, orphan_stop, created_at, updated_at, connector_id, station_id,
                    incomplete, meter_reset, seq_no_count, superseded, suspicious_timestamp,
                    tariff_id, never_stopped, start_received_at, stop_received_at)
                SELECT
                    CASE WHEN g %% 2 = 0 THEN 'b-' || %s || '-' || g ELSE '' END,
                    'TAG-' || (g %% 5000), 'Accepted', '',
                    CASE WHEN g %% 40 = 0 THEN 'active' ELSE 'ended' END,
                    t, CASE WHEN g %% 40 = 0 THEN NULL ELSE t + interval '45 minutes' END,
                    1000 * g, 1000 * g + 11000, CASE WHEN g %% 40 = 0 THEN NULL ELSE 11000 END,
                    CASE WHEN g %% 40 = 0 THEN '' WHEN g %% 25 = 0 THEN 'Remote'
                         ELSE 'EVDisconnected' END,
                    false, false, t, t, s.connector_id, s.station_id,
                    g %% 97 = 0, false, 0, false, false, '', g %% 97 = 0 AND g %% 40 <> 0,
                    t, CASE WHEN g %% 40 = 0 THEN NULL ELSE t + interval '45 minutes' END
                FROM generate_series(1, %s) AS g
                CROSS JOIN LATERAL (
                    SELECT now() - (g::float / %s) * interval '365 days' AS t
                ) times
                JOIN s ON s.k = g %% s.n
                """,
                [owner.pk, owner.pk, count, count],
            )
        cursor.execute("ANALYZE")
    print(f"filled in {time.perf_counter() - start:.0f} s", file=sys.stderr)


def time_pages(*, repeat: int) -> list[dict]:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    from stations.models import Station
    from stations.services.session_list import cursor_encode, sessions_for

    # Templates rendered and their context recorded, as in tests (to check each page).
    setup_test_environment()
    user = get_user_model().objects.get(username="bench-admin")
    client = Client()
    client.force_login(user)
    url = reverse("stations:sessions")
    total = sessions_for(user=user).count()
    middle = sessions_for(user=user)[total // 2 : total // 2 + 1].get()
    station = Station.objects.filter(cpo__name="Bench CPO").order_by("pk").first()
    cases = {
        "first": {},
        "deep": {"after": cursor_encode(middle)},
        "station": {"station": station.pk},
        "running": {"state": "running"},
    }
    results = []
    for name, params in cases.items():
        response = client.get(url, params)
        assert response.status_code == 200, (name, response.status_code)
        assert len(response.context["sessions"]) == 50, name
        times, cpu = [], []
        for _ in range(repeat):
            began, began_cpu = time.perf_counter(), time.process_time()
            client.get(url, params)
            times.append((time.perf_counter() - began) * 1000)
            cpu.append((time.process_time() - began_cpu) * 1000)
        results.append(
            {
                "page": name,
                "sessions_in_scope": total,
                "median_ms": round(statistics.median(times), 1),
                "min_ms": round(min(times), 1),
                "max_ms": round(max(times), 1),
                # This process's own CPU (the view and template, not PostgreSQL): what
                # the page costs when other processes do not compete for the cores.
                "median_cpu_ms": round(statistics.median(cpu), 1),
                "sql_ms": _sql_ms(user, params, station),
                "runs": repeat,
            }
        )
    return results


def _sql_ms(user, params: dict, station) -> float:
    """PostgreSQL's own execution time of the page's main query (EXPLAIN ANALYZE)."""
    from stations.services.session_list import SessionFilters, sessions_after, sessions_for

    filters = SessionFilters(
        cpo_id=station.cpo_id,
        station_id=params.get("station"),
        state=params.get("state", ""),
    )
    query = sessions_after(sessions_for(user=user, filters=filters), params.get("after", ""))
    plan = query[:51].explain(analyze=True)
    return float(plan.rsplit("Execution Time: ", 1)[1].split(" ms")[0])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sessions", type=int, default=1_000_000)
    p.add_argument("--stations", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=9)
    p.add_argument("--no-fill", action="store_true")
    args = p.parse_args(argv)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if "bench" not in connection.settings_dict["NAME"]:
        print("Refusing: the database name must contain 'bench'.", file=sys.stderr)
        return 2
    call_command("migrate", verbosity=0)
    if not args.no_fill:
        fill(sessions=args.sessions, stations=args.stations)
    for result in time_pages(repeat=args.repeat):
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
