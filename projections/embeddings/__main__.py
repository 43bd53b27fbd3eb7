"""``python -m projections.embeddings``: run the embeddings projector (see ``projections.embeddings.main``)."""

from projections.consumer import run_projector
from projections.embeddings.main import PROJECTOR

if __name__ == "__main__":
    run_projector(PROJECTOR)
