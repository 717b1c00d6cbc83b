"""Run the connector service: ``python -m services.connectors``."""

from services.connectors.settings import ConnectorSettings
from services.runtime.serve import serve


def main() -> None:
    serve("services.connectors.app:app", ConnectorSettings())


if __name__ == "__main__":
    main()
