"""`manage.py simulate_charger CBID`: a simulated OCPP charger for people without hardware."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from django.core.management.base import BaseCommand, CommandError, CommandParser

from simulator import (
    EVENT_ORDERS,
    HandshakeRefused,
    SimulatorFailed,
    SimulatorOptions,
    run_simulator,
)


class Command(BaseCommand):
    help = (
        "Connect a simulated charger to the backend: it boots, reports its connectors, "
        "sends heartbeats, optionally charges, and answers the backend's calls. Ctrl-C stops it."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs) -> CommandParser:
        # `--version` is the OCPP version here: it replaces Django's own `--version`.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("cbid", help="the charger's identity (last segment of its URL)")
        parser.add_argument(
            "--url",
            default="ws://127.0.0.1:8000/ocpp",
            help="backend URL without the CBID (default: %(default)s)",
        )
        parser.add_argument(
            "--version", choices=["1.6", "2.0.1", "2.1"], default="1.6", dest="ocpp"
        )
        parser.add_argument("--password", help="Basic-auth password (security profile 1)")
        parser.add_argument("--connectors", type=int, default=2)
        parser.add_argument(
            "--heartbeat", type=int, help="heartbeat interval in seconds (default: the backend's)"
        )
        parser.add_argument(
            "--transaction", action="store_true", help="charge on connector 1 once Accepted"
        )
        parser.add_argument("--id-tag", default="SIMULATOR", help="id tag for --transaction")
        parser.add_argument(
            "--meter-interval", type=float, default=5.0, help="seconds between meter values"
        )
        parser.add_argument(
            "--duration", type=float, help="seconds to run, then stop (default: until Ctrl-C)"
        )
        parser.add_argument(
            "--event-order",
            choices=EVENT_ORDERS,
            default="live",
            help="2.x: send a transaction's events as they happen (live), or hold them and "
            "send them when it ends: in order (queued), reversed or shuffled",
        )
        parser.add_argument("--seed", type=int, help="random seed of --event-order shuffled")
        parser.add_argument(
            "--resend",
            action="store_true",
            help="send every transaction message twice, as a charger that lost the answer",
        )
        parser.add_argument(
            "--signed",
            action="store_true",
            help="send the energy register also as signed meter values (simulated OCMF)",
        )
        parser.add_argument(
            "--exit-on-close",
            action="store_true",
            help="exit when the backend closes the connection (default: reconnect, backing "
            "off, as firmware does)",
        )
        parser.add_argument(
            "--stay-pending",
            action="store_true",
            help="once answered Pending, boot again only when the backend asks for it, and "
            "meanwhile answer what it asks (configuration, reports, triggered messages)",
        )
        parser.add_argument(
            "--report-parts",
            type=int,
            help="2.x: NotifyReport parts answering a GetBaseReport "
            "(default: 1, or 3 with --stay-pending)",
        )

    def handle(self, *args, **options) -> None:
        try:
            simulator_options = SimulatorOptions(
                cbid=options["cbid"],
                url=options["url"],
                version=options["ocpp"],
                password=options["password"],
                connectors=options["connectors"],
                heartbeat=options["heartbeat"],
                transaction=options["transaction"],
                id_tag=options["id_tag"],
                meter_interval=options["meter_interval"],
                duration=options["duration"],
                event_order=options["event_order"],
                seed=options["seed"],
                resend=options["resend"],
                signed=options["signed"],
                exit_on_close=options["exit_on_close"],
                stay_pending=options["stay_pending"],
                report_parts=options["report_parts"],
            )
        except ValueError as exc:
            raise CommandError(str(exc))
        try:
            asyncio.run(self._run(simulator_options))
        except asyncio.CancelledError:
            self.stderr.write("Interrupted.")
        except (HandshakeRefused, SimulatorFailed) as exc:
            raise CommandError(str(exc))
        except OSError as exc:
            raise CommandError(f"Cannot connect to {simulator_options.station_url}: {exc}")

    async def _run(self, options: SimulatorOptions) -> None:
        stop = asyncio.Event()
        main = asyncio.current_task()
        loop = asyncio.get_running_loop()

        def interrupt() -> None:
            # The first Ctrl-C (or TERM) ends the run cleanly: a running transaction is
            # stopped first. A second one does not wait for that.
            if stop.is_set():
                main.cancel()
            else:
                self.stdout.write("Stopping (Ctrl-C again to quit at once)…")
                stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, interrupt)
        simulator = await run_simulator(options, stop=stop, output=self.say)
        if simulator is not None:
            self.say(f"Last registration status: {simulator.registration_status}")

    def say(self, line: str) -> None:
        # Flushed at once: the play-by-play is watched live, often through a pipe.
        self.stdout.write(line)
        self.stdout.flush()
