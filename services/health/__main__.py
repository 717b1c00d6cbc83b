"""Run the health service: ``python -m services.health``."""

from services.health.settings import HealthSettings
from services.runtime.serve import serve


def main() -> None:
    serve("services.health.app:app", HealthSettings())


if __name__ == "__main__":
    main()
