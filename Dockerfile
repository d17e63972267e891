# The predmaint pipeline image (used by docker-compose.yml for the pipeline and the simulator).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY predmaint predmaint
COPY pipelines pipelines
COPY features features
COPY models models
COPY connectors connectors
COPY dashboards dashboards
RUN pip install --no-cache-dir .
ENTRYPOINT ["predmaint"]
CMD ["run"]
