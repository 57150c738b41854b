# The imgvault image: the CLI and `imgvault serve`, and the same code for the MLflow server, the Dask workers and the bucket
# bootstrap of docker-compose.yml (workers must run the very code the client sends them).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY basics ./basics
COPY store ./store
COPY methods ./methods
COPY tracker ./tracker
COPY cli ./cli
COPY web ./web
# postgres: the store on PostgreSQL; dask: run --scheduler; boto3 and psycopg2 for `mlflow server` with an
# S3 artifact store and a postgresql:// backend store.
RUN pip install ".[postgres,dask]" boto3 psycopg2-binary \
    && useradd --create-home --uid 10001 imgvault

USER imgvault
WORKDIR /home/imgvault
ENV IMGVAULT_HOME=/home/imgvault/imgvault-data
# MLflow sends usage telemetry unless told not to; every process of this image (the MLflow server too) is told.
ENV MLFLOW_DISABLE_TELEMETRY=true
ENTRYPOINT ["imgvault"]
CMD ["--help"]
