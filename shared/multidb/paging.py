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
