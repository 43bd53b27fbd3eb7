"""``python -m projections.messages``: run the messages projector (see ``projections.messages.main``)."""

from projections.consumer import run_projector
from projections.messages.main import PROJECTOR

if __name__ == "__main__":
    run_projector(PROJECTOR)
