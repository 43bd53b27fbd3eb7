"""``python -m streams.media``: run the media stage (see ``streams.media.main``)."""

from streams.media.main import STAGE
from streams.common.stage import run_stage

if __name__ == "__main__":
    run_stage(STAGE)
