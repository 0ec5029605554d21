"""Lambda entry point of the tasks function: `tasks_fn.app.handler`."""

from multidb.api.app import create_app, create_handler

from .routes import router

app = create_app("Tasks", router)
handler = create_handler(app, prime=("celery", "kombu.transport.redis", "multidb.queue.app", "multidb.queue.runs"))
