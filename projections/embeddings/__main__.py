"""``python -m projections.embeddings``: run the embeddings projector (see ``projections.embeddings.main``)."""

from projections.embeddings.main import main

if __name__ == "__main__":
    main()
