"""In-process timing of the customer import (L3, docs/reliability.md): validation
(preview) and import of N generated rows, one process, no other load.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/kehu_import \
    DJANGO_SETTINGS_MODULE=crm.settings.bench KEHU_DATA_DIR=/tmp/kehu-import \
    .venv/bin/python -m bench.import_speed 2000 10000

IMPORT_PAUSE_RATIO=0 in the environment leaves out the pauses between chunks
(KEHU_IMPORT_PAUSE_RATIO, customers/imports.py).

Each size prints one line: the rows of the file, the customers already stored, the
commit (+ if the tree has changes) and the load average; the preview's and the import's
seconds, and rows per second (rows imported) of the import alone and of preview plus
import; the import's CPU time in this process and in its PostgreSQL backend (from /proc
when the server runs on this machine), which a busy machine disturbs less than the clock.
Issue 18's goal (3,000 rows/s at 1,000,000 customers) is for the import alone; a 1M
database: docs/benchmarks.md, "Import speed (issue 18, session 12)". Each run takes one
of ten phone prefixes: a database serves ten runs.

Rows are like bench/l3/heavy.py's, plus an ID number on every third row, a salesperson
as owner on every fifth and a bad phone on every 97th; each size uses phone numbers of a
prefix no customer has yet. For figures comparable with L3, seed the database first
(`manage.py seed_demo --customers 15000`): the phone look-ups slow down with the table.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import time
from datetime import date, timedelta

import django


def _id_number(n: int) -> str:
    from stdnum.cn import ric

    born = date(1950, 1, 1) + timedelta(days=n // 1000)
    body = f"110105{born:%Y%m%d}{n % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


PREFIXES = ["166", "171", "173", "175", "176", "178", "191", "193", "195", "196"]


def import_file(rows: int, run: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["名称", "电话", "类型", "阶段", "等级", "省份", "城市", "标签", "备注",
         "身份证号", "负责人"]
    )  # fmt: skip
    for i in range(rows):
        bad = i % 97 == 5
        writer.writerow(
            [f"导入客户{i:05d}", "12345" if bad else f"{PREFIXES[run]}{i:08d}", "业主", "潜在",
             "BC"[i % 2], "海南省", "海口市", "L3导入", "压测导入",
             _id_number(run * 100000 + i) if i % 3 == 0 else "",
             "bench_sales" if i % 5 == 0 else ""]
        )  # fmt: skip
    return out.getvalue().encode("utf-8-sig")


def _commit() -> str:
    """The checked-out commit, short, with + if the measured code has changes."""
    from bench.run import git_facts

    facts = git_facts()
    return facts["commit"][:9] + ("+" if facts["dirty"] else "")


def _load() -> str:
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


def _server_cpu() -> float | None:
    """CPU seconds this connection's PostgreSQL backend has used, from /proc (a server
    on this machine, readable by this user), else None."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime and stime, fields 14 and 15 of proc(5) (11 and 12 after the name).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _existing_customers() -> int:
    from django.db import connection

    # Exact: the bench databases are at most a few million rows.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM customers_customer")
        return cursor.fetchone()[0]


def main(sizes: list[int]) -> None:
    django.setup()
    commit = _commit()
    from django.conf import settings
    from django.contrib.auth.models import Group
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command

    from crm.accounts.models import Department, Team, User
    from crm.accounts.roles import Role
    from customers import imports
    from customers.models import CustomerPhone, ImportJob

    # IMPORT_PAUSE_RATIO=0 times the work alone, without the pauses between chunks.
    if "IMPORT_PAUSE_RATIO" in os.environ:
        settings.KEHU_IMPORT_PAUSE_RATIO = float(os.environ["IMPORT_PAUSE_RATIO"])
    call_command("migrate", verbosity=0)
    department, _ = Department.objects.get_or_create(name="压测部")
    team, _ = Team.objects.get_or_create(name="压测组", department=department)
    users = {}
    for username, role in (("bench_mgr", Role.MANAGER), ("bench_sales", Role.SALES)):
        user, created = User.objects.get_or_create(
            username=username, defaults={"team": team}
        )
        if created:
            user.groups.add(Group.objects.get(name=role))
        users[username] = user
    by = User.objects.get(pk=users["bench_mgr"].pk)
    for size in sizes:
        run = next(
            (
                n
                for n, prefix in enumerate(PREFIXES)
                if not CustomerPhone.objects.filter(number__startswith=prefix).exists()
            ),
            None,
        )
        if run is None:
            sys.exit(
                f"Every phone prefix of {PREFIXES} is taken: use a fresh database."
            )
        content = import_file(size, run)
        existing = _existing_customers()
        upload = SimpleUploadedFile("bench.csv", content)
        inspection = imports.inspect_upload(upload)
        job = imports.import_job_create(by=by, upload=upload, inspection=inspection)
        started = time.perf_counter()
        imports.import_job_validate(job_id=job.pk)
        validated = time.perf_counter() - started
        ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.IMPORTING)
        started, cpu, server = time.perf_counter(), time.process_time(), _server_cpu()
        while True:
            job = imports.import_job_execute(job_id=job.pk)
            if job.status != ImportJob.Status.IMPORTING:
                break
        executed = time.perf_counter() - started
        # This process's own CPU time: less disturbed than the wall clock by other
        # work on a shared machine (the server's part is not in it).
        cpu = time.process_time() - cpu
        server_now = _server_cpu()
        server_cpu = (
            f", server CPU {server_now - server:.2f} s"
            if server is not None and server_now is not None
            else ""
        )
        # The goal (issue 18) is the import's rate; the preview runs before it, as a
        # separate task, and is reported beside it.
        sys.stdout.write(
            f"{size} rows at {existing:,} existing customers, commit {commit},"
            f" load {_load()}: preview {validated:.2f} s, import {executed:.2f} s"
            f" (Python CPU {cpu:.2f} s{server_cpu});"
            f" import {job.imported_rows / executed:,.0f} rows/s,"
            f" preview+import {job.imported_rows / (validated + executed):,.0f} rows/s"
            f" (of {job.imported_rows} imported); valid {job.valid_rows},"
            f" invalid {job.invalid_rows}, skipped {job.skipped_rows}\n"
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [2000])
