"""``python -m services.simulator`` - the sector-systems simulator.

live     send a backfill of recent history, then events in real time, to the services
sample   print generated events as JSON lines (deterministic given --seed and --start)
"""

import asyncio
import datetime as dt
import json
import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from infra.migrate import reference_units
from services.runtime.clock import SystemClock
from services.runtime.logs import configure_logging
from services.simulator.generator import SectorSystems
from services.simulator.live import Sender, load_keys, run_live, start_of_backfill, wait_ready

app = typer.Typer(help="Simulated sector systems of Thanh Hoa.", no_args_is_help=True)
DEFAULT_URLS = {"education": 8101, "health": 8102, "transport": 8103, "culture": 8104}


def _urls() -> dict[str, str]:
    return {
        sector: os.environ.get(f"SIMULATOR_{sector.upper()}_URL", f"http://127.0.0.1:{port}")
        for sector, port in DEFAULT_URLS.items()
    }


@app.command()
def live(
    rate: Annotated[
        float, typer.Option(help="Average events per hour (a week's mean; office hours are busier).")
    ] = 6000,
    backfill_days: Annotated[float, typer.Option(help="Days of history sent at start.")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    duplicate_rate: float = 0.01,
    late_rate: float = 0.02,
    credentials: Annotated[Path | None, typer.Option(help="dev-credentials.json")] = None,
) -> None:
    """Backfill, then send events as they happen until SIGINT/SIGTERM."""
    configure_logging("simulator")
    clock = SystemClock(float(os.environ.get("CLOCK_OFFSET_SECONDS", "0")))
    path = credentials or Path(os.environ.get("SIMULATOR_CREDENTIALS_FILE", ".smartcity/dev-credentials.json"))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        urls = _urls()
        await wait_ready(urls)
        start = start_of_backfill(clock.now(), backfill_days)
        sim = SectorSystems(
            reference_units(),
            start,
            seed=seed,
            events_per_hour=rate,
            duplicate_rate=duplicate_rate,
            late_rate=late_rate,
        )
        sender = Sender(urls, load_keys(path))
        try:
            await run_live(sim, sender, clock, stop=stop)
        finally:
            await sender.close()

    asyncio.run(main())


@app.command()
def sample(
    count: int = 10,
    seed: int = 1,
    start: Annotated[str, typer.Option(help="ISO time of the first hour.")] = "2025-05-05T08:00:00+07:00",
    rate: float = 6000,
) -> None:
    """Print ``count`` events as JSON lines."""
    sim = SectorSystems(reference_units(), dt.datetime.fromisoformat(start), seed=seed, events_per_hour=rate)
    for event in sim.take(count):
        typer.echo(json.dumps(event, ensure_ascii=False))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
