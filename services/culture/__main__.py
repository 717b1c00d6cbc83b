"""Run the culture service: ``python -m services.culture``."""

from services.culture.settings import CultureSettings
from services.runtime.serve import serve


def main() -> None:
    serve("services.culture.app:app", CultureSettings())


if __name__ == "__main__":
    main()
