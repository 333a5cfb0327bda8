# Goodeye in one image: nginx in front, two gunicorn pools behind it (the API, the serving check), the sweeper beside,
# all started by `goodeye serve` (goodeye/stack.py). Listens on 8080.
# docker-compose.yml beside this file adds MySQL, MinIO and Redis.
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /home/goodeye goodeye \
    && mkdir -p /data && chown goodeye:goodeye /data

# A regular (not editable) install: the nginx template, the OpenAPI document and the
# app's WSGI module ship inside the package, so nothing of the checkout stays behind.
COPY setup.cfg pyproject.toml README.md /src/
COPY goodeye /src/goodeye
RUN pip install --no-cache-dir /src && rm -rf /src

WORKDIR /data

USER goodeye
ENV GOODEYE_DATA_DIR=/data \
    GOODEYE_LISTEN_HOST=0.0.0.0 \
    GOODEYE_PORT=8080 \
    GOODEYE_LOG_TO=stdout \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2)"
CMD ["goodeye", "serve", "--no-demo"]
