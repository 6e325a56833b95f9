"""The backup and restore commands of docs/reliability.md, run for real: a dump of the
database restored into an empty one holds the same customers, the same encrypted ID
numbers and the append-only guard on the audit log."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from crm import embedded
from customers import services as customer_services
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _url(dbname: str) -> str:
    params = connection.settings_dict
    auth = params["USER"] + (f":{params['PASSWORD']}" if params["PASSWORD"] else "")
    return f"postgresql://{auth}@{params['HOST']}:{params['PORT']}/{dbname}"


def _client_bin_dir(tmp_path: Path) -> Path:
    """pg_dump/pg_restore of the server's major version: the embedded bundle's for
    PostgreSQL 18, the Debian cluster's otherwise."""
    major = connection.cursor().connection.info.server_version // 10000
    if major == 18:
        home = Path(os.environ.get("KEHU_DATA_DIR", tmp_path)) / "postgres"
        return embedded._pg_bin_dir(home)
    debian = Path(f"/usr/lib/postgresql/{major}/bin")
    if not (debian / "pg_restore").exists():
        pytest.skip(f"no pg_dump/pg_restore for PostgreSQL {major} on this machine")
    return debian


def test_a_dump_restores_into_an_empty_database_with_everything_in_it(
    tmp_path, sales_rep
):
    customer = CustomerFactory(owner=sales_rep, name="备份恢复客户")
    customer_services.customer_update(
        by=sales_rep,
        customer=customer,
        version=customer.version,
        data={},
        id_number="11010519491231002X",
    )
    CustomerFactory.create_batch(4, owner=sales_rep)
    bin_dir = _client_bin_dir(tmp_path)
    source = connection.settings_dict["NAME"]
    target = f"{source}_restored"
    dump = tmp_path / "kehu.dump"

    # As docs/reliability.md says: pg_dump -Fc, then pg_restore --clean --if-exists.
    subprocess.run(
        [bin_dir / "pg_dump", "-Fc", "-f", dump, "--dbname", _url(source)],
        check=True,
    )
    with psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{target}"')
        admin.execute(f'CREATE DATABASE "{target}"')
    try:
        subprocess.run(
            [
                bin_dir / "pg_restore",
                "--clean",
                "--if-exists",
                "--no-owner",
                "--exit-on-error",
                "-d",
                _url(target),
                dump,
            ],
            check=True,
        )
        with psycopg.connect(_url(target)) as restored:
            names = {
                row[0]
                for row in restored.execute("SELECT name FROM customers_customer")
            }
            saved = restored.execute(
                "SELECT id_number_cipher, id_number_index FROM customers_customer"
                " WHERE name = %s",
                ["备份恢复客户"],
            ).fetchone()
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                restored.execute("DELETE FROM core_accesslog")
        original = connection.cursor()
        original.execute(
            "SELECT id_number_cipher, id_number_index FROM customers_customer"
            " WHERE name = %s",
            ["备份恢复客户"],
        )
        assert names == set(
            CustomerFactory._meta.model.objects.values_list("name", flat=True)
        )
        assert len(names) == 5
        assert saved == original.fetchone()
        assert saved[1]  # the blind index came along, so the number is still findable
    finally:
        with psycopg.connect(_url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{target}"')
