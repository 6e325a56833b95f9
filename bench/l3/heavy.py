# ruff: noqa: T201 - a command-line driver
"""L3's heavy jobs, driven over HTTP as the people who do them would (bench/l3/run.sh).

At the same time, in two threads:

* import: manager1 opens 导入客户, uploads a CSV of --rows new customers, waits for
  the preview (polling the progress partial each second, as the page does), clicks
  导入全部, waits for 导入完成 and downloads the import report;
* export: manager1 opens 导出客户 for the customers tagged --export-tag (run.sh tagged
  exactly --rows of them), asks for approval with a reason, admin approves on the
  request's page, manager1 polls the status partial until the file is built and
  downloads it.

Writes one JSON file (--out) with the heavy window (first heavy request to both jobs
finished), each job's times and counts, and the longest request; bench/l3/judge.py
judges it. Exit 1 when a flow could not be completed.
"""

from __future__ import annotations

import argparse
import csv
import html
import io
import json
import os
import re
import sys
import threading
import time
from typing import Any

import requests

PASSWORD = os.environ.get("CRM_DEMO_PASSWORD", "kehu-demo")
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
ONCE = re.compile(r'name="once_token" value="([^"]+)"')
STATUS = re.compile(r'data-status="(\w+)"')
PROGRESS = re.compile(r"(\d+) / (\d+)")
POLL_SECONDS = 1.0
# L3 asks < 60 s; waiting up to 10 times that still reports how long a slow job took.
GIVE_UP_SECONDS = int(os.environ.get("L3_GIVE_UP", "600"))
IMPORT_TAG = "L3导入"


class Browser:
    """One signed-in person: a cookie session; every request's duration is kept."""

    def __init__(self, base: str, username: str, durations: list[float]) -> None:
        self.base = base
        self.username = username
        self.durations = durations
        self.session = requests.Session()
        self.session.trust_env = False  # loopback only, never a proxy

    def send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 90)
        if method == "POST":
            kwargs.setdefault("headers", {})["Referer"] = self.base + path
        began = time.monotonic()
        response = self.session.request(method, self.base + path, **kwargs)
        self.durations.append(time.monotonic() - began)
        if response.status_code != 200:
            raise RuntimeError(f"{method} {path}: HTTP {response.status_code}")
        return response

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.send("GET", path, **kwargs)

    def post(self, path: str, page: str, **fields: Any) -> requests.Response:
        """Post a form of `page` with its CSRF (and one-time) token, as a browser."""
        data = {"csrfmiddlewaretoken": _first(CSRF, page)}
        once = ONCE.search(page)
        if once:
            data["once_token"] = once.group(1)
        files = fields.pop("files", None)
        data.update(fields)
        return self.send("POST", path, data=data, files=files)

    def login(self) -> Browser:
        page = self.get("/accounts/login/").text
        answer = self.post(
            "/accounts/login/", page, username=self.username, password=PASSWORD
        )
        if "/accounts/login/" in answer.url:
            raise RuntimeError(f"sign-in as {self.username} failed")
        return self

    def wait_for(self, path: str, until: set[str]) -> str:
        """Poll a status partial (as htmx does) until its data-status is in `until`."""
        deadline = time.monotonic() + GIVE_UP_SECONDS
        while True:
            page = self.get(path, headers={"HX-Request": "true"}).text
            status = _first(STATUS, page)
            if status in until:
                return status
            if time.monotonic() > deadline:
                done = PROGRESS.search(page)
                shown = f" ({done.group(1)} / {done.group(2)} rows)" if done else ""
                raise RuntimeError(
                    f"{path} still {status}{shown} after {GIVE_UP_SECONDS} s"
                )
            time.sleep(POLL_SECONDS)


def _first(pattern: re.Pattern[str], text: str) -> str:
    match = pattern.search(text)
    if match is None:
        raise RuntimeError(f"page without {pattern.pattern!r}")
    return html.unescape(match.group(1))


def import_file(rows: int) -> bytes:
    """`rows` new, valid customers; 177 is a prefix neither seed_demo nor L1 uses."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["名称", "电话", "类型", "阶段", "等级", "省份", "城市", "标签", "备注"]
    )
    for i in range(rows):
        writer.writerow(
            [f"导入客户{i:05d}", f"177{i:08d}", "业主", "潜在", "BC"[i % 2],
             "海南省", "海口市", IMPORT_TAG, "L3 压测导入"]
        )  # fmt: skip
    return out.getvalue().encode("utf-8-sig")


def run_import(who: Browser, rows: int, result: dict[str, Any]) -> None:
    page = who.get("/customers/import/").text
    started = time.time()
    answer = who.post(
        "/customers/import/",
        page,
        files={"file": ("l3-import.csv", import_file(rows), "text/csv")},
    )
    job = re.search(r"/customers/import/(\d+)/$", answer.url)
    if job is None:
        raise RuntimeError(f"upload refused, stayed on {answer.url}")
    path = f"/customers/import/{job.group(1)}/"
    status = who.wait_for(path + "progress/", {"ready", "failed", "cancelled"})
    result["validated_s"] = round(time.time() - started, 1)
    if status != "ready":
        raise RuntimeError(f"import validation ended {status}")
    page = who.get(path).text
    confirmed = time.time()
    who.post(path + "confirm/", page)
    status = who.wait_for(path + "progress/", {"done", "failed"})
    result["executed_s"] = round(time.time() - confirmed, 1)
    result["total_s"] = round(time.time() - started, 1)
    if status != "done":
        raise RuntimeError(f"import ended {status}")
    report = who.get(path + "report.csv").content.decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(report)))[1:]
    # 行号, 名称, 电话, 结果, 原因, 客户编号: imported rows name their customer.
    result["report_rows"] = len(lines)
    result["imported"] = sum(1 for line in lines if line[5])
    result["bad_rows_with_reason"] = sum(1 for line in lines if not line[5] and line[4])
    result["bad_rows_without_reason"] = sum(
        1 for line in lines if not line[5] and not line[4]
    )


def run_export(
    who: Browser, approver: Browser, tag: str, result: dict[str, Any]
) -> None:
    page = who.get("/customers/export/", params={"tag": tag}).text
    result["rows_on_confirm_page"] = int(
        _first(re.compile(r'data-testid="export-count">\D*(\d+)'), page)
    )
    action = _first(re.compile(r'action="(/customers/export/request/[^"]*)"'), page)
    started = time.time()
    answer = who.post(
        action, page, file_format="csv", reason="L3 压测：季度回访名单，交给呼叫中心"
    )
    request = re.search(r"/customers/export/requests/(\d+)/$", answer.url)
    if request is None:
        raise RuntimeError(f"export request refused, stayed on {answer.url}")
    path = f"/customers/export/requests/{request.group(1)}/"
    page = approver.get(path).text
    approved = time.time()
    approver.post(path + "decide/", page, decision="approve", note="L3 同意")
    status = who.wait_for(path, {"produced", "failed", "rejected", "expired"})
    result["built_s"] = round(time.time() - approved, 1)
    if status != "produced":
        raise RuntimeError(f"export ended {status}")
    content = who.get(path + "download/").content.decode("utf-8-sig")
    result["total_s"] = round(time.time() - started, 1)
    lines = list(csv.reader(io.StringIO(content)))[1:]
    result["file_rows"] = len(lines)
    result["file_rows_with_tag"] = sum(1 for line in lines if tag in line[14])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--export-tag", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    durations: list[float] = []
    manager_import = Browser(args.base, "manager1", durations).login()
    manager_export = Browser(args.base, "manager1", durations).login()
    admin = Browser(args.base, "admin", durations).login()
    results: dict[str, dict[str, Any]] = {"import": {}, "export": {}}
    errors: list[str] = []

    def job(name: str, work: Any, *work_args: Any) -> None:
        try:
            work(*work_args, results[name])
        except Exception as error:  # noqa: BLE001 - reported and judged
            errors.append(f"{name}: {error}")

    threads = [
        threading.Thread(
            target=job, args=("import", run_import, manager_import, args.rows)
        ),
        threading.Thread(
            target=job,
            args=("export", run_export, manager_export, admin, args.export_tag),
        ),
    ]
    heavy_start = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    heavy_end = time.time()
    summary = {
        "rows": args.rows,
        "heavy_start": heavy_start,
        "heavy_end": heavy_end,
        "requests": len(durations),
        "longest_request_s": round(max(durations, default=0.0), 2),
        "errors": errors,
        **results,
    }
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(summary, handle, ensure_ascii=False, indent=2)
    print(f"L3 heavy jobs: {json.dumps(summary, ensure_ascii=False)}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
