"""Page sizes, shared by the SQL and document repositories and the routes' page query.

A module of its own so that reading a page size imports neither SQLAlchemy nor PyMongo.
"""

MAX_PAGE_SIZE = 100
