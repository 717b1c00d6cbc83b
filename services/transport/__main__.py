"""Run the transport service: ``python -m services.transport``."""

from services.runtime.serve import serve
from services.transport.settings import TransportSettings


def main() -> None:
    serve("services.transport.app:app", TransportSettings())


if __name__ == "__main__":
    main()
