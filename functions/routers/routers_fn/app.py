"""Lambda entry point of the routers function: `routers_fn.app.handler`."""

from multidb.api.app import create_app, create_handler

from .routes import router

app = create_app("Routers", router)
handler = create_handler(app)
