"""Lambda entry point of the users function: `users_fn.app.handler`."""

from multidb.api.app import create_app, create_handler

from .routes import router

app = create_app("Users", router)
handler = create_handler(app)
