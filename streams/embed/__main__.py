"""``python -m streams.embed``: run the embed stage (see ``streams.embed.main``)."""

from streams.embed.main import STAGE
from streams.common.stage import run_stage

if __name__ == "__main__":
    run_stage(STAGE)
