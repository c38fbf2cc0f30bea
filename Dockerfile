# syntax=docker/dockerfile:1
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# ffmpeg: probing, converting and splitting audio; curl: the HEALTHCHECK.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# uv, pinned with its hashes, installs exactly uv.lock (every package pinned with its hashes):
# two builds a month apart install the same files. --locked fails the build when pyproject.toml
# and uv.lock disagree.
COPY requirements-uv.txt ./
RUN pip install --require-hashes --no-deps -r requirements-uv.txt
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PATH=/opt/venv/bin:$PATH

# Dependencies first, in their own layer: a code change does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-install-project --no-editable --no-cache --python /usr/local/bin/python3

COPY bot ./bot
RUN uv sync --locked --no-editable --no-cache --python /usr/local/bin/python3 \
    && useradd --create-home --uid 10001 bot \
    && mkdir -p /app/data && chown bot:bot /app/data

USER bot
ENV DATABASE_URL=sqlite:////app/data/bot.sqlite3 \
    LISTEN_HOST=0.0.0.0 \
    LISTEN_PORT=8080
EXPOSE 8080
VOLUME ["/app/data"]

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1

CMD ["python", "-m", "bot"]
