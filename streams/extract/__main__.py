"""``python -m streams.extract``: run the extract stage (see ``streams.extract.main``)."""

from streams.extract.main import STAGE
from streams.common.stage import run_stage

if __name__ == "__main__":
    run_stage(STAGE)
