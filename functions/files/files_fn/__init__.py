"""The files function: uploads and downloads through presigned S3/MinIO URLs, metadata in MongoDB."""
