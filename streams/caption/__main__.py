"""``python -m streams.caption``: run the caption stage (see ``streams.caption.main``)."""

from streams.caption.main import STAGE
from streams.common.stage import run_stage

if __name__ == "__main__":
    run_stage(STAGE)
