"""``python -m streams.transcribe``: run the transcribe stage (see ``streams.transcribe.main``)."""

from streams.transcribe.main import STAGE
from streams.common.stage import run_stage

if __name__ == "__main__":
    run_stage(STAGE)
