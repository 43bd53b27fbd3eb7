"""``python -m projections.media``: run the media projector (see ``projections.media.main``)."""

from projections.media.main import main

if __name__ == "__main__":
    main()
