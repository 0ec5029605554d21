"""Lambda entry point of the files function: `files_fn.app.handler`."""

from multidb.api.app import create_app, create_handler

from .routes import router

app = create_app("Files", router)
handler = create_handler(app)
