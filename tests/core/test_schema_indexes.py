"""The schema keeps no index twice: a second index on the same columns (typically a
named Meta index repeating a foreign key's own) costs every write and serves no read."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

# Same table, same columns in the same order, same operator classes, same predicate and
# expressions: the planner can use either, so one of them is waste.
DUPLICATES = """
SELECT indrelid::regclass::text,
       array_agg(indexrelid::regclass::text ORDER BY indexrelid::regclass::text)
  FROM pg_index
  JOIN pg_class ON pg_class.oid = indrelid
  JOIN pg_namespace ON pg_namespace.oid = relnamespace
 WHERE nspname = current_schema()
 GROUP BY indrelid, indkey::text, indclass::text,
          COALESCE(pg_get_expr(indpred, indrelid), ''),
          COALESCE(pg_get_expr(indexprs, indrelid), '')
HAVING count(*) > 1
"""


def test_no_table_has_the_same_index_twice():
    with connection.cursor() as cursor:
        cursor.execute(DUPLICATES)
        duplicates = sorted(cursor.fetchall())
    assert duplicates == []
