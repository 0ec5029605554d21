"""Lambda entry point of the roles function: `roles_fn.app.handler`."""

from multidb.api.app import create_app, create_handler

from .routes import router

app = create_app("Roles", router)
handler = create_handler(app)
