"""``python -m services.simulator`` - the sector-systems simulator.

live     send history (from 1 January 2025 by default), then events as they happen; resumes
         from its state file, so a second run sends nothing twice
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

from infra.migrate import reference_registry
from services.core.calendar import VN
from services.runtime.clock import SystemClock
from services.runtime.logs import configure_logging
from services.simulator.generator import SectorSystems
from services.simulator.live import Sender, load_keys, run_live, start_run, wait_ready
from services.simulator.state import StateFile

app = typer.Typer(help="Simulated sector systems of Thanh Hoa.", no_args_is_help=True)
DEFAULT_URLS = {"education": 8101, "health": 8102, "transport": 8103, "culture": 8104}


def _urls() -> dict[str, str]:
    return {
        sector: os.environ.get(f"SIMULATOR_{sector.upper()}_URL", f"http://127.0.0.1:{port}")
        for sector, port in DEFAULT_URLS.items()
    }


def history_start(now: dt.datetime, history_from: str, history_days: float | None) -> dt.datetime:
    """Where history starts: ``history_days`` before now if given, else ``history_from`` (an
    ISO date - local midnight - or an ISO time)."""
    if history_days is not None:
        return now - dt.timedelta(days=history_days)
    moment = dt.datetime.fromisoformat(history_from)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=VN)


@app.command()
def live(
    rate: Annotated[
        float, typer.Option(help="Average events per hour at full density (a week's mean; office hours busier).")
    ] = 6000,
    history_from: Annotated[str, typer.Option(help="Where history starts (ISO date or time).")] = "2025-01-01",
    history_days: Annotated[
        float | None, typer.Option(help="History starts this many days before now (instead of --history-from).")
    ] = None,
    full_days: Annotated[float, typer.Option(help="The last days of history at the full rate.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed (a state file's seed wins).")] = 1,
    duplicate_rate: float = 0.01,
    late_rate: float = 0.02,
    credentials: Annotated[Path | None, typer.Option(help="dev-credentials.json")] = None,
    state_file: Annotated[
        Path | None, typer.Option(help="Progress, to resume from (default $SIMULATOR_STATE_FILE).")
    ] = None,
) -> None:
    """History, then events as they happen, until SIGINT/SIGTERM."""
    configure_logging("simulator")
    clock = SystemClock(float(os.environ.get("CLOCK_OFFSET_SECONDS", "0")))
    path = credentials or Path(os.environ.get("SIMULATOR_CREDENTIALS_FILE", ".smartcity/dev-credentials.json"))
    state_path = state_file or Path(os.environ.get("SIMULATOR_STATE_FILE", ".smartcity/simulator-state.json"))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        urls = _urls()
        await wait_ready(urls)
        now = clock.now()
        sim, cursor = start_run(
            reference_registry(),
            StateFile(state_path),
            now,
            history_from=history_start(now, history_from, history_days),
            full_days=full_days,
            seed=seed,
            events_per_hour=rate,
            duplicate_rate=duplicate_rate,
            late_rate=late_rate,
        )
        sender = Sender(urls, load_keys(path))
        try:
            await run_live(sim, sender, clock, cursor=cursor, store=StateFile(state_path), stop=stop)
        finally:
            await sender.close()

    asyncio.run(main())


@app.command()
def sample(
    count: int = 10,
    seed: int = 1,
    start: Annotated[str, typer.Option(help="ISO time of the first hour.")] = "2025-07-07T08:00:00+07:00",
    rate: float = 6000,
) -> None:
    """Print ``count`` events as JSON lines."""
    sim = SectorSystems(reference_registry(), dt.datetime.fromisoformat(start), seed=seed, events_per_hour=rate)
    for event in sim.take(count):
        typer.echo(json.dumps(event, ensure_ascii=False))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
