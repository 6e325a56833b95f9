"""S9: hostile uploads through the real pages (ticket attachments, customer imports).

What tests/service and tests/customers already check (wrong extension, wrong magic
bytes, random stored name, download headers of one PDF) is not repeated; here the
sizes at the limit, hostile names (path, NUL, 300 characters, Chinese, RTL override),
polyglots and SVG, and the rule that no stored file is ever served inline as a page.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from customers.models import ImportJob
from service import services
from service.models import TicketAttachment

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
LIMIT = services.MAX_UPLOAD_BYTES
RTL = "\u202e"
# Characters that change how a name is displayed or where it points.
HOSTILE_CHARACTERS = {"/", "\\", "\x00", RTL, "\u202d", "\u200f", "\u2066", "\u2067"}


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def ticket(service_agent, sales_rep):
    from customers import services as customer_services

    customer = customer_services.customer_create(
        by=sales_rep, data={"name": "上传测试"}
    )
    return services.ticket_create(
        by=service_agent,
        customer=customer,
        ticket_type="repair",
        channel="hotline",
        subject="上传测试",
        description="附件",
    )


@pytest.fixture
def agent(service_agent) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(service_agent)
    return client


def _upload(client: Client, ticket, name: str, content: bytes):  # noqa: ANN001, ANN202
    ticket.refresh_from_db()
    return client.post(
        reverse("service:attachment_upload", args=[ticket.reference]),
        {"version": ticket.version, "files": [SimpleUploadedFile(name, content)]},
    )


def _served_safely(client: Client, attachment: TicketAttachment) -> None:
    url = reverse("service:attachment_download", args=[attachment.pk])
    response = client.get(url)
    assert response.status_code == 200
    b"".join(response.streaming_content)
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    served_as = response["Content-Type"].split(";")[0].strip().lower()
    assert served_as not in {"text/html", "image/svg+xml", "application/xhtml+xml"}
    assert not served_as.startswith("text/")
    assert RTL not in response["Content-Disposition"]


def _stored_safely(attachment: TicketAttachment, media: Path) -> None:
    path = Path(attachment.file.path).resolve()
    assert path.is_relative_to(media.resolve())
    static_roots = [Path(settings.STATIC_ROOT), *map(Path, settings.STATICFILES_DIRS)]
    assert not any(path.is_relative_to(root.resolve()) for root in static_roots)
    stem = path.stem
    assert len(stem) == 32 and all(c in "0123456789abcdef" for c in stem)
    assert not HOSTILE_CHARACTERS & set(attachment.original_name)
    assert 0 < len(attachment.original_name) <= 200


@pytest.mark.parametrize(
    "name",
    [
        "../../x.png",
        "..\\..\\windows\\x.png",
        "bad\x00name.png",
        "长" * 296 + ".png",
        "现场照片（客厅）.png",
        f"invoice{RTL}gnp.png",
        f"{RTL}photo.png",
    ],
    ids=["dotdot", "backslashes", "nul", "300-chars", "chinese", "rtl", "rtl-first"],
)
def test_hostile_names_are_stored_under_random_names_and_served_as_attachments(
    agent, ticket, media, name
):
    response = _upload(agent, ticket, name, PNG)
    # A good image with a bad name is accepted; the name is cleaned, never used as a path.
    assert response.status_code == 302, response.status_code
    attachment = TicketAttachment.objects.get()
    _stored_safely(attachment, media)
    _served_safely(agent, attachment)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.png", b""),
        ("page.png", b"<html><script>alert(1)</script></html>"),
        ("page.html", b"<html><script>alert(1)</script></html>"),
        ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>1</script>'),
        ("drawing.png", b'<svg xmlns="http://www.w3.org/2000/svg"><script>1</script>'),
        ("evil.exe", b"MZ" + b"\x00" * 64),
        (f"evil{RTL}gnp.exe", b"MZ" + b"\x00" * 64),
    ],
    ids=["empty", "html-as-png", "html", "svg", "svg-as-png", "exe", "rtl-exe"],
)
def test_bad_files_are_refused_with_an_error(agent, ticket, media, name, content):
    response = _upload(agent, ticket, name, content)
    assert response.status_code == 400
    assert "alert-danger" in response.text or "invalid-feedback" in response.text
    assert not TicketAttachment.objects.exists()
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))


def test_a_png_html_polyglot_is_only_ever_downloaded(agent, ticket, media):
    polyglot = PNG + b"<html><script>alert(document.cookie)</script></html>"
    assert _upload(agent, ticket, "poly.png", polyglot).status_code == 302
    attachment = TicketAttachment.objects.get()
    assert attachment.content_type == "image/png"
    _stored_safely(attachment, media)
    _served_safely(agent, attachment)


def test_exactly_the_limit_is_accepted_and_one_byte_more_refused(agent, ticket, media):
    at_limit = PNG + b"\x00" * (LIMIT - len(PNG))
    assert _upload(agent, ticket, "big.png", at_limit).status_code == 302
    attachment = TicketAttachment.objects.get()
    assert attachment.size == LIMIT
    response = _upload(agent, ticket, "bigger.png", at_limit + b"\x00")
    assert response.status_code == 400
    assert "10 MB" in response.text
    assert TicketAttachment.objects.count() == 1


def test_no_stored_attachment_is_served_inline(agent, ticket, media):
    """Whatever got stored, by whatever type: the download view never renders it."""
    for name, content in (
        ("a.png", PNG),
        ("b.jpg", b"\xff\xd8\xff" + b"\x00" * 16),
        ("c.pdf", b"%PDF-1.4 <html><script>1</script>"),
        ("d.webp", b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 16),
    ):
        assert _upload(agent, ticket, name, content).status_code == 302, name
    attachments = list(TicketAttachment.objects.all())
    assert len(attachments) == 4
    for attachment in attachments:
        _served_safely(agent, attachment)


# --- customer imports --------------------------------------------------------------------


def _csv(rows: list[list[str]]) -> bytes:
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    return text.getvalue().encode("utf-8-sig")


@pytest.fixture
def importer(manager) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(manager)
    return client


@pytest.mark.parametrize(
    "name",
    [
        "../../客户.csv",
        "bad\x00name.csv",
        "名" * 296 + ".csv",
        f"list{RTL}vsc.csv",
    ],
    ids=["dotdot", "nul", "300-chars", "rtl"],
)
def test_import_names_never_reach_the_file_system(importer, media, name):
    content = _csv([["名称"], ["导入甲"]])
    response = importer.post(
        reverse("customers:import_upload"), {"file": SimpleUploadedFile(name, content)}
    )
    assert response.status_code == 302
    job = ImportJob.objects.get()
    stored = Path(job.file.path).resolve()
    assert stored.is_relative_to(media.resolve())
    assert stored.parent.name == "imports" and stored.suffix == ".csv"
    assert "名" not in stored.name and "客户" not in stored.name
    assert not HOSTILE_CHARACTERS & set(job.original_name)
    assert len(job.original_name) <= 200


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.csv", b""),
        ("page.csv", b"<html><script>alert(1)</script></html>"),
        ("page.html", b"<html><script>alert(1)</script></html>"),
        ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>1</script>'),
    ],
    ids=["empty", "html-as-csv", "html", "svg"],
)
def test_bad_import_files_are_refused_with_an_error(importer, media, name, content):
    response = importer.post(
        reverse("customers:import_upload"), {"file": SimpleUploadedFile(name, content)}
    )
    assert response.status_code == 200
    assert "invalid-feedback" in response.text or "alert-danger" in response.text
    assert not ImportJob.objects.exists()


def test_import_at_the_size_limit_and_one_byte_over(importer, media, settings):
    content = _csv([["名称"], ["导入乙"]])
    settings.KEHU_IMPORT_MAX_BYTES = len(content)
    url = reverse("customers:import_upload")
    at_limit = importer.post(url, {"file": SimpleUploadedFile("a.csv", content)})
    assert at_limit.status_code == 302
    over = importer.post(url, {"file": SimpleUploadedFile("b.csv", content + b"\n")})
    assert over.status_code == 200
    assert ImportJob.objects.count() == 1
