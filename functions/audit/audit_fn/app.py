"""Lambda entry point of the audit function: `audit_fn.app.handler`."""

from multidb.api.app import create_app, create_handler

from .routes import router

app = create_app("Audit", router)
handler = create_handler(app, prime=("pymongo", "beanie", "multidb.documents", "multidb.document_repository"))
