"""The layers of docs/architecture.md hold, and the extension points the platform offers
(home panels, navbar items, role grants) are filled by the apps, not by the platform."""

from __future__ import annotations

import subprocess  # nosec B404 - runs the project's own lint-imports
import sys
import tomllib
from pathlib import Path

import pytest
from django.urls import reverse

from crm.accounts.roles import Role, permissions_of
from crm.core import home, navigation

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path, *, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # nosec B603 - fixed argv, no shell
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        env={"PYTHONPATH": str(pythonpath), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_code_keeps_every_layer_contract():
    result = lint_imports(ROOT, pythonpath=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_the_contracts_catch_a_platform_module_importing_a_domain(tmp_path):
    """The same [tool.importlinter] table, on a tree where crm imports customers and
    customers imports service: both contracts break."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][
        "importlinter"
    ]
    lines = [
        "[tool.importlinter]",
        f"root_packages = {config['root_packages']!r}",
    ]
    for contract in config["contracts"]:
        lines.append("[[tool.importlinter.contracts]]")
        lines += [f"{key} = {value!r}" for key, value in contract.items()]
    (tmp_path / "pyproject.toml").write_text("\n".join(lines).replace("'", '"') + "\n")
    for package in config["root_packages"]:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "crm" / "seeding.py").write_text("import customers.models\n")
    (tmp_path / "customers" / "models.py").write_text("from service import views\n")
    (tmp_path / "service" / "views.py").write_text("import crm\n")

    result = lint_imports(tmp_path, pythonpath=tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Contracts: 0 kept, 2 broken." in result.stdout
    assert "crm.seeding -> customers.models" in result.stdout
    assert "customers.models -> service.views" in result.stdout


def test_every_role_home_page_has_panels_from_the_apps():
    owners = {
        role: {panel.template.split("/")[0] for panel in home.panels_for(role)}
        for role in Role
    }
    # The service recovery's panel (satisfaction) is every team lead's, whatever the role.
    assert owners == {
        # The personal figures (个人指标) come from the scorecard.
        Role.SALES: {"customers", "satisfaction", "scorecard"},
        Role.SERVICE: {"service", "satisfaction", "scorecard"},
        Role.MANAGER: {"dashboards", "satisfaction"},  # replaces customers' overview
        Role.ADMIN: {"customers", "core", "satisfaction"},
    }


def test_the_navbar_is_in_the_registered_order():
    assert [item.url_name for item in navigation.items()] == [
        "home",
        "customers:customer_list",
        "deals:deal_list",
        "service:ticket_queue",
        "property:project_list",
        "handover:event_list",
        "handover:onsite_home",
        "defects:defect_list",
        "handover:board_current",
        "service:workorder_list",
        "recovery:task_list",
        "dashboards:dashboard",
        "segments:segment_list",
        "value:overview",
        "scorecard:scorecard",
        "satisfaction:survey_list",
        "settings:index",
        "admin:index",
    ]


def test_role_grants_come_from_the_apps_that_own_the_permissions():
    assert "customers.view_customer" in permissions_of(Role.SERVICE)
    assert "customers.add_customer" not in permissions_of(Role.SERVICE)
    assert "customers.delete_customer" in permissions_of(Role.ADMIN)
    assert "customers.delete_customer" not in permissions_of(Role.MANAGER)
    assert "service.change_ticket" not in permissions_of(Role.SALES)


@pytest.mark.django_db
def test_a_sales_rep_in_a_team_sees_the_navbar_items_in_order(login, sales_rep):
    response = login(sales_rep).get(reverse("home"))
    entries = response.context["nav_items"]
    labels = [str(entry["label"]) for entry in entries]
    expected = ["首页", "客户", "商机", "服务台", "入伙交付"]
    if sales_rep.team_id:
        expected.append("后台工单")
    expected += ["服务补救", "分析"]
    assert labels == expected
    # Groups are dropdowns holding their items in the registered order.
    children = {
        str(entry["label"]): [str(child["label"]) for child in entry["children"]]
        for entry in entries
        if entry.get("children")
    }
    assert children == {
        "入伙交付": ["房产", "入伙", "现场交付", "问题整改"],
        "分析": ["看板", "客户分群", "客户价值"],
    }
    body = response.content.decode()
    assert 'data-nav-group="analysis"' in body
    assert 'data-nav-group="handover"' in body
