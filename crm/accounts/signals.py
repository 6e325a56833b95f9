from __future__ import annotations

from typing import Any


def sync_roles_after_migrate(**kwargs: Any) -> None:
    # Permissions exist only after every app has migrated, so roles are synced here
    # rather than in a data migration.
    from crm.accounts import services

    services.roles_sync()
