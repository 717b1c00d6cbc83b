"""Run the education service: ``python -m services.education``."""

from services.education.settings import EducationSettings
from services.runtime.serve import serve


def main() -> None:
    serve("services.education.app:app", EducationSettings())


if __name__ == "__main__":
    main()
