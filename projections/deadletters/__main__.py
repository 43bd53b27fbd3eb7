"""``python -m projections.deadletters``: run the dead_letters projector (see ``projections.deadletters.main``)."""

from projections.consumer import run_projector
from projections.deadletters.main import PROJECTOR

if __name__ == "__main__":
    run_projector(PROJECTOR)
