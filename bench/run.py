"""The benchmark runner: start the stack, run the scenarios, compare with the baseline.

    .venv/bin/python bench/run.py --scenario boot --chargers 300 --duration 20
    .venv/bin/python bench/run.py --scenario all --chargers 10000 --daphne 2
    .venv/bin/python bench/run.py --smoke          # CI: 100 chargers, a few seconds

For each scenario the runner starts N daphne processes (behind HAProxy when N > 1),
runs bench/loadgen.py against them, samples CPU and RSS of every server process from
/proc, checks the database, stops the stack, then does the same against the bare
baseline (bench/baseline.py) and prints both with their ratio. One JSON line per
scenario and target is appended to --results. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent  # the venv's bin (not resolved: that would leave the venv)
HOST = "127.0.0.1"
# Targets that are this project's daphne (with metrics, and without for --metrics-cost).
CSMS_TARGETS = ("csms", "csms-no-metrics")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
# File descriptors HAProxy may use per process here (the sandbox's hard limit is 20,000);
# each proxied connection costs two.
HAPROXY_FD_BUDGET = int(os.environ.get("BENCH_HAPROXY_FD_BUDGET", "19000"))
SCENARIOS = ["boot", "steady", "peak", "fanout", "sessions"]
# py-spy frames of the project's own code, e.g. "station_boot (stations/services/boot.py)".
PROJECT_FRAME = re.compile(r"\((?:stations|ocpp_gateway|cpo|virta)/")
# Concurrent "web requests" that ask for the fan-out's commands.
FANOUT_REQUEST_THREADS = 8
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/virta_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/6"


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process {process.args[0]} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {HOST}:{port} after {timeout} s")


# ---- /proc sampling (psutil is not installed) ---------------------------------------


def proc_cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the ")" of comm: state is fields[0]; utime and stime are fields 14 and 15 of stat.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def proc_rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_KIB
    except OSError:
        return None


def pids_named(name: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == name:
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Sample:
    at: float
    cpu: dict[int, float]
    rss: dict[int, int]
    machine: tuple[float, float]


@dataclass
class Sampler:
    """Samples CPU time and RSS of groups of processes every `interval` seconds.

    Groups in `by_name` (group → process name) are looked up again at every sample:
    PostgreSQL starts a backend per new connection while the load runs.
    """

    groups: dict[str, list[int]]
    by_name: dict[str, str] = field(default_factory=dict)
    interval: float = 1.0
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _take(self) -> Sample:
        for group, name in self.by_name.items():
            known = self.groups.setdefault(group, [])
            known.extend(pid for pid in pids_named(name) if pid not in known)
        pids = {pid for pids in self.groups.values() for pid in pids}
        cpu = {pid: c for pid in pids if (c := proc_cpu_seconds(pid)) is not None}
        rss = {pid: r for pid in pids if (r := proc_rss_kib(pid)) is not None}
        return Sample(time.time(), cpu, rss, machine_cpu())

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self._take())
            self._stop.wait(self.interval)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(self._take())

    def rss_kib(self, group: str, sample: Sample) -> int:
        return sum(sample.rss.get(pid, 0) for pid in self.groups.get(group, []))

    def summary(self, *, since: float = 0.0) -> dict:
        # From the last sample before `since`, so that a short burst is not missed.
        before = [s for s in self.samples if s.at < since][-1:]
        samples = before + [s for s in self.samples if s.at >= since] or self.samples[-1:]
        first, last = samples[0], samples[-1]
        wall = max(last.at - first.at, 1e-6)
        out: dict = {}
        for group, pids in self.groups.items():
            cpu = 0.0
            for pid in pids:
                seen = [s.cpu[pid] for s in samples if pid in s.cpu]
                if seen:
                    # A process that started during the window counts from zero.
                    cpu += seen[-1] - (seen[0] if pid in first.cpu else 0.0)
            peak = 0.0
            for a, b in zip(samples, samples[1:], strict=False):
                window = sum(b.cpu[p] - a.cpu[p] for p in pids if p in a.cpu and p in b.cpu)
                peak = max(peak, window / max(b.at - a.at, 1e-6))
            rss = [self.rss_kib(group, s) for s in samples]
            out[group] = {
                "processes": len([p for p in pids if p in last.rss]),
                "cpu_pct_avg": round(100 * cpu / wall, 1),
                "cpu_pct_max": round(100 * peak, 1),
                "rss_mib_end": round(rss[-1] / 1024, 1),
                "rss_mib_max": round(max(rss) / 1024, 1),
                "rss_mib_per_process": [
                    round(last.rss.get(p, 0) / 1024, 1) for p in pids if p in last.rss
                ],
            }
        busy = last.machine[0] - first.machine[0]
        total = max(last.machine[1] - first.machine[1], 1)
        out["machine_cpu_busy_pct"] = round(100 * busy / total, 1)
        return out


# ---- the stack ----------------------------------------------------------------------


class Stack:
    """Processes started for one scenario, stopped in reverse order (by their own pid)."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.url = ""
        self.groups: dict[str, list[int]] = {}
        self.note = ""

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        logfile = open(self.workdir / f"{name}.log", "ab")  # the child keeps its own copy
        process = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=logfile, stderr=subprocess.STDOUT, close_fds=True
        )
        logfile.close()
        self.processes.append((name, process))
        return process

    def stop(self) -> None:
        for _name, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.time() + 15
        for _name, process in reversed(self.processes):
            try:
                process.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


def server_env(args: argparse.Namespace, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "virta.settings",
            "DATABASE_URL": args.database_url,
            "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-only-secret",
            "DEBUG": "0",
            "SECURE_SSL_REDIRECT": "0",
            "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
            "OCPP_LOG_FLUSH_INTERVAL": str(args.flush_interval),
            "LOG_LEVEL": "WARNING",
            # The whole simulated fleet comes from 127.0.0.1: the per-address limit on new
            # pool stations (100 an hour by default) would refuse all but the first hundred.
            # OCPP_POOL_MAX_SIZE keeps its default (10,000): the database is emptied first.
            "OCPP_POOL_NEW_PER_ADDRESS_PER_HOUR": "0",
        }
    )
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    else:
        env.pop("REDIS_URL", None)
    if args.db_pool:
        env["DATABASE_POOL_MAX_SIZE"] = str(args.db_pool)
    env.update(extra)
    return env


def start_csms(
    args: argparse.Namespace, stack: Stack, *, boot_status: str, metrics: bool = True
) -> None:
    ports = []
    pids = []
    env = server_env(args, OCPP_POOL_BOOT_STATUS=boot_status, OCPP_METRICS="1" if metrics else "0")
    if metrics:
        # Multiprocess metrics, as production runs them (one directory for the processes).
        prom = stack.workdir / "prometheus"
        prom.mkdir(exist_ok=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(prom)
    for i in range(args.daphne):
        port = free_port()
        if args.backlog:
            # Twisted listens with a backlog of 50; an endpoint string can say more.
            listen = ["-e", f"tcp:port={port}:interface={HOST}:backlog={args.backlog}"]
        else:
            listen = ["-b", HOST, "-p", str(port)]
        process = stack.spawn(
            f"daphne-{i}",
            [
                str(BIN / "daphne"),
                *listen,
                "--websocket_timeout",
                "-1",
                "--ping-interval",
                "30",
                "--ping-timeout",
                "30",
                *args.daphne_arg,
                "virta.asgi:application",
            ],
            env,
        )
        ports.append(port)
        pids.append(process.pid)
    for (name, process), port in zip(stack.processes, ports, strict=True):
        try:
            wait_listening(port, process, timeout=60)
        except RuntimeError:
            tail = (stack.workdir / f"{name}.log").read_text(errors="replace")[-3000:]
            log(f"{name} did not start; the end of its log:\n{tail}")
            raise
    stack.groups["daphne"] = pids
    if args.daphne == 1:
        stack.url = f"ws://{HOST}:{ports[0]}/ocpp"
        stack.note = "1 daphne"
        return
    if args.no_lb or not shutil.which("haproxy"):
        # Without a load balancer the load generator spreads chargers over the ports itself.
        stack.url = ",".join(f"ws://{HOST}:{p}/ocpp" for p in ports)
        stack.note = f"{args.daphne} daphne, no load balancer (chargers spread over ports)"
        if not args.no_lb:
            log("haproxy is not installed: chargers are spread across daphne ports directly")
        return
    stack.url = start_haproxy(args, stack, ports)


def start_haproxy(args: argparse.Namespace, stack: Stack, ports: list[int]) -> str:
    # One HAProxy process holds two descriptors per connection; the sandbox caps a process
    # at 20,000, so large fleets get several instances sharing the port (SO_REUSEPORT).
    instances = max(1, math.ceil(2 * args.chargers / HAPROXY_FD_BUDGET))
    maxconn = math.ceil(args.chargers / instances) + 500
    port = free_port()
    servers = "\n".join(
        f"    server daphne{i} {HOST}:{p} check maxconn {args.chargers + 100}"
        for i, p in enumerate(ports)
    )
    template = string.Template((BENCH / "haproxy.cfg").read_text())
    server_timeout = f"{max(90, int(args.open_timeout))}s"
    config = template.substitute(
        maxconn=maxconn,
        nbthread=1,
        bind=HOST,
        port=port,
        servers=servers,
        server_timeout=server_timeout,
    )
    path = stack.workdir / "haproxy.cfg"
    path.write_text(config)
    pids = []
    for i in range(instances):
        process = stack.spawn(f"haproxy-{i}", ["haproxy", "-db", "-f", str(path)], os.environ)
        pids.append(process.pid)
        wait_listening(port, process, timeout=10)
    stack.groups["haproxy"] = pids
    stack.note = f"{args.daphne} daphne behind {instances} HAProxy process(es)"
    return f"ws://{HOST}:{port}/ocpp"


def start_baseline(stack: Stack) -> None:
    port = free_port()
    process = stack.spawn(
        "baseline", [sys.executable, str(BENCH / "baseline.py"), "--port", str(port)], os.environ
    )
    wait_listening(port, process)
    stack.url = f"ws://{HOST}:{port}/ocpp"
    stack.groups["baseline"] = [process.pid]
    stack.note = "baseline: 1 process, ocpp + websockets, no database"


# ---- Django (database checks and the web side of the fan-out) -----------------------


def django_setup(args: argparse.Namespace) -> None:
    env = server_env(args)
    env.pop("DATABASE_POOL_MAX_SIZE", None)  # the runner's few queries need no pool
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def wait_service(host: str, port: int, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not listening(host, port):
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not come up on {host}:{port}")
        time.sleep(0.5)


def services_start(args: argparse.Namespace) -> None:
    """Start the local PostgreSQL and Redis when they are down (as .ci/run does), and
    create the benchmark database when it is missing. Remote services are left alone."""
    local = {"127.0.0.1", "localhost", "::1"}
    db = urlsplit(args.database_url)
    db_host, db_port = db.hostname or "127.0.0.1", db.port or 5432
    if db_host in local and not listening(db_host, db_port):
        log("PostgreSQL is down: starting it")
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=True
        )
        wait_service(db_host, db_port, "PostgreSQL")
    name = db.path.lstrip("/")
    if db_host in local and bench_database(args):
        user = ["-h", db_host, "-p", str(db_port), "-U", db.username or "postgres"]
        exists = subprocess.run(
            ["psql", *user, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
            capture_output=True,
            text=True,
        )
        if exists.stdout.strip() != "1":
            log(f"Creating the database {name}")
            subprocess.run(["createdb", *user, name], check=True)
    redis = urlsplit(args.redis_url)
    redis_host, redis_port = redis.hostname or "127.0.0.1", redis.port or 6379
    if redis_host in local and not listening(redis_host, redis_port):
        log("Redis is down: starting it")
        subprocess.run(
            ["redis-server", "--daemonize", "yes", "--bind", redis_host, "--port", str(redis_port)]
            + ["--save", "", "--appendonly", "no"],
            check=True,
        )
        wait_service(redis_host, redis_port, "Redis")


def bench_database(args: argparse.Namespace) -> bool:
    """Whether the runner may migrate and empty this database (its own, not a test's)."""
    name = urlsplit(args.database_url).path.lstrip("/")
    return "bench" in name and not name.startswith("test_")


def database_reset(args: argparse.Namespace) -> None:
    """Empty the benchmark database between scenarios (only a database named *bench*)."""
    if not bench_database(args):
        return
    from django.core.management import call_command

    call_command("flush", "--noinput", verbosity=0)


def database_check(prefix: str, *, booted: int, calls: int, timeout: float) -> dict:
    """Wait until every booted station and every logged frame is in the database.

    Every answered CALL is two message-log rows (the request in, the answer out).
    """
    from stations.models import OcppMessage, Station

    deadline = time.time() + timeout
    while True:
        messages = OcppMessage.objects.filter(cbid__startswith=prefix).count()
        stations = Station.objects.filter(cbid__startswith=prefix).count()
        boots_in = OcppMessage.objects.filter(
            cbid__startswith=prefix, direction="in", action="BootNotification"
        ).count()
        boots_out = OcppMessage.objects.filter(
            cbid__startswith=prefix, direction="out", action="BootNotification"
        ).count()
        complete = (
            stations >= booted
            and boots_in >= booted
            and boots_out >= booted
            and messages >= 2 * calls
        )
        if complete or time.time() > deadline:
            break
        time.sleep(0.5)
    return {
        "stations": stations,
        "boot_frames_in": boots_in,
        "boot_frames_out": boots_out,
        "messages": messages,
        "expected_at_least": booted,
        "messages_expected_at_least": 2 * calls,
        "complete": complete,
    }


def command_path():
    """The web side's command entry point, if the command path exists yet."""
    try:
        module = importlib.import_module("stations.services.commands")
    except ImportError as exc:
        return None, f"stations.services.commands is missing ({exc})"
    fn = getattr(module, "command_request_system", None)
    if fn is None:
        return None, "stations.services.commands.command_request_system is missing"
    return fn, ""


def fanout_csms(prefix: str, expected: int, timeout: float) -> dict:
    """Request TriggerMessage(StatusNotification) for every connected bench station."""
    from django.db import connection
    from django.db.models import Count

    from stations.models import Command, OcppMessage, Station

    request, why = command_path()
    if request is None:
        return {"runnable": False, "reason": why}
    # Every charger connected and booted (Accepted), or the wait ran out.
    ready = Station.objects.filter(
        cbid__startswith=prefix, connected=True, registration_status="Accepted"
    )
    deadline = time.time() + timeout
    while ready.count() < expected and time.time() < deadline:
        time.sleep(0.5)
    stations = list(ready)
    started = time.perf_counter()
    since = datetime.now(UTC)

    def some(chunk: list[Station]) -> list[int | None]:
        created = []
        try:
            for station in chunk:
                command = request(
                    station=station,
                    kind="trigger_message",
                    params={"message": "StatusNotification"},
                )
                # None: the service logged why (e.g. an OCPP version without commands).
                created.append(command.pk if command is not None else None)
        finally:
            connection.close()  # each thread keeps one connection, like a web worker
        return created

    many = getattr(
        importlib.import_module("stations.services.commands"), "command_request_system_many", None
    )
    if many is not None:
        # One fleet-wide request (a bulk action): one insert, one channel-layer round.
        created = [
            command.pk
            for command in many(
                stations=stations,
                kind="trigger_message",
                params={"message": "StatusNotification"},
            )
        ]
        connection.close()
    else:
        # Several web requests at once, as a busy panel would make them.
        chunks = [stations[i::FANOUT_REQUEST_THREADS] for i in range(FANOUT_REQUEST_THREADS)]
        with ThreadPoolExecutor(max_workers=FANOUT_REQUEST_THREADS) as pool:
            created = [pk for part in pool.map(some, chunks) for pk in part]
    ids = [pk for pk in created if pk is not None]
    refused = len(created) - len(ids)
    requested_s = time.perf_counter() - started
    final = statuses = 0
    all_final_s = all_statuses_s = None
    deadline = time.time() + 30
    while time.time() < deadline:
        commands = Command.objects.filter(pk__in=ids)
        final = commands.filter(status__in=Command.FINAL_STATUSES).count()
        statuses = OcppMessage.objects.filter(
            cbid__startswith=prefix,
            direction="in",
            action="StatusNotification",
            created_at__gte=since,
        ).count()
        elapsed = time.perf_counter() - started
        if final >= len(ids) and all_final_s is None:
            all_final_s = round(elapsed, 3)
        if statuses >= len(ids) and all_statuses_s is None:
            all_statuses_s = round(elapsed, 3)
        if all_final_s is not None and all_statuses_s is not None:
            break
        time.sleep(0.2)
    by_status = dict(
        Command.objects.filter(pk__in=ids).values_list("status").annotate(n=Count("id"))
    )
    return {
        "runnable": True,
        "connected": len(stations),
        "triggered": len(ids),
        "not_created": refused,
        "requested_s": round(requested_s, 3),
        "commands_final": final,
        "command_statuses": by_status,
        "all_commands_final_s": all_final_s,
        "status_notifications_logged": statuses,
        "all_status_notifications_logged_s": all_statuses_s,
    }


def fanout_baseline(url: str) -> dict:
    from websockets.sync.client import connect

    control = url.rsplit("/ocpp", 1)[0] + "/__fanout__"
    with connect(control, subprotocols=["ocpp1.6"], open_timeout=10, close_timeout=2) as websocket:
        report = json.loads(websocket.recv(timeout=60))
    return {"runnable": True, **report}


# ---- py-spy -------------------------------------------------------------------------


def profile_start(stack: Stack, seconds: float, rate: int = 50) -> list[tuple[Path, object]]:
    pyspy = BIN / "py-spy"
    if not pyspy.exists():
        log("py-spy is not installed in the venv: no profile")
        return []
    started = []
    for pid in stack.groups.get("daphne", []):
        out = stack.workdir / f"pyspy-{pid}.txt"
        process = subprocess.Popen(
            [str(pyspy), "record", "--pid", str(pid), "--duration", str(int(seconds))]
            + ["--rate", str(rate), "--format", "raw", "--nonblocking", "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=open(stack.workdir / f"pyspy-{pid}.log", "wb"),
        )
        started.append((out, process))
    return started


def profile_collect(started: list) -> dict:
    """Top functions by own time and by inclusive time, from py-spy's collapsed stacks."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    project: dict[str, int] = {}
    total = 0
    for out, process in started:
        # The load is over: stop py-spy now (on SIGINT it writes what it has sampled).
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        if not out.exists():
            continue
        for line in out.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = [f.strip() for f in stack.split(";") if f.strip()]
            # Drop the thread name py-spy puts first.
            frames = [f for f in frames if "(" in f] or frames
            if frames:
                own[frames[-1]] = own.get(frames[-1], 0) + n
            # Inclusive time per function (any line of it), and apart for the project's own.
            for frame in {re.sub(r":\d+\)$", ")", f) for f in frames}:
                inclusive[frame] = inclusive.get(frame, 0) + n
                if PROJECT_FRAME.search(frame):
                    project[frame] = project.get(frame, 0) + n

    def top(table: dict[str, int], k: int) -> list[dict]:
        best = sorted(table.items(), key=lambda kv: -kv[1])[:k]
        return [{"pct": round(100 * n / max(total, 1), 1), "frame": f[:200]} for f, n in best]

    return {
        "samples": total,
        "own": top(own, 25),
        "inclusive": top(inclusive, 40),
        "project": top(project, 30),
    }


# ---- one scenario against one target ------------------------------------------------


def loadgen_argv(
    args: argparse.Namespace, scenario: str, url: str, prefix: str, duration: float
) -> list[str]:
    argv = [
        sys.executable,
        str(BENCH / "loadgen.py"),
        "--url",
        url,
        "--scenario",
        scenario,
        "--chargers",
        str(args.chargers),
        "--duration",
        str(duration),
        "--prefix",
        prefix,
        "--v201-share",
        str(args.v201_share),
        "--per-worker",
        str(args.per_worker),
    ]
    if args.workers:
        argv += ["--workers", str(args.workers)]
    if scenario in ("steady", "sessions"):
        argv += ["--ramp", str(args.ramp)]
    if scenario == "sessions":
        argv += ["--session-length", str(args.session_length)]
    if args.retry:
        argv += ["--retry", str(args.retry[0]), str(args.retry[1])]
    if args.open_timeout:
        argv += ["--open-timeout", str(args.open_timeout)]
    if scenario == "peak":
        argv += ["--peak-start-rate", str(args.peak_start_rate)]
        argv += ["--peak-step", str(args.peak_step), "--peak-steps", str(args.peak_steps)]
        argv += ["--p99-limit", str(args.p99_limit)]
    return argv


def run_one(args: argparse.Namespace, scenario: str, target: str, run_id: str) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{scenario}-{target}-"))
    duration = args.duration
    if target == "baseline" and args.baseline_duration:
        duration = args.baseline_duration
    stack = Stack(workdir)
    prefix = f"b{run_id}{scenario[0]}{target[0]}-"
    result: dict = {
        "run_id": run_id,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "scenario": scenario,
        "target": target,
        "chargers": args.chargers,
        "duration_s": duration,
        "v201_share": args.v201_share,
    }
    try:
        if target in CSMS_TARGETS:
            # Chargers new to the pool, and a pool below OCPP_POOL_MAX_SIZE: start from an
            # empty bench database.
            database_reset(args)
            # The boot storm meets the pool as it is (Pending); the other scenarios need
            # Accepted stations (anything but a boot from a Pending one is refused).
            boot_status = "Pending" if scenario == "boot" else "Accepted"
            start_csms(args, stack, boot_status=boot_status, metrics=target != "csms-no-metrics")
        else:
            start_baseline(stack)
        result["stack"] = stack.note
        result["workdir"] = str(workdir)
        # Every PostgreSQL and Redis process on the machine (others' too, if any run).
        by_name = (
            {"postgres": "postgres", "redis": "redis-server"} if target in CSMS_TARGETS else {}
        )
        time.sleep(0.5)
        sampler = Sampler(stack.groups, by_name=by_name).start()
        time.sleep(1.0)
        idle = sampler.samples[-1]
        server_group = "daphne" if target in CSMS_TARGETS else "baseline"
        idle_rss = sampler.rss_kib(server_group, idle)
        log(f"{scenario} / {target}: {stack.note}; {args.chargers} chargers -> {stack.url}")
        loadgen = subprocess.Popen(
            loadgen_argv(args, scenario, stack.url, prefix, duration),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=open(workdir / "loadgen.log", "wb"),
            text=True,
        )
        profile: list = []
        timer = None
        if args.profile and target in CSMS_TARGETS:
            # --profile-after: skip the connecting phase, e.g. to see the steady state.
            seconds = min(duration - args.profile_after, 180)
            timer = threading.Timer(
                args.profile_after, lambda: profile.extend(profile_start(stack, seconds))
            )
            timer.start()
        started = time.time()
        if scenario == "fanout":
            # Let every charger connect and boot, then fan out from the web side.
            time.sleep(min(duration / 2, 5 + args.chargers / 200))
            try:
                if target in CSMS_TARGETS:
                    result["fanout"] = fanout_csms(prefix, args.chargers, timeout=duration)
                else:
                    result["fanout"] = fanout_baseline(stack.url)
            except Exception as exc:  # recorded in the result; the load run still finishes
                log(f"fan-out failed: {exc!r}")
                result["fanout"] = {"runnable": False, "reason": repr(exc)[:300]}
        stdout, _ = loadgen.communicate(timeout=duration + 400)
        try:
            load = json.loads(stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            load = {"error": "load generator printed no summary", "failure_count": 1}
            log((workdir / "loadgen.log").read_text(errors="replace")[-2000:])
        # During the load: from the storm's start until the load generator ended.
        server = sampler.summary(since=started)
        sampler.stop()
        if timer is not None:
            timer.cancel()
        if profile:
            result["profile"] = profile_collect(profile)
        result["load"] = load
        result["server"] = server
        held = load.get("held") or load.get("connected") or 0
        # The most the server held: when every charger was connected.
        rss_now = max(sampler.rss_kib(server_group, s) for s in sampler.samples if s.at >= started)
        if held:
            result["rss_kib_per_connection"] = round((rss_now - idle_rss) / held, 1)
            result["rss_kib_per_connection_total"] = round(rss_now / held, 1)
        if scenario == "steady":
            series = [sampler.rss_kib(server_group, s) for s in sampler.samples if s.at >= started]
            if len(series) > 10:
                early = series[len(series) // 5]
                result["rss_growth_mib_after_first_fifth"] = round((series[-1] - early) / 1024, 1)
                every = max(1, len(series) // 20)
                result["rss_mib_series"] = [round(v / 1024, 1) for v in series[::every]]
        if target in CSMS_TARGETS:
            result["database"] = database_check(
                prefix,
                booted=load.get("booted", 0),
                calls=load.get("calls", 0),
                timeout=10 + 3 * args.flush_interval,
            )
    finally:
        stack.stop()
    result["verdict"] = verdict(scenario, target, result)
    return result


def verdict(scenario: str, target: str, result: dict) -> dict:
    """The issue's targets, checked against what was measured (full size only counts)."""
    load = result.get("load", {})
    out: dict = {"failures": load.get("failure_count", 0)}
    if scenario == "boot":
        last = load.get("last_boot_answered_s")
        out["all_answered_within_60s"] = (
            load.get("booted") == result["chargers"] and last is not None and last <= 60
        )
        if target in CSMS_TARGETS:
            out["database_complete"] = result.get("database", {}).get("complete", False)
    if scenario == "steady":
        # Steady state: the periodic traffic once the whole fleet has booted.
        latency = load.get("latency", {})
        p99 = max(
            (latency.get(a, {}).get("p99_ms", 0) for a in ("Heartbeat", "MeterValues")), default=0
        )
        out["steady_p99_ms"] = p99
        out["p99_under_100ms"] = 0 < p99 < 100
        out["no_disconnects"] = load.get("disconnects", 1) == 0
    if scenario == "fanout":
        fan = result.get("fanout", {})
        if not fan.get("runnable"):
            out["runnable"] = False
        elif target in CSMS_TARGETS:
            done = fan.get("all_commands_final_s")
            # A result is the charger's answer: a command that failed before reaching its
            # charger (gateway unreachable) is recorded, but is no result.
            statuses = fan.get("command_statuses", {})
            out["all_accepted"] = statuses == {"accepted": fan.get("triggered")}
            out["all_recorded_within_10s"] = done is not None and done <= 10 and out["all_accepted"]
        else:
            out["all_recorded_within_10s"] = fan.get("all_recorded_s", 99) <= 10
    out["client_saturated"] = load.get("client_saturated", False)
    return out


# ---- output -------------------------------------------------------------------------


def main_latency(scenario: str, load: dict) -> tuple[str, dict]:
    latency = load.get("latency", {})
    order = ["Heartbeat", "MeterValues", "BootNotification"]
    if scenario in {"boot", "fanout"}:
        order.reverse()
    for action in order:
        if action in latency and latency[action].get("n"):
            return action, latency[action]
    return "", {}


def print_table(results: list[dict]) -> None:
    header = (
        f"{'scenario':8} {'target':8} {'held':>6} {'fail':>5} {'calls/s':>8} {'action':16} "
        f"{'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} {'srvCPU%':>8} {'RSS MiB':>8} "
        f"{'KiB/conn':>8} {'cliCPU%':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        load = r.get("load", {})
        action, lat = main_latency(r["scenario"], load)
        group = "daphne" if r["target"] in CSMS_TARGETS else "baseline"
        server = r.get("server", {}).get(group, {})
        client = max((c["cpu_share"] for c in load.get("client", [])), default=0)
        calls = load.get("peak_calls_s") if r["scenario"] == "peak" else load.get("calls_per_s")
        print(
            f"{r['scenario']:8} {r['target']:8} {load.get('held', 0):>6} "
            f"{load.get('failure_count', 0):>5} {calls or 0:>8} {action:16} "
            f"{lat.get('p50_ms', '-'):>8} {lat.get('p95_ms', '-'):>8} "
            f"{lat.get('p99_ms', '-'):>8} {lat.get('max_ms', '-'):>8} "
            f"{server.get('cpu_pct_avg', '-'):>8} {server.get('rss_mib_end', '-'):>8} "
            f"{r.get('rss_kib_per_connection', '-'):>8} {round(100 * client):>8}"
        )
    for r in results:
        load = r.get("load", {})
        extra = []
        if load.get("failures"):
            extra.append(f"failures {load['failures']}")
        if r["scenario"] == "boot":
            extra.append(
                f"last boot answered at {load.get('last_boot_answered_s')} s; "
                f"{load.get('boots_answered_within_60s')} answered within 60 s"
            )
        if r.get("database"):
            extra.append(f"database {r['database']}")
        if r.get("fanout"):
            extra.append(f"fan-out {r['fanout']}")
        if "rss_growth_mib_after_first_fifth" in r:
            extra.append(f"RSS growth {r['rss_growth_mib_after_first_fifth']} MiB")
        if r["scenario"] == "peak":
            extra.append(f"steps {load.get('peak_steps')}")
        extra.append(f"verdict {r['verdict']}")
        print(f"\n{r['scenario']} / {r['target']} ({r.get('stack', '')}):")
        for line in extra:
            print(f"  {line}")


def ratios(csms: dict, baseline: dict) -> dict:
    """CSMS figure / baseline figure: throughput above 1.0 is better, latency below."""
    out = {}
    a, b = csms.get("load", {}), baseline.get("load", {})
    # Only the peak's load is open-ended; elsewhere the calls/s is set by the scenario.
    if csms["scenario"] == "peak" and b.get("peak_calls_s"):
        out["peak_calls_s"] = round(a.get("peak_calls_s", 0) / b["peak_calls_s"], 2)
    if baseline.get("rss_kib_per_connection"):
        out["rss_kib_per_connection"] = round(
            csms.get("rss_kib_per_connection", 0) / baseline["rss_kib_per_connection"], 2
        )
    cpu_a = csms.get("server", {}).get("daphne", {}).get("cpu_pct_avg")
    cpu_b = baseline.get("server", {}).get("baseline", {}).get("cpu_pct_avg")
    if cpu_a is not None and cpu_b:
        out["server_cpu"] = round(cpu_a / cpu_b, 2)
    for action, lat in a.get("latency", {}).items():
        base = b.get("latency", {}).get(action, {})
        if base.get("p99_ms") and lat.get("p99_ms") is not None:
            out[f"{action}_p99"] = round(lat["p99_ms"] / base["p99_ms"], 2)
    if csms["scenario"] == "boot" and b.get("last_boot_answered_s"):
        out["last_boot_answered"] = round(
            (a.get("last_boot_answered_s") or 0) / b["last_boot_answered_s"], 2
        )
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--scenario", default="boot", help=f"one of {SCENARIOS}, comma-separated, or all"
    )
    p.add_argument("--chargers", type=int, default=300)
    p.add_argument("--duration", type=float, default=20.0, help="seconds per scenario run")
    p.add_argument("--daphne", type=int, default=1, help="daphne processes")
    p.add_argument(
        "--daphne-arg",
        action="append",
        default=[],
        help="extra daphne option, e.g. --daphne-arg=--websocket_connect_timeout=60",
    )
    p.add_argument("--backlog", type=int, default=0, help="daphne's listen backlog (Twisted: 50)")
    p.add_argument("--no-lb", action="store_true", help="spread chargers over daphne ports")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument(
        "--metrics-cost",
        action="store_true",
        help="run the CSMS with and without its Prometheus metrics instead of the baseline",
    )
    p.add_argument(
        "--session-length", type=float, default=60.0, help="sessions: seconds each session lasts"
    )
    p.add_argument("--smoke", action="store_true", help="100 chargers, 4 s, exit 1 on failure")
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL))
    p.add_argument("--db-pool", type=int, default=0, help="DATABASE_POOL_MAX_SIZE for daphne")
    p.add_argument("--flush-interval", type=float, default=1.0, help="OCPP_LOG_FLUSH_INTERVAL")
    p.add_argument("--v201-share", type=float, default=0.5)
    p.add_argument("--workers", type=int, default=0, help="load generator processes (0: auto)")
    p.add_argument("--per-worker", type=int, default=2500, help="chargers per loadgen process")
    p.add_argument("--ramp", type=float, default=0.0, help="steady: spread connects over s")
    p.add_argument(
        "--retry",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        help="chargers retry a failed connect/boot after MIN..MAX s, as real ones do",
    )
    p.add_argument(
        "--open-timeout", type=float, default=0, help="chargers' handshake timeout (default 60)"
    )
    p.add_argument(
        "--baseline-duration", type=float, default=0, help="seconds for the baseline's run"
    )
    p.add_argument("--peak-start-rate", type=float, default=100.0)
    p.add_argument("--peak-step", type=float, default=5.0)
    p.add_argument("--p99-limit", type=float, default=250.0, help="peak: ms, ends the climb")
    p.add_argument("--peak-steps", type=int, default=12)
    p.add_argument("--profile", action="store_true", help="py-spy every daphne (<= 180 s)")
    p.add_argument("--profile-after", type=float, default=0.0, help="start py-spy after s")
    p.add_argument("--results", default=str(BENCH / "results" / "results.jsonl"))
    args = p.parse_args(argv)
    if args.smoke:
        args.scenario = "smoke"
        args.chargers = 100
        # 4 s: under redis-py 8 the Redis layer drops a charger ~5 s after the first connect
        # (bench/RESULTS.md, suggestion 1); the smoke run guards the benchmark, not that.
        args.duration = 4.0
        args.daphne = 1
        args.redis_url = os.environ.get("REDIS_URL", "")
    if args.scenario == "all":
        args.scenarios = SCENARIOS
    else:
        args.scenarios = [s.strip() for s in args.scenario.split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the servers
    if hard < 2 * args.chargers + 100:
        log(f"ulimit -n is {hard}: too low for {args.chargers} chargers")
    services_start(args)
    django_setup(args)
    if bench_database(args):
        from django.core.management import call_command

        call_command("migrate", "--noinput", verbosity=0)
    run_id = uuid.uuid4().hex[:6]
    results_path = Path(args.results)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results = []
    failed = False
    for scenario in args.scenarios:
        pair = {}
        if args.metrics_cost:
            # The gateway with and without its Prometheus metrics, back to back.
            targets = ["csms", "csms-no-metrics"]
        else:
            targets = ["csms"] + ([] if args.no_baseline else ["baseline"])
        for target in targets:
            result = run_one(args, scenario, target, run_id)
            pair[target] = result
            results.append(result)
        if "baseline" in pair:
            pair["csms"]["ratio_to_baseline"] = ratios(pair["csms"], pair["baseline"])
            log(f"{scenario}: CSMS / baseline = {pair['csms']['ratio_to_baseline']}")
        if "csms-no-metrics" in pair:
            pair["csms"]["ratio_to_no_metrics"] = ratios(pair["csms"], pair["csms-no-metrics"])
            log(f"{scenario}: metrics on / off = {pair['csms']['ratio_to_no_metrics']}")
        with results_path.open("a") as f:
            for result in pair.values():
                f.write(json.dumps(result) + "\n")
        for result in pair.values():
            if result.get("load", {}).get("failure_count", 1):
                failed = True
            if result.get("database") and not result["database"]["complete"]:
                failed = True
    print_table(results)
    print(f"\nJSON lines appended to {results_path}")
    return 1 if failed and args.smoke else 0


if __name__ == "__main__":
    sys.exit(main())
