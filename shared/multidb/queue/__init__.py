"""Celery: the app, its tasks and the database-backed beat scheduler.

Only the tasks function, the worker and beat import this package; celery is not in the
Lambda layer's import path of any other function.
"""
