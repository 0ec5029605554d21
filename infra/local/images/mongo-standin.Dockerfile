# One image of infra/local/compose.local.yaml, built on this machine from PyPI wheels only
# (docs/local.md, "Compose on these machines"); context: infra/local. One file per image: the
# classic builder builds every stage above a target's, whatever its network.
# pip installs from the wheelhouse infra/local/compose.py serves to the build (build args).

# Not MongoDB: SecantusDB, the MongoDB-compatible server `make dev` and the tests run (PyPI).
FROM python:3.12-slim
ARG STANDIN
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS
ARG PIP_TRUSTED_HOST
RUN pip install --no-cache-dir --disable-pip-version-check "$STANDIN"
VOLUME /data/db
EXPOSE 27017
CMD ["secantusd-py", "--host", "0.0.0.0", "--port", "27017", "--storage-path", "/data/db", "--log-level", "WARNING"]
