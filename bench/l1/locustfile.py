"""L1 load smoke (docs/benchmarks.md, "L1 load smoke"): real users over real HTTP.

Each simulated user signs in through the login form (CSRF token, session cookie) as a
demo salesperson or service agent and then works as one would, with think time:

    60 %  list or search   (the customer list / the ticket queue, searches submitted
                            through the page's own search form: by name, pinyin,
                            initials, the last four digits of a phone, a whole phone)
    25 %  detail           (a customer's 360° page / a ticket's page)
    10 %  edit             (a customer saved through its edit form / a note on a ticket)
     5 %  create           (a new customer / a contact logged on a customer)

Forms are read from the pages (every field with its current value) and submitted as the
browser would, so a form that gains a field keeps working. Every request that does not
end in 200 on the expected page counts as an error: L1 requires none.

Run by bench/l1/run.sh (`make load`, CI step h); L1_PHONES names a file of real phone
numbers (one per line) for the whole-phone searches.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import uuid
from html.parser import HTMLParser
from typing import Any

from locust import HttpUser, between, events, task

PASSWORD = os.environ.get("CRM_DEMO_PASSWORD", "kehu-demo")
NAME_QUERIES = ["王", "李", "张", "刘", "陈", "杨", "王芳", "李伟", "张伟"]
PINYIN_QUERIES = ["wang", "li", "zhang", "liu", "chen", "wf", "zw", "lw"]
CUSTOMER_LINK = re.compile(r'href="/customers/(\d+)/"')
TICKET_LINK = re.compile(r'href="/service/t/(\d+)/"')
# Each process numbers its new customers' phones from its own random base; 198 is a
# prefix the demo data does not use, so a new phone never collides with a seeded one.
PHONE_SERIAL = itertools.count(random.SystemRandom().randrange(10_000_000))  # noqa: S311


def _phones() -> list[str]:
    path = os.environ.get("L1_PHONES", "")
    if not path or not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


PHONES = _phones()

# Every request's time and outcome, for bench/l1/judge.py: exact percentiles over the
# working requests (sign-in is excluded: its password hashing is slow by design).
TIMINGS: list[tuple[str, str, float, bool]] = []


@events.request.add_listener
def _record(
    request_type: str, name: str, response_time: float, exception: Any, **_: Any
) -> None:
    TIMINGS.append((request_type, name, response_time, exception is None))


@events.quitting.add_listener
def _write(**_: Any) -> None:
    path = os.environ.get("L1_TIMINGS", "")
    if path:
        import json

        with open(path, "w", encoding="utf-8") as handle:
            json.dump(TIMINGS, handle)


class Forms(HTMLParser):
    """Every <form> of a page with the values a browser would submit unchanged."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []
        self._select: str | None = None
        self._select_first: str | None = None
        self._select_chosen = False
        self._textarea: str | None = None
        self.feed(html)

    def _current(self) -> dict[str, Any] | None:
        return self.forms[-1] if self.forms and self.forms[-1]["open"] else None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self.forms.append({"attrs": a, "fields": [], "names": set(), "open": True})
            return
        form = self._current()
        if form is None:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            form["names"].add(name)
            if kind in {"submit", "button", "image", "file", "reset"}:
                return
            if kind in {"checkbox", "radio"}:
                if "checked" in a:
                    form["fields"].append((name, a.get("value", "on")))
                return
            form["fields"].append((name, a.get("value", "")))
        elif tag == "select" and name:
            form["names"].add(name)
            self._select, self._select_first, self._select_chosen = name, None, False
        elif tag == "option" and self._select:
            value = a.get("value", "")
            if self._select_first is None:
                self._select_first = value
            if "selected" in a and not self._select_chosen:
                form["fields"].append((self._select, value))
                self._select_chosen = True
        elif tag == "textarea" and name:
            form["names"].add(name)
            self._textarea = name
            form["fields"].append((name, ""))

    def handle_data(self, data: str) -> None:
        form = self._current()
        if form is not None and self._textarea:
            name, text = form["fields"][-1]
            form["fields"][-1] = (name, text + data)

    def handle_endtag(self, tag: str) -> None:
        form = self._current()
        if tag == "select" and self._select and form is not None:
            if not self._select_chosen and self._select_first is not None:
                form["fields"].append((self._select, self._select_first))
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form" and form is not None:
            form["open"] = False

    def find(self, field: str, **attrs: str) -> dict[str, Any] | None:
        for form in self.forms:
            if field in form["names"] and all(
                form["attrs"].get(k.replace("_", "-")) == v for k, v in attrs.items()
            ):
                return form
        return None


def fill(form: dict[str, Any], **values: str) -> list[tuple[str, str]]:
    """The form's own fields with `values` replacing (or adding) the named ones."""
    data = [(k, v) for k, v in form["fields"] if k not in values]
    return data + list(values.items())


class KehuUser(HttpUser):
    abstract = True
    wait_time = between(0.5, 2.0)
    usernames: tuple[str, ...] = ()

    def on_start(self) -> None:
        self.username = random.choice(self.usernames)  # noqa: S311
        self.customers: list[str] = []
        with self.client.get(
            "/accounts/login/", name="login", catch_response=True
        ) as page:
            form = Forms(page.text).find("username")
            if form is None:
                page.failure("no login form")
                return
        with self.client.post(
            "/accounts/login/",
            data=fill(form, username=self.username, password=PASSWORD),
            headers={"Referer": self.client.base_url + "/accounts/login/"},
            name="login",
            catch_response=True,
        ) as response:
            if response.status_code != 200 or "/accounts/login/" in response.url:
                response.failure(f"login as {self.username} failed")

    # --- helpers --------------------------------------------------------------------

    def page(self, url: str, name: str, expect: str | None = None) -> str:
        with self.client.get(url, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return ""
            if expect and expect not in response.text:
                response.failure(f"{expect!r} missing")
                return ""
            return response.text

    def submit(
        self,
        form: dict[str, Any],
        data: list[tuple[str, str]],
        name: str,
        referer: str,
        lands_on: re.Pattern[str],
        ok_text: str = "",
    ) -> str:
        action = form["attrs"].get("action") or referer
        method = form["attrs"].get("method", "get").lower()
        send = self.client.post if method == "post" else self.client.get
        payload = {"data": data} if method == "post" else {"params": data}
        with send(
            action,
            name=name,
            headers={"Referer": self.client.base_url + referer},
            catch_response=True,
            **payload,
        ) as response:
            path = response.url.split("//", 1)[-1].split("/", 1)[-1].split("#")[0]
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
            elif not lands_on.match("/" + path) and not (
                ok_text and ok_text in response.text
            ):
                response.failure(f"stayed on /{path} (form refused)")
            return response.text


class SalesUser(KehuUser):
    weight = 3
    usernames = ("sales1", "sales2")

    def remember(self, html: str) -> None:
        found = CUSTOMER_LINK.findall(html)
        if found:
            self.customers = (found + self.customers)[:200]

    def customer(self) -> str | None:
        if not self.customers:
            self.remember(self.page("/customers/", "customers.list"))
        return random.choice(self.customers) if self.customers else None  # noqa: S311

    @task(60)
    def list_or_search(self) -> None:
        html = self.page("/customers/", "customers.list", 'data-testid="customer-')
        self.remember(html)
        if random.random() < 0.25:  # noqa: S311 - a quarter only browse the list
            return
        roll = random.random()  # noqa: S311
        if roll < 0.4:
            query, name = random.choice(NAME_QUERIES), "customers.search_name"  # noqa: S311
        elif roll < 0.7:
            query, name = random.choice(PINYIN_QUERIES), "customers.search_pinyin"  # noqa: S311
        elif roll < 0.85 or not PHONES:
            query = f"{random.randrange(10_000):04d}"  # noqa: S311
            name = "customers.search_phone_tail"
        else:
            query, name = random.choice(PHONES), "customers.search_phone"  # noqa: S311
        form = Forms(html).find("q", role="search")
        if form is None:
            return
        found = self.submit(
            form,
            fill(form, q=query),
            name,
            "/customers/",
            re.compile(r"^/customers/(\?.*)?$"),
        )
        self.remember(found)

    @task(25)
    def detail(self) -> None:
        pk = self.customer()
        if pk:
            self.page(f"/customers/{pk}/", "customers.detail")

    @task(10)
    def edit(self) -> None:
        pk = self.customer()
        if not pk:
            return
        url = f"/customers/{pk}/edit/"
        form = Forms(self.page(url, "customers.edit_form")).find("version")
        if form is None:
            return
        note = f"L1 回访 {uuid.uuid4().hex[:8]}"
        self.submit(
            form,
            fill(form, notes=note),
            "customers.edit",
            url,
            re.compile(rf"^/customers/{pk}/$"),
            # Two users saving one customer at once: the second is told, not overwritten.
            ok_text="该客户已被他人修改",
        )

    @task(5)
    def create(self) -> None:
        url = "/customers/new/"
        form = Forms(self.page(url, "customers.create_form")).find("name")
        if form is None:
            return
        serial = next(PHONE_SERIAL) % 100_000_000
        self.submit(
            form,
            fill(
                form,
                name=f"压测客户{serial:08d}",
                phone=f"198{serial:08d}",
                province="广东省",
                city="深圳市",
            ),
            "customers.create",
            url,
            re.compile(r"^/customers/\d+/$"),
        )


class ServiceUser(KehuUser):
    weight = 1
    usernames = ("service1",)

    def remember(self, html: str) -> None:
        self.tickets = TICKET_LINK.findall(html) or getattr(self, "tickets", [])
        found = CUSTOMER_LINK.findall(html)
        if found:
            self.customers = (found + self.customers)[:200]

    @task(60)
    def queue_or_search(self) -> None:
        html = self.page("/service/", "service.queue")
        self.remember(html)
        if random.random() < 0.5 or not getattr(self, "tickets", None):  # noqa: S311
            return
        form = Forms(html).find("q", role="search")
        if form is None:
            return
        self.submit(
            form,
            fill(form, q=random.choice(self.tickets)),  # noqa: S311
            "service.search",
            "/service/",
            re.compile(r"^/service/(t/\d+/)?(\?.*)?$"),
        )

    @task(25)
    def detail(self) -> None:
        if not getattr(self, "tickets", None):
            self.remember(self.page("/service/", "service.queue"))
        if self.tickets:
            reference = random.choice(self.tickets)  # noqa: S311
            self.remember(self.page(f"/service/t/{reference}/", "service.ticket"))

    @task(10)
    def note(self) -> None:
        if not getattr(self, "tickets", None):
            return
        reference = random.choice(self.tickets)  # noqa: S311
        url = f"/service/t/{reference}/"
        form = Forms(self.page(url, "service.ticket")).find(
            "body", data_testid="reply-form"
        )
        if form is None:
            return
        self.submit(
            form,
            fill(form, kind="note", body=f"L1 内部备注 {uuid.uuid4().hex[:8]}"),
            "service.note",
            url,
            re.compile(rf"^/service/t/{reference}/$"),
        )

    @task(5)
    def log_contact(self) -> None:
        if not self.customers:
            self.remember(self.page("/customers/", "customers.list"))
        if not self.customers:
            return
        pk = random.choice(self.customers)  # noqa: S311
        url = f"/customers/{pk}/"
        form = Forms(self.page(url, "customers.detail")).find(
            "summary", data_testid="contact-form"
        )
        if form is None:
            return
        self.submit(
            form,
            fill(form, summary=f"L1 来电咨询 {uuid.uuid4().hex[:8]}"),
            "customers.contact",
            url,
            re.compile(rf"^/customers/{pk}/(contacts/)?$"),
        )
