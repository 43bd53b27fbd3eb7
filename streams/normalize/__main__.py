"""``python -m streams.normalize``: run the normalize stage (see ``streams.normalize.main``)."""

from streams.normalize.main import STAGE
from streams.common.stage import run_stage

if __name__ == "__main__":
    run_stage(STAGE)
