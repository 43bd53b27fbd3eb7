"""``python -m projections.erasures``: run the erasures projector (see ``projections.erasures.main``)."""

from projections.consumer import run_projector
from projections.erasures.main import PROJECTOR

if __name__ == "__main__":
    run_projector(PROJECTOR)
