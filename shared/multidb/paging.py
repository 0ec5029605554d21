"""Page sizes and the bound of a page's total, shared by the SQL and document repositories
and the routes' page query.

A module of its own so that reading a page size imports neither SQLAlchemy nor PyMongo.

A page's total is counted up to TOTAL_BOUND and no further: counting every matching row of a
large table costs as much as reading it, whatever the page. A repository counts at most
TOTAL_BOUND + 1 rows (`bounded_count`), and a page reports the exact total when that count
stayed within the bound, and `total` = TOTAL_BOUND with `totalExact: false` (more than that
many) when it did not (`reported`).
"""

MAX_PAGE_SIZE = 100
TOTAL_BOUND = 10_000  # a page's total is exact up to this many records


def reported(counted: int) -> tuple[int, bool]:
    """A count of at most TOTAL_BOUND + 1 records as a page reports it: (total, exact)."""
    return (counted, True) if counted <= TOTAL_BOUND else (TOTAL_BOUND, False)


# The forms of the SQL lists' cursors (`cursors`): a creation time in microseconds and an id
# (users, roles); a name in base64url (128 characters of UTF-8 at most) and an id (schedules).
CURSOR_BY_CREATION = r"^[0-9]{1,17}-[0-9a-f]{32}$"
CURSOR_BY_NAME = r"^[A-Za-z0-9_-]{0,683}\.[0-9a-f]{32}$"
