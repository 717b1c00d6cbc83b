"""Run the aggregator: ``python -m services.aggregator``."""

from services.aggregator.settings import AggregatorSettings
from services.runtime.serve import serve


def main() -> None:
    serve("services.aggregator.app:app", AggregatorSettings())


if __name__ == "__main__":
    main()
