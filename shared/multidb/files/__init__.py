"""Files, everything of them that the files function (functions/files) and the worker share:

    documents.py   the `files` collection: `StoredFile` and its `FileStatus`
    storage.py     the bucket: presigned URLs (computed locally) and the few S3 calls made
    lifecycle.py   the file documents' repository, the per-user quota, deletion that outlives
                   a still-valid upload URL, and the sweep (the `multidb.files.sweep` task)

boto3, Beanie and PyMongo load on the first call that needs them, never at import."""
