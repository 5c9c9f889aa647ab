# The example instrumented app (examples/stack_app.py) and the provider stand-in it calls (`otel-ai-cost stand-in
# serve`): both need the package with the OpenAI and Anthropic SDKs. Build context: the repository root.
#
#   docker build -f deploy/app.Dockerfile -t otel-ai-cost-app:0.1.0 .

FROM python:3.11.9-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
# [all]: the openai and anthropic SDKs. The OTLP/HTTP exporter ships the telemetry to the collector.
RUN pip install ".[all]" "opentelemetry-exporter-otlp-proto-http>=1.40" \
    && rm -rf /build

RUN useradd --system --uid 10003 --create-home --shell /usr/sbin/nologin app
USER app
WORKDIR /home/app
COPY examples/stack_app.py ./stack_app.py

# Options come from docker-compose.yml (--stand-in, --interval, --heartbeat-file).
ENTRYPOINT ["python", "stack_app.py"]
