# Waitline: `waitline serve` by default; the same image runs `consume`, `migrate` and `topics create`
# (see docker-compose.yml). Build: docker build -t waitline .

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
# One folder holds the service and its dependencies, so the runtime stage copies it whole and
# carries no build leftovers.
RUN python -m venv /opt/waitline
ENV PATH=/opt/waitline/bin:$PATH
WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
COPY src ./src
# The lock also pins the dev tools (pytest, ruff, mypy, ...): as a constraints file it gives the
# runtime dependencies their locked versions and installs nothing else.
RUN pip install --no-cache-dir -c requirements.lock .

FROM python:3.11-slim
ENV PATH=/opt/waitline/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WAITLINE_DATA_DIR=/var/lib/waitline
# Without WAITLINE_DATABASE_URL or WAITLINE_JWT_SECRET the service keeps its SQLite file and its
# secret in the data folder, so the user must own it (mount a volume there to keep them).
RUN useradd --system --user-group --uid 10001 --home-dir /var/lib/waitline --create-home \
        --shell /usr/sbin/nologin waitline
COPY --from=build /opt/waitline /opt/waitline
USER waitline
WORKDIR /var/lib/waitline
EXPOSE 8000
# The slim image has no curl; Python's urllib fails on a refused connection or any 4xx/5xx.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('WAITLINE_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["waitline"]
CMD ["serve", "--host", "0.0.0.0"]
