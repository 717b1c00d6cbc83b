"""Run the alerts worker: ``python -m services.alerts`` (one process: faust worker + web)."""

import logging
import sys

import faust

from services.alerts.app import create_app
from services.alerts.settings import AlertsSettings
from services.runtime.logs import configure_logging


class Worker(faust.Worker):
    """faust's worker with the project's structured logs instead of its own."""

    service_name = "alerts"
    log_level = "INFO"
    json_output = True

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        configure_logging(self.service_name, self.log_level, self.json_output)
        # faust narrates every rebalance step at INFO: only its warnings, unless debugging
        for name in ("faust", "mode", "aiokafka"):
            logging.getLogger(name).setLevel(logging.INFO if self.log_level == "DEBUG" else logging.WARNING)


def main() -> None:
    settings = AlertsSettings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    configure_logging("alerts", settings.log.level, settings.log.json_output)
    app, _runtime = create_app(settings)
    Worker.log_level = settings.log.level
    Worker.json_output = settings.log.json_output
    worker = Worker(app, loglevel=settings.log.level, redirect_stdouts=False, quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
    sys.exit(0)
