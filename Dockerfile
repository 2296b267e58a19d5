# syntax=docker/dockerfile:1
# friendscrape worker image. Run a partition with `run --partition auto` (the partition
# comes from the platform, see docs/deploying.md); the default command prints the help.
#
# The install steps (every RUN line below that calls pip or python) are performed without
# Docker by tests/deploy/test_install_steps.py, which reads them from this file: keep
# them plain `pip ...` / `python -m venv ...` commands joined by `&&`.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# Only the project's own wheel; its dependencies are installed from the index below.
RUN pip wheel --no-deps --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/friendscrape/bin:$PATH \
    FRIENDSCRAPE_STORE=sqlite:////data/friendscrape.db
# A bind mount, not COPY: the wheel is installed without becoming a layer of its own.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/friendscrape \
    && /opt/friendscrape/bin/pip install --no-cache-dir /wheels/*.whl
# A numeric user so Kubernetes' runAsNonRoot can check it; /data holds the SQLite store.
RUN useradd --system --no-log-init --uid 10001 --user-group --no-create-home \
        --home-dir /data --shell /usr/sbin/nologin friendscrape \
    && mkdir /data \
    && chown 10001:10001 /data
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
ENTRYPOINT ["friendscrape"]
CMD ["--help"]
