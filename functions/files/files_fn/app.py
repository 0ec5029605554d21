"""Lambda entry point of the files function: `files_fn.app.handler`."""

from multidb.api.app import create_app, create_handler
from multidb.files import storage

from .routes import router

app = create_app("Files", router)
# Under SnapStart: the modules a first list or upload loads go into the snapshot, and so does
# botocore's parsed S3 model (building the client loads it; the client itself is closed before
# the snapshot and rebuilt on first use).
handler = create_handler(
    app,
    prime=("pymongo", "beanie", "boto3", "multidb.files.documents", "multidb.files.lifecycle", "multidb.files.storage"),
    warm=storage.warm,
)
