# One image for every Message Memory process: ingest, the stream stages, the projector and
# the one-shot `msgmem migrate`. Choose the process with the container command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# The locked versions first (checked against their hashes), so code changes reuse this layer.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY contracts ./contracts
COPY runtime ./runtime
COPY ingest ./ingest
COPY streams ./streams
COPY projections ./projections
COPY migrations ./migrations
COPY msgmem ./msgmem
RUN pip install --no-deps . && useradd --system --uid 10001 msgmem
USER msgmem

CMD ["msgmem", "--help"]
