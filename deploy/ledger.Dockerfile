# The otel-ai-cost ledger service: receives OTLP/HTTP spans from the collector and writes one idempotent billing
# record per priced call to DynamoDB. Build context: the repository root (docker-compose.yml: context ".").
#
#   docker build -f deploy/ledger.Dockerfile -t otel-ai-cost-ledger:0.1.0 .

# Pinned to the Python the project is developed and tested on (3.11), slim Debian bookworm like the CI machines.
FROM python:3.11.9-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /build
# Only what the wheel needs (pyproject's readme is part of the metadata), so unrelated edits keep the layer cached.
COPY pyproject.toml README.md ./
COPY src ./src
# boto3 is not a dependency of the package (the SQLite default must not pay for it) but the DynamoDB store needs it.
RUN pip install . "boto3>=1.34,<2" \
    && rm -rf /build

# Never run the billing writer as root.
RUN useradd --system --uid 10002 --no-create-home --shell /usr/sbin/nologin ledger
USER ledger
WORKDIR /

EXPOSE 4319

# /healthz answers 200 only when the store answers too (503 otherwise), so "healthy" means "can record".
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4319/healthz', timeout=4)"]

# `ledger init` (the one-shot table creation) and `ledger serve` share this image; compose picks the command.
# The default never listens without a token: it reads the file compose mounts (the stack's `init` generates it), and
# without that file it refuses to start. Elsewhere, mount a token file there, or give --tokens-file (docs/ledger.md).
ENTRYPOINT ["otel-ai-cost", "ledger"]
CMD ["serve", "--host", "0.0.0.0", "--port", "4319", "--token-file", "/run/secrets/ledger/ledger-token"]
