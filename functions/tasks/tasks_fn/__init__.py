"""The tasks function: run Celery tasks, read their results, manage beat's schedules."""
