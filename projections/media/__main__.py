"""``python -m projections.media``: run the media projector (see ``projections.media.main``)."""

from projections.consumer import run_projector
from projections.media.main import PROJECTOR

if __name__ == "__main__":
    run_projector(PROJECTOR)
