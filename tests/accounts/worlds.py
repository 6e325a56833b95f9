"""A fresh World of the access matrix (tests/accounts/test_access_matrix.py) for each
test, made of the conftest's personas: the fixture `world` of the modules that walk
the matrix's pages with a few tests each (MFA, CSRF, the header sweep). The matrix
itself makes its World once per module."""

from __future__ import annotations

import pytest

from tests.accounts.test_access_matrix import World


@pytest.fixture
def world(
    sales_rep,
    teammate,
    outsider,
    far_outsider,
    manager,
    service_agent,
    admin_user,
    readonly_user,
):
    return World(
        {
            "sales_rep": sales_rep,
            "teammate": teammate,
            "outsider": outsider,
            "far_outsider": far_outsider,
            "manager": manager,
            "service_agent": service_agent,
            "admin_user": admin_user,
            "readonly_user": readonly_user,
        }
    )
