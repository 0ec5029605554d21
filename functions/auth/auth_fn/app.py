"""Lambda entry point of the auth function: `auth_fn.app.handler`."""

from multidb.api.app import create_app, create_handler

from .routes import router

app = create_app("Auth", router)
handler = create_handler(app)
