"""Run the KPI API: ``python -m services.kpi_api``."""

from services.kpi_api.settings import KpiApiSettings
from services.runtime.serve import serve


def main() -> None:
    serve("services.kpi_api.app:app", KpiApiSettings())


if __name__ == "__main__":
    main()
