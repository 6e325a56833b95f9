"""How one search box finds customers by Chinese name, pinyin, initials or phone digits.

Name pieces: a GIN index on `name_grams` (every 1- and 2-character piece of the name)
answers one- and two-character searches such as 王 or 张三, which are most Chinese
searches and which pg_trgm cannot serve from its index. Longer searches intersect their
2-character pieces in the same index and re-check the whole string.
Pinyin: `name_pinyin` (zhangsan) and `name_initials` (zs), matched as prefixes through
varchar_pattern_ops indexes. Phones: a trigram index on CustomerPhone.number finds any
run of three or more digits, such as the last four.
Organisations: the customer list also finds persons by their organisation's name (万科
finds 万科 and the people whose 所属机构 it is). The matching organisations are looked up
first through the same name indexes, a bounded number of them, and their people then
through the organization_id index.
"""

from __future__ import annotations

import re

from django.db.models import Q
from django.db.models.functions import Upper
from django.utils.translation import gettext
from pypinyin import lazy_pinyin

from crm.core import bounds

FULL_WIDTH = (
    {0xFF10 + i: ord("0") + i for i in range(10)}
    | {0xFF21 + i: ord("A") + i for i in range(26)}
    | {0xFF41 + i: ord("a") + i for i in range(26)}
)
PHONE_QUERY = re.compile(r"^[\d\s\-+()]+$")
PINYIN_QUERY = re.compile(r"^[A-Za-z]+$")
MIN_PHONE_DIGITS = 3
# A phone fragment matching more customers than this is too vague to be useful.
MAX_PHONE_MATCHES = 5_000
# A name that matches more customers, or more organisations, than these is too vague to
# list the organisations' people too (王, li, 有限公司); the customers named so are
# still found.
MAX_NAME_MATCHES = 1_000
MAX_ORGANIZATION_MATCHES = 200


# Surnames whose reading differs from the character's everyday one (曾 is zeng, not ceng).
SURNAME_READINGS = {
    "曾": "zeng",
    "单": "shan",
    "解": "xie",
    "仇": "qiu",
    "翟": "zhai",
    "区": "ou",
    "查": "zha",
    "朴": "piao",
    "缪": "miao",
    "盖": "ge",
    "尉": "yu",
    "乐": "yue",
    "任": "ren",
    "召": "shao",
    "洗": "xian",
    "冼": "xian",
    "黑": "he",
    "隗": "wei",
    "繁": "po",
    "覃": "qin",
    "员": "yun",
    "折": "she",
    "褚": "chu",
    "秘": "bi",
}


def pinyin_of(name: str) -> tuple[str, str]:
    """('zhangsan', 'zs') for 张三; Latin letters are kept as they are, lower-cased.

    The first character is read as a surname when it has a surname reading.
    """
    syllables = lazy_pinyin(name, errors=lambda chars: [c for c in chars])
    if name and name[0] in SURNAME_READINGS and syllables:
        syllables[0] = SURNAME_READINGS[name[0]]
    letters = [
        s.lower() for s in syllables if s.strip() and s.isascii() and s.isalnum()
    ]
    full = "".join(letters)
    initials = "".join(s[0] for s in letters)
    return full[:300], initials[:100]


def normalise(query: str) -> str:
    # NUL cannot reach PostgreSQL text; full-width digits and letters become ASCII.
    return query.replace("\x00", "").translate(FULL_WIDTH).strip()


def _without_country_code(digits: str) -> str:
    """13812345678 from 8613812345678 or 008613812345678 (caller ID shows +86)."""
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) >= 10:
            return digits[len(prefix) :]
    return digits


def name_grams(text: str) -> list[str]:
    """The 2-character pieces of a search string (or the string itself if shorter)."""
    text = text.lower()
    if len(text) <= 2:
        return [text]
    return sorted({text[i : i + 2] for i in range(len(text) - 1)})


def condition(query: str, *, with_members: bool = False) -> Q | None:
    """The Q that finds `query`, or None when the query is too short to search.

    `with_members` also finds the persons whose organisation is named `query` (one
    more query, run here, as for phones).
    """
    from customers.models import CustomerPhone

    query = normalise(query)
    if not query:
        return None
    if PHONE_QUERY.match(query):
        digits = _without_country_code(re.sub(r"\D", "", query))
        if len(digits) < MIN_PHONE_DIGITS:
            return Q(pk__in=[])
        # Ids first, from the trigram index: given a correlated EXISTS, the planner
        # misjudges how many phones match and walks the whole recency index instead.
        ids = list(
            CustomerPhone.objects.filter(number__contains=digits).values_list(
                "customer_id", flat=True
            )[:MAX_PHONE_MATCHES]
        )
        return Q(pk__in=ids)
    by_name = _name_condition(query)
    if with_members:
        organizations = organization_ids(query)
        if organizations:
            by_name |= Q(organization_id__in=organizations)
    return by_name


def _name_condition(query: str) -> Q:
    """Name pieces, and pinyin when `query` is letters only (normalised already)."""
    by_name = Q(name_grams__contains=name_grams(query))
    if len(query) > 2:
        by_name &= Q(name__icontains=query)
    if PINYIN_QUERY.match(query):
        upper = query.upper()
        # Upper() matches the expression indexes customer_pinyin_prefix/_initials_prefix.
        return (
            by_name
            | Q(name_pinyin_upper__startswith=upper)
            | Q(name_initials_upper__startswith=upper)
        )
    return by_name


def organization_ids(query: str) -> list[int]:
    """The ids of the organisations named `query`; [] when the name is too vague (it
    names more than MAX_NAME_MATCHES customers or MAX_ORGANIZATION_MATCHES
    organisations), is a phone or is one character.

    Not limited to the user's scope: it only widens a list that is filtered by scope
    afterwards, and a visible person's organisation is shown with them anyway.
    """
    from customers.models import Customer

    query = normalise(query)
    # One character (王, w) is a surname or an initial, not a company's name.
    if len(query) < 2 or PHONE_QUERY.match(query):
        return []
    # Every customer so named is read, not only organisations: the name indexes cover
    # persons too, and asking for organisations alone made PostgreSQL visit every one
    # of the 27,000 customers named wang or li at a million (120-490 ms) to find the
    # few organisations among them. Stopping at MAX_NAME_MATCHES bounds that work.
    named = list(
        annotate_for(Customer.objects.all(), query)
        .filter(_name_condition(query))
        .values_list("pk", "is_organization")[: MAX_NAME_MATCHES + 1]
    )
    if len(named) > MAX_NAME_MATCHES:
        return []
    ids = [pk for pk, is_organization in named if is_organization]
    return ids if len(ids) <= MAX_ORGANIZATION_MATCHES else []


def annotate_for(queryset, query: str):  # noqa: ANN001, ANN201 - QuerySet in, out
    """Add the upper-cased pinyin columns that `condition` filters on, when needed."""
    if PINYIN_QUERY.match(normalise(query)):
        return queryset.alias(
            name_pinyin_upper=Upper("name_pinyin"),
            name_initials_upper=Upper("name_initials"),
        )
    return queryset


# --- phone and ID searches stay out of URLs (ASVS V14.2.1) -----------------------------
# A URL lands in browser history, proxy and server access logs and Referer headers, so a
# search that looks like a phone or ID number travels in a POST body; the server keeps
# it in the session under a short random token and the address only carries ?s=<token>.

SENSITIVE_DIGITS = 7
# Filters carried into an address: far above any real list's, far below Django's
# 16,384-character redirect limit.
MAX_ADDRESS_PARAMS = 4_000
ID_NUMBER_QUERY = re.compile(r"\d{17}[\dXx]")
SEARCH_TOKENS_KEY = "kehu_search_tokens"
MAX_SEARCH_TOKENS = 20
# Never carried from a posted search form into the address.
NOT_IN_URL = ("csrfmiddlewaretoken", "page", "q", "s")


def is_sensitive(query: str) -> bool:
    """Seven or more digits (a phone, most of one) or an 18-character ID number."""
    text = normalise(query or "")
    return (
        sum(c.isdigit() for c in text) >= SENSITIVE_DIGITS
        or ID_NUMBER_QUERY.search(text) is not None
    )


def stash(session, query: str) -> str:  # noqa: ANN001 - a Django session
    """The token under which `query` is kept in the session (the same query, the same
    token); only the most recent MAX_SEARCH_TOKENS are kept."""
    import secrets

    tokens: dict[str, str] = dict(session.get(SEARCH_TOKENS_KEY, {}))
    for token, stored in tokens.items():
        if stored == query:
            return token
    token = secrets.token_urlsafe(9)
    tokens[token] = query
    while len(tokens) > MAX_SEARCH_TOKENS:
        tokens.pop(next(iter(tokens)))
    session[SEARCH_TOKENS_KEY] = tokens
    return token


def unstash(session, token: str) -> str:  # noqa: ANN001 - a Django session
    """The query a token stands for; an unknown or expired token searches nothing."""
    return session.get(SEARCH_TOKENS_KEY, {}).get(token or "", "")


def url_params(session, data, *, query_field: str = "q"):  # noqa: ANN001, ANN201
    """`data` (a QueryDict from a form) as it may appear in an address: a sensitive
    query replaced by its token, paging and the CSRF token dropped."""
    params = data.copy()
    # Bounded before it goes into an address: a 16 KB search made a redirect that
    # Django refused (DisallowedRedirect, logged as an error); now it is a 400 page.
    query = bounds.Params(params).search(query_field)
    for key in NOT_IN_URL:
        params.pop(key, None)
    params.pop(query_field, None)
    for key in [k for k, v in params.lists() if not any(v)]:
        params.pop(key)
    if query.strip():
        if is_sensitive(query):
            params["s"] = stash(session, query)
        else:
            params[query_field] = query
    return params


def resolved(session, data, *, query_field: str = "q"):  # noqa: ANN001, ANN201
    """`data` (request.GET) with the query a ?s= token stands for put back, or None
    when the address itself carries a sensitive query (the caller redirects)."""
    if is_sensitive(data.get(query_field, "")):
        return None
    params = data.copy()
    token = params.pop("s", [""])[-1]
    if token:
        params[query_field] = unstash(session, token)
    return params


def redirect_without_pii(request, path: str, data, *, query_field: str = "q"):  # noqa: ANN001, ANN201
    """303 to `path` with `data` as url_params: how a posted search lands on its list."""
    from django.http import HttpResponseRedirect

    params = url_params(request.session, data, query_field=query_field)
    if len(params.urlencode()) > MAX_ADDRESS_PARAMS:
        raise bounds.BadParameter(query_field, gettext("搜索条件太长。"))
    response = HttpResponseRedirect(f"{path}?{params.urlencode()}" if params else path)
    response.status_code = 303
    return response
