"""``python -m projections``: run the messages projector (see ``projections.messages.main``)."""

from projections.messages.main import main

if __name__ == "__main__":
    main()
