# One image of infra/local/compose.local.yaml, built on this machine from PyPI wheels only
# (docs/local.md, "Compose on these machines"); context: infra/local. One file per image: the
# classic builder builds every stage above a target's, whatever its network.
# pip installs from the wheelhouse infra/local/compose.py serves to the build (build args).

# Not MinIO: moto's S3 server, `make dev`'s (infra/local/embedded_s3.py: no request log, as
# presigned URLs' signatures would be in it). In memory: nothing survives a restart.
FROM python:3.12-slim
ARG STANDIN
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS
ARG PIP_TRUSTED_HOST
RUN pip install --no-cache-dir --disable-pip-version-check "$STANDIN"
COPY embedded_s3.py /opt/standin/embedded_s3.py
EXPOSE 9000
CMD ["python", "/opt/standin/embedded_s3.py", "-H", "0.0.0.0", "-p", "9000"]
