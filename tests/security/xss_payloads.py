"""Stored-XSS payloads (docs/security.md, S5) and the scanner that finds them unescaped.

The scanner parses the page with lxml and looks at what a browser would run: script
elements, event-handler attributes, `javascript:`/`data:` URLs in link and source
attributes, and elements that only an injected payload would bring (iframe, svg, math,
object, embed). A few raw-text checks catch what parsing smooths over (a closed
textarea followed by markup, server-side template syntax that was evaluated).
"""

from __future__ import annotations

import re

import lxml.html

LONG_PAYLOAD = ("<script>alert('long')</script>" + "长" * 60) * 110  # > 10,000 chars

PAYLOADS: list[str] = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg/onload=alert(1)>",
    "</textarea><script>alert(1)</script>",
    "</title><script>alert(1)</script>",
    '" onmouseover="alert(1)',
    "' onfocus='alert(1)' autofocus='",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "<iframe src=javascript:alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<body onload=alert(1)>",
    "{{7*7}}",
    "XQ{{7*7}}QX",
    '{% now "Y" %}',
    'XN{% now "Y" %}NX',
    "XD${7*7}DX",
    "</script><script>alert(1)</script>",
    "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "%3Cscript%3Ealert(1)%3C/script%3E",
    "\u202egnp.exe",
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<a href=' javascript:alert(1)'>x</a>",
    "<form><button formaction=javascript:alert(1)>x</button></form>",
    "<object data=javascript:alert(1)>",
    "<embed src=javascript:alert(1)>",
    "<img src=x onerror=alert(1)//",
    "XV{{ request.user.username }}VX",
    "<style>@import'//evil.example/x.css';</style>",
    LONG_PAYLOAD,
]
# Rejected by every form (PostgreSQL text cannot hold NUL): used by the NUL checks.
NUL_PAYLOAD = '<img src="x\x00" onerror=alert(1)>'

EVENT_ATTRIBUTE = re.compile(r"^on[a-z]+$")
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "xlink:href", "poster"}
FOREIGN_TAGS = {"iframe", "svg", "math", "object", "embed", "mglyph", "animate"}
RAW_MARKERS = [
    ("closed textarea", re.compile(r"</textarea>\s*<(script|img|svg)", re.IGNORECASE)),
    ("evaluated {{7*7}}", re.compile(r"XQ49QX")),
    ("evaluated {% now %}", re.compile(r"XN\d{4}NX")),
    ("evaluated ${7*7}", re.compile(r"XD49DX")),
    # Evaluated, the payload becomes XV<username>VX (every test user is xss_…, and no
    # user renders as XVVX). Anchored so that a random CSRF or form token that happens to
    # hold "XV…VX" (the looser pattern matched one, now and then) is not mistaken for it.
    (
        "evaluated {{ request.user }}",
        re.compile(r"(?<![\w-])XV(?:xss_\w*)?VX(?![\w-])"),
    ),
    ("raw <script", re.compile(r"<script(?![^>]*\bsrc=\"/static/)", re.IGNORECASE)),
    ("raw <svg/onload", re.compile(r"<svg/onload", re.IGNORECASE)),
    ("raw <iframe", re.compile(r"<iframe", re.IGNORECASE)),
]
_INVISIBLE = re.compile(r"[\x00-\x20\u200b-\u200f\u202a-\u202e\ufeff]")


def _dangerous_url(value: str) -> bool:
    compact = _INVISIBLE.sub("", value).lower()
    return compact.startswith(("javascript:", "vbscript:", "data:"))


def unescaped_markers(html: str) -> list[str]:
    """Everything in `html` that shows a payload reached the page as markup."""
    problems = [name for name, pattern in RAW_MARKERS if pattern.search(html)]
    if not html.strip():
        return problems
    document = lxml.html.document_fromstring(html)
    for element in document.iter():
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag.lower() in FOREIGN_TAGS:
            problems.append(f"<{tag}> element")
        if tag.lower() == "script":
            src = element.get("src", "")
            if not src.startswith("/static/") or (element.text or "").strip():
                problems.append(f"inline or foreign <script src={src!r}>")
        for name, value in element.attrib.items():
            name = name.lower()
            if EVENT_ATTRIBUTE.match(name):
                problems.append(f"<{tag} {name}=…>")
            if name in URL_ATTRIBUTES and _dangerous_url(value):
                problems.append(f"<{tag} {name}={value[:40]!r}>")
    return problems
