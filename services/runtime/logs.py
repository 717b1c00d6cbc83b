"""Structured JSON logs (structlog) for every service; stdlib logging routed through them."""

import logging
import sys

import structlog

_REDACTED_KEYS = frozenset({"authorization", "password", "api_key", "key", "secret", "token"})


def _redact(_: object, __: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
    """Never let a credential reach a log line, whatever a caller passes."""
    for name in list(event_dict):
        if name.lower() in _REDACTED_KEYS:
            event_dict[name] = "[redacted]"
    return event_dict


def configure_logging(service: str, level: str = "INFO", json_output: bool = True) -> None:
    """Configure structlog and the stdlib root logger once per process."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log is one line per request (the services count requests in metrics);
    # kafka-python and httpx narrate every connection at INFO.
    for noisy in ("uvicorn.access", "kafka", "httpx", "httpcore", "aiokafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
