from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q

from crm.accounts.roles import ROLE_PERMISSIONS, Role


@transaction.atomic
def roles_sync() -> None:
    """Create the four role groups and give each exactly its permissions (idempotent).

    Runs after every app's migrations; permissions of apps not yet migrated are simply
    not there yet and are added by the next call.
    """
    for role in Role:
        group, _ = Group.objects.get_or_create(name=role.value)
        wanted = Q(pk__in=[])
        for name in ROLE_PERMISSIONS[role]:
            label, codename = name.split(".", 1)
            wanted |= Q(content_type__app_label=label, codename=codename)
        group.permissions.set(Permission.objects.filter(wanted))
