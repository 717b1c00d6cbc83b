"""Run the transport service: ``python -m services.transport``."""

from services.transport.settings import TransportSettings
from services.runtime.serve import serve


def main() -> None:
    serve("services.transport.app:app", TransportSettings())


if __name__ == "__main__":
    main()
