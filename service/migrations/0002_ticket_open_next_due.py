"""An index in the queues' own order: open tickets by their next deadline, then id.

Every queue sorts by `next_due` (selectors.with_next_due: the first-response deadline
while unanswered, else the resolution deadline, NULL while paused) and shows 25 rows.
Without an index in that order PostgreSQL fetches every open ticket the queue may show
and sorts them all: at 1,000,000 tickets the team queue read all 20,000 open tickets
(16,000 buffers, about 90 ms) for its first page. With it the plan walks the index and
stops after 25 matching rows (112 index entries for a team with a fifth of the open
tickets, about 2 ms). docs/benchmarks.md has the figures.

The expression must stay exactly the SQL that with_next_due generates, or the planner
cannot use the index (the bench's service.queue scenario shows it if they drift). It
is raw SQL outside the model state so that no model change is needed; it could move to
Ticket.Meta.indexes as models.Index(<the same Case>, "id", condition=...) later.
"""

from django.db import migrations

NEXT_DUE = (
    'CASE WHEN "paused_at" IS NOT NULL THEN NULL '
    'WHEN ("first_responded_at" IS NULL AND "first_response_due_at" IS NOT NULL) '
    'THEN "first_response_due_at" ELSE "resolution_due_at" END'
)


class Migration(migrations.Migration):
    dependencies = [
        ("service", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS ticket_open_next_due ON service_ticket "
            f'(({NEXT_DUE}), "id") '
            "WHERE NOT (\"status\" IN ('resolved', 'closed'))",
            reverse_sql="DROP INDEX IF EXISTS ticket_open_next_due",
        ),
    ]
