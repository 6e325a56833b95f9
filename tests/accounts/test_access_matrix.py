"""Who may open which page, and whose records each role sees.

MATRIX lists every URL pattern of the project (bar Django's own admin pages,
set_language and static files) with the status each persona gets. A new page missing
from it fails `test_every_url_pattern_is_in_the_access_matrix`, so nobody ships a page
without deciding who may use it.

Object pages are opened on canary records: a customer of team A (`own_team`, owned by
sales_rep), of team B in the same department (`other_team`, owned by outsider), of
another department (`other_dept`, owned by far_outsider), and one in the public pool.
Their names are unique strings that no refused page, list or home page may contain.
Pages of records that the table opens on a missing id (`missing`) check the role gate
only: a role that may use the page gets 404, one that may not gets 403.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import URLResolver, get_resolver, reverse
from django.utils import timezone

from crm.accounts.roles import Role
from crm.notifications import services as notification_services
from crm.notifications.models import Notification
from customers import services as customer_services
from customers.models import Customer, ExportRequest
from service import services as service_services
from service.handover import services as handover_services
from tests import personas
from tests.factories import UserFactory
from tests.handover.builders import make_event

# A sweep of every page: .ci/run's step c (system PostgreSQL) leaves it to step b.
pytestmark = pytest.mark.sweep

CANARIES = {
    "own_team": "金丝雀甲组-Q7X2K",
    "other_team": "金丝雀乙组-M4R8T",
    "other_dept": "金丝雀华南-Z9W3P",
    "pool": "金丝雀公海-H5N6B",
    # An unverified contact (a caller the desk registered, /report/): the desk's only.
    "unverified": "金丝雀待核实-V3C8L",
}
OWNERS = {
    "own_team": "sales_rep",
    "other_team": "outsider",
    "other_dept": "far_outsider",
    "pool": None,
    "unverified": None,
}
PHONES = {
    "own_team": "13811110001",
    "other_team": "13811110002",
    "other_dept": "13811110003",
    "pool": "13811110004",
    "unverified": "13811110005",
}

ACTORS = (
    "anonymous",
    "sales_rep",
    "teammate",
    "outsider",
    "far_outsider",
    "manager",
    "service_agent",
    "admin_user",
    "readonly_user",
)

LOGIN = "login"  # 302 to the login page
PROBE = "probe"  # the public health probe: JSON, 200 or 503, never a login redirect
MISSING_ID = 987654321

# fmt: off
L, P = LOGIN, PROBE
# Customer-page columns, reused below: who sees a customer (or its ticket, asset ...)
# of each canary team under the default KEHU_VISIBILITY.
#                   anon  sales mate  out   far   mgr   svc   admin norole
SEES_A           = (L,    200,  200,  404,  404,  200,  200,  200,  403)
SEES_B           = (L,    404,  404,  200,  404,  200,  200,  200,  403)
SEES_FAR         = (L,    404,  404,  404,  200,  404,  200,  200,  403)
EDITS_A          = (L,    200,  200,  404,  404,  200,  403,  200,  403)
EDITS_B          = (L,    404,  404,  200,  404,  200,  403,  200,  403)
EDITS_FAR        = (L,    404,  404,  404,  200,  404,  403,  200,  403)
SAVES_A          = (L,    302,  302,  404,  404,  302,  403,  302,  403)
SAVES_B          = (L,    404,  404,  302,  404,  302,  403,  302,  403)
SAVES_FAR        = (L,    404,  404,  404,  302,  404,  403,  302,  403)
ANY_ROLE         = (L,    200,  200,  200,  200,  200,  200,  200,  403)
MANAGERS         = (L,    403,  403,  403,  403,  200,  403,  200,  403)
MANAGERS_MISSING = (L,    403,  403,  403,  403,  404,  403,  404,  403)
# Ticket work (reply, transition ...) needs service.change_ticket: service desk,
# managers and admins; sales may open their customers' tickets but not work them.
# An empty form answers 400.
WORKS_A          = (L,    403,  403,  404,  404,  400,  400,  400,  403)
WORKS_FAR        = (L,    404,  404,  404,  403,  404,  400,  400,  403)
# The settings area (issue 13): admins only; a missing id is a 404 for them.
ADMINS           = (L,    403,  403,  403,  403,  403,  403,  200,  403)
ADMINS_MISSING   = (L,    403,  403,  403,  403,  403,  403,  404,  403)
# An empty settings form re-renders with its errors (400).
ADMINS_INVALID   = (L,    403,  403,  403,  403,  403,  403,  400,  403)
# Pages of every staff role on a missing record; the desk's (service, managers, admins).
ANY_MISSING      = (L,    404,  404,  404,  404,  404,  404,  404,  403)
DESK_MISSING     = (L,    403,  403,  403,  403,  404,  404,  404,  403)
# Customer value (issue 14): managers (department), admins (all), sales (own share).
VALUE            = (L,    200,  200,  200,  200,  200,  403,  200,  403)
# Lists of customers export with customers.export_customer only.
VALUE_EXPORT     = (L,    403,  403,  403,  403,  200,  403,  200,  403)
# Deals (issue 14): sales, managers and admins; the desk and no role get 403.
DEALS            = (L,    200,  200,  200,  200,  200,  403,  200,  403)
DEALS_MISSING    = (L,    404,  404,  404,  404,  404,  403,  404,  403)
# An empty payment form re-renders with its errors (400).
PAYS_A           = (L,    400,  400,  404,  404,  400,  403,  400,  403)
PAYS_FAR         = (L,    404,  404,  404,  400,  404,  403,  400,  403)
# A segment's dashboard: the roles that use segments get 404 for a missing segment.
SEGMENT_MISSING  = (L,    404,  404,  404,  404,  404,  403,  404,  403)
# Segments (客户分群): sales, managers and admins; an empty form re-renders (400).
SEGMENTS         = (L,    200,  200,  200,  200,  200,  403,  200,  403)
SEGMENTS_INVALID = (L,    400,  400,  400,  400,  400,  403,  400,  403)
# The managers' dashboard (看板): managers (department), admins (all), sales (their
# own share); the desk and no role get 403.
DASHBOARD        = (L,    200,  200,  200,  200,  200,  403,  200,  403)
# The culture scorecard (issue 16): managers and admins only.
SCORECARD        = MANAGERS

MATRIX = [
    # url name, method, target,                     anon   sales  mate   out    far    mgr    svc    admin  norole
    ("home", "GET", None,                           *ANY_ROLE),
    ("healthz", "GET", None,                        P,     P,     P,     P,     P,     P,     P,     P,     P),
    ("favicon", "GET", None,                        301,   301,   301,   301,   301,   301,   301,   301,   301),
    ("login", "GET", None,                          200,   200,   200,   200,   200,   200,   200,   200,   200),
    ("logout", "GET", None,                         405,   405,   405,   405,   405,   405,   405,   405,   405),
    ("logout", "POST", None,                        L,     L,     L,     L,     L,     L,     L,     L,     L),
    # Changing one's own password needs a login, not a role.
    ("password_change", "GET", None,                L,     200,   200,   200,   200,   200,   200,   200,   200),
    # The security audit log is for admins only.
    ("audit_log", "GET", None,                      L,     403,   403,   403,   403,   403,   403,   200,   403),
    # Scheduled actions parked as needs_review: admins only (a missing id is a 404).
    ("scheduler:action_review", "GET", None,        L,     403,   403,   403,   403,   403,   403,   200,   403),
    ("scheduler:action_retry", "POST", "missing",   L,     403,   403,   403,   403,   403,   403,   404,   403),
    ("scheduler:action_cancel", "POST", "missing",  L,     403,   403,   403,   403,   403,   403,   404,   403),
    ("password_change_done", "GET", None,           L,     200,   200,   200,   200,   200,   200,   200,   200),
    # Two-step verification and one's own sessions: a login, not a role. These personas
    # have no app set up, so there is no code to ask for and nothing to renew or remove
    # (back to the settings page); an empty enrolment form is shown again with errors.
    ("accounts:two_step", "GET", None,              L,     200,   200,   200,   200,   200,   200,   200,   200),
    ("accounts:two_step_enrol", "GET", None,        L,     200,   200,   200,   200,   200,   200,   200,   200),
    ("accounts:two_step_enrol", "POST", None,       L,     200,   200,   200,   200,   200,   200,   200,   200),
    ("accounts:two_step_verify", "GET", None,       L,     302,   302,   302,   302,   302,   302,   302,   302),
    ("accounts:two_step_verify", "POST", None,      L,     302,   302,   302,   302,   302,   302,   302,   302),
    ("accounts:backup_codes_regenerate", "POST", None, L,  302,   302,   302,   302,   302,   302,   302,   302),
    ("accounts:two_step_remove", "POST", None,      L,     302,   302,   302,   302,   302,   302,   302,   302),
    ("accounts:sessions_end_others", "POST", None,  L,     302,   302,   302,   302,   302,   302,   302,   302),
    # The public complaint/repair form; an invalid submission answers 400.
    ("intake", "GET", None,                         200,   200,   200,   200,   200,   200,   200,   200,   200),
    ("intake", "POST", None,                        400,   400,   400,   400,   400,   400,   400,   400,   400),
    # The customer's personal link: the signed token is the key, whoever holds it.
    ("intake_follow", "GET", "follow:own_team",     200,   200,   200,   200,   200,   200,   200,   200,   200),
    ("intake_follow", "POST", "follow:own_team",    400,   400,   400,   400,   400,   400,   400,   400,   400),

    ("customers:customer_list", "GET", None,        *ANY_ROLE),
    ("customers:customer_create", "GET", None,      L,     200,   200,   200,   200,   200,   403,   200,   403),
    ("customers:customer_create", "POST", None,     L,     302,   302,   302,   302,   302,   403,   302,   403),
    # The organisation search of the customer form (htmx); without ?field= it is a 400.
    ("customers:organization_options", "POST", None, L,    400,   400,   400,   400,   400,   403,   400,   403),
    ("customers:customer_reassign", "POST", None,   L,     403,   403,   403,   403,   302,   403,   302,   403),
    ("customers:pool_list", "GET", None,            L,     200,   200,   200,   200,   200,   403,   200,   403),
    ("customers:pool_claim", "POST", "pool",        L,     302,   302,   302,   302,   302,   403,   403,   403),
    # The masked preview of a pool customer before claiming; anything not in the
    # pool (owned, unverified) is a 404.
    ("customers:pool_preview", "GET", "pool",       L,     200,   200,   200,   200,   200,   403,   200,   403),
    ("customers:pool_preview", "GET", "own_team",   L,     404,   404,   404,   404,   404,   403,   404,   403),
    ("customers:pool_preview", "GET", "unverified", L,     404,   404,   404,   404,   404,   403,   404,   403),
    # The customer form's duplicate check (htmx); without ?field= it is a 400.
    ("customers:duplicate_check", "POST", None,     L,     400,   400,   400,   400,   400,   403,   400,   403),
    ("customers:customer_detail", "GET", "own_team",   *SEES_A),
    ("customers:customer_detail", "GET", "other_team", *SEES_B),
    ("customers:customer_detail", "GET", "other_dept", *SEES_FAR),
    # Nobody's customer: service and admin see it; salespeople claim it from the pool.
    ("customers:customer_detail", "GET", "pool",    L,     404,   404,   404,   404,   404,   200,   200,   403),
    ("customers:customer_edit", "GET", "own_team",     *EDITS_A),
    ("customers:customer_edit", "GET", "other_team",   *EDITS_B),
    ("customers:customer_edit", "GET", "other_dept",   *EDITS_FAR),
    ("customers:customer_edit", "POST", "own_team",    *SAVES_A),
    ("customers:customer_edit", "POST", "other_team",  *SAVES_B),
    ("customers:customer_edit", "POST", "other_dept",  *SAVES_FAR),
    ("customers:customer_profile_edit", "GET", "own_team",   *EDITS_A),
    ("customers:customer_profile_edit", "GET", "other_dept", *EDITS_FAR),
    ("customers:customer_timeline", "GET", "own_team",       *SEES_A),
    ("customers:customer_timeline", "GET", "other_dept",     *SEES_FAR),
    ("customers:contact_create", "GET", "own_team",          *SEES_A),
    ("customers:contact_create", "GET", "other_dept",        *SEES_FAR),
    ("customers:followup_create", "GET", "own_team",         *EDITS_A),
    ("customers:followup_create", "GET", "other_dept",       *EDITS_FAR),
    ("customers:followup_complete", "POST", "followup:own_team",   *SAVES_A),
    ("customers:followup_complete", "POST", "followup:other_dept", *SAVES_FAR),
    # Without a reason nothing is revealed (back to the page with a message).
    ("customers:customer_reveal", "POST", "own_team", L,   302,   302,   404,   404,   302,   302,   302,   403),
    ("customers:customer_reveal", "POST", "other_dept", L, 404,   404,   404,   302,   404,   302,   302,   403),
    # Only the owner (or a manager/admin) may put a customer back in the pool.
    ("customers:pool_release", "POST", "own_team",  L,     302,   403,   404,   404,   302,   403,   302,   403),
    ("customers:pool_release", "POST", "other_dept", L,    404,   404,   404,   302,   404,   403,   302,   403),
    # Unverified contacts are the desk's: sales never see them, whatever the page.
    ("customers:customer_detail", "GET", "unverified", L,  404,   404,   404,   404,   404,   200,   200,   403),
    # Verifying (the desk, managers, admins) sends the contact to the pool; verifying
    # a verified customer goes back with a message.
    ("customers:customer_verify", "POST", "unverified", L, 403,   403,   403,   403,   404,   302,   302,   403),
    ("customers:customer_verify", "POST", "own_team", L,   403,   403,   403,   403,   302,   302,   302,   403),
    ("customers:customer_verify", "POST", "other_dept", L, 403,   403,   403,   403,   404,   302,   302,   403),
    # 待核查 done (an import left an invalid value out): as saving the customer.
    ("customers:customer_review_clear", "POST", "own_team",   *SAVES_A),
    ("customers:customer_review_clear", "POST", "other_dept", *SAVES_FAR),
    ("customers:customer_merge", "GET", "own_team",   *MANAGERS),
    ("customers:customer_merge", "GET", "other_dept", L,   403,   403,   403,   403,   404,   403,   200,   403),
    ("customers:export_confirm", "GET", None,       *MANAGERS),
    ("customers:export_download", "GET", None,      *MANAGERS),
    # Export approval (导出审批): managers and admins only. A request is seen by its
    # requester and by managers of the requester's department and admins; another
    # department's request is 404. An empty form re-renders (400) or goes back (302);
    # only the requester may download (an admin gets 403).
    ("customers:export_request_create", "POST", None, L,   403,   403,   403,   403,   400,   403,   400,   403),
    ("customers:export_requests", "GET", None,      *MANAGERS),
    ("customers:export_request_detail", "GET", "exportrequest:manager", *MANAGERS),
    ("customers:export_request_detail", "GET", "exportrequest:far",     L, 403, 403, 403, 403, 404, 403, 200, 403),
    ("customers:export_request_decide", "POST", "exportrequest:manager", L, 403, 403, 403, 403, 302, 403, 302, 403),
    ("customers:export_request_decide", "POST", "exportrequest:far",     L, 403, 403, 403, 403, 404, 403, 302, 403),
    ("customers:export_request_download", "GET", "exportrequest:manager", L, 403, 403, 403, 403, 302, 403, 403, 403),
    ("customers:export_request_download", "GET", "exportrequest:far",     L, 403, 403, 403, 403, 404, 403, 403, 403),
    ("customers:import_upload", "GET", None,        *MANAGERS),
    ("customers:import_template", "GET", None,      *MANAGERS),
    ("customers:import_job_detail", "GET", "missing",    *MANAGERS_MISSING),
    ("customers:import_job_progress", "GET", "missing",  *MANAGERS_MISSING),
    ("customers:import_job_confirm", "POST", "missing",  *MANAGERS_MISSING),
    ("customers:import_job_cancel", "POST", "missing",   *MANAGERS_MISSING),
    ("customers:import_job_report", "GET", "missing",    *MANAGERS_MISSING),

    # The settings area: an index, then list, new, edit and delete (with a
    # confirmation page) of each kind of reference data; admins only.
    ("settings:index", "GET", None,                 *ADMINS),
    ("settings:user_away", "POST", "missing",       *ADMINS_MISSING),
    # One's own away status (the user menu): any signed-in user.
    ("accounts:away_self", "POST", None,            L,     302,   302,   302,   302,   302,   302,   302,   302),
    ("settings:departments_list", "GET", None, *ADMINS),
    ("settings:departments_create", "GET", None, *ADMINS),
    ("settings:departments_create", "POST", None, *ADMINS_INVALID),
    ("settings:departments_edit", "GET", "missing", *ADMINS_MISSING),
    ("settings:departments_delete", "GET", "missing", *ADMINS_MISSING),
    ("settings:departments_delete", "POST", "missing", *ADMINS_MISSING),
    ("settings:teams_list", "GET", None, *ADMINS),
    ("settings:teams_create", "GET", None, *ADMINS),
    ("settings:teams_create", "POST", None, *ADMINS_INVALID),
    ("settings:teams_edit", "GET", "missing", *ADMINS_MISSING),
    ("settings:teams_delete", "GET", "missing", *ADMINS_MISSING),
    ("settings:teams_delete", "POST", "missing", *ADMINS_MISSING),
    ("settings:users_list", "GET", None, *ADMINS),
    ("settings:users_edit", "GET", "missing", *ADMINS_MISSING),
    ("service_admin:categories_list", "GET", None, *ADMINS),
    ("service_admin:categories_create", "GET", None, *ADMINS),
    ("service_admin:categories_create", "POST", None, *ADMINS_INVALID),
    ("service_admin:categories_edit", "GET", "missing", *ADMINS_MISSING),
    ("service_admin:categories_delete", "GET", "missing", *ADMINS_MISSING),
    ("service_admin:categories_delete", "POST", "missing", *ADMINS_MISSING),
    ("service_admin:sla_list", "GET", None, *ADMINS),
    ("service_admin:sla_create", "GET", None, *ADMINS),
    ("service_admin:sla_create", "POST", None, *ADMINS_INVALID),
    ("service_admin:sla_edit", "GET", "missing", *ADMINS_MISSING),
    ("service_admin:sla_delete", "GET", "missing", *ADMINS_MISSING),
    ("service_admin:sla_delete", "POST", "missing", *ADMINS_MISSING),
    ("service_admin:hours_list", "GET", None, *ADMINS),
    ("service_admin:hours_create", "GET", None, *ADMINS),
    ("service_admin:hours_create", "POST", None, *ADMINS_INVALID),
    ("service_admin:hours_edit", "GET", "missing", *ADMINS_MISSING),
    ("service_admin:hours_delete", "GET", "missing", *ADMINS_MISSING),
    ("service_admin:hours_delete", "POST", "missing", *ADMINS_MISSING),
    ("service_admin:holidays_list", "GET", None, *ADMINS),
    ("service_admin:holidays_create", "GET", None, *ADMINS),
    ("service_admin:holidays_create", "POST", None, *ADMINS_INVALID),
    ("service_admin:holidays_edit", "GET", "missing", *ADMINS_MISSING),
    ("service_admin:holidays_delete", "GET", "missing", *ADMINS_MISSING),
    ("service_admin:holidays_delete", "POST", "missing", *ADMINS_MISSING),
    ("service_admin:canned_list", "GET", None, *ADMINS),
    ("service_admin:canned_create", "GET", None, *ADMINS),
    ("service_admin:canned_create", "POST", None, *ADMINS_INVALID),
    ("service_admin:canned_edit", "GET", "missing", *ADMINS_MISSING),
    ("service_admin:canned_delete", "GET", "missing", *ADMINS_MISSING),
    ("service_admin:canned_delete", "POST", "missing", *ADMINS_MISSING),
    ("service_admin:assets_list", "GET", None, *ADMINS),
    ("service_admin:assets_edit", "GET", "asset:own_team", *ADMINS),
    ("service_admin:assets_edit", "GET", "missing", *ADMINS_MISSING),

    ("dashboards:dashboard", "GET", None, *DASHBOARD),
    ("dashboards:drill", "GET", None, *DASHBOARD),
    ("dashboards:export", "GET", None, *DASHBOARD),
    ("scorecard:scorecard", "GET", None, *SCORECARD),
    ("scorecard:cases", "GET", None, *SCORECARD),
    # The records behind one's own figures (个人指标): any role, only one's own records.
    ("scorecard_personal:detail", "GET", "args:followups", *ANY_ROLE),
    ("scorecard_personal:detail", "GET", "args:csat", *ANY_ROLE),
    # The weekly culture report's PDF: managers and admins, as the scorecard.
    ("scorecard_report:pdf", "GET", None, *MANAGERS),
    ("value:overview", "GET", None, *VALUE),
    ("value:core_list", "GET", None, *VALUE),
    ("value:changes_list", "GET", "args:entered", *VALUE),
    ("value:rfm_cell", "GET", "args:5,5", *VALUE),
    ("value:tier_change_list", "GET", None, *VALUE),
    ("value:export", "GET", "args:core", *VALUE_EXPORT),
    ("value:export", "GET", "args:rfm", *VALUE),
    ("segments:segment_list", "GET", None, *SEGMENTS),
    ("segments:segment_create", "GET", None, *SEGMENTS),
    ("segments:segment_create", "POST", None, *SEGMENTS_INVALID),
    ("segments:segment_builder", "POST", None, *SEGMENTS),
    ("segments:segment_count", "POST", None, *SEGMENTS),
    ("segments:segment_detail", "GET", "missing", *SEGMENT_MISSING),
    ("segments:segment_edit", "GET", "missing", *SEGMENT_MISSING),
    ("segments:segment_delete", "POST", "missing", *SEGMENT_MISSING),
    ("segments:segment_refresh", "POST", "missing", *SEGMENT_MISSING),
    ("segments:static_search", "POST", "missing", *SEGMENT_MISSING),
    ("segments:static_add", "POST", "missing", *SEGMENT_MISSING),
    ("segments:static_remove", "POST", "missing", *SEGMENT_MISSING),
    ("segments:segment_followups", "GET", "missing", *SEGMENT_MISSING),
    # Bulk reassignment: managers and admins only.
    ("segments:segment_reassign", "GET", "missing", *MANAGERS_MISSING),
    ("segment_dashboard:dashboard", "GET", "missing", *SEGMENT_MISSING),
    ("segment_dashboard:members", "GET", "missing", *SEGMENT_MISSING),
    ("segment_dashboard:export", "GET", "missing", *SEGMENT_MISSING),
    ("value_admin:tierrule_list", "GET", None, *ADMINS),
    ("value_admin:tierrule_create", "GET", None, *ADMINS),
    ("value_admin:tierrule_create", "POST", None, *ADMINS_INVALID),
    ("value_admin:tierrule_edit", "GET", "missing", *ADMINS_MISSING),
    ("value_admin:tierrule_delete", "GET", "missing", *ADMINS_MISSING),
    ("value_admin:tierrule_delete", "POST", "missing", *ADMINS_MISSING),
    ("scorecard_admin:target_list", "GET", None, *ADMINS),
    ("scorecard_admin:target_create", "GET", None, *ADMINS),
    ("scorecard_admin:target_create", "POST", None, *ADMINS_INVALID),
    ("scorecard_admin:target_edit", "GET", "missing", *ADMINS_MISSING),
    ("scorecard_admin:target_delete", "GET", "missing", *ADMINS_MISSING),
    ("scorecard_admin:target_delete", "POST", "missing", *ADMINS_MISSING),

    # Deals: the owner/team scope of customers; moves, loss and reopen with an empty
    # form go back to the deal with a message (302), an empty deal form re-renders.
    ("deals:deal_list", "GET", None, *DEALS),
    ("deals:pipeline", "GET", None, *DEALS),
    ("deals:deal_create", "GET", None, *DEALS),
    ("deals:deal_create", "POST", None, *DEALS),
    ("deals:deal_create", "GET", "own_team", *EDITS_A),
    ("deals:customer_options", "POST", None, *DEALS),
    ("deals:deal_detail", "GET", "deal:own_team", *EDITS_A),
    ("deals:deal_detail", "GET", "deal:other_team", *EDITS_B),
    ("deals:deal_detail", "GET", "deal:other_dept", *EDITS_FAR),
    ("deals:deal_edit", "GET", "deal:own_team", *EDITS_A),
    ("deals:deal_edit", "GET", "deal:other_dept", *EDITS_FAR),
    ("deals:deal_edit", "POST", "deal:own_team", *EDITS_A),
    ("deals:deal_move", "POST", "deal:own_team", *SAVES_A),
    ("deals:deal_move", "POST", "deal:other_dept", *SAVES_FAR),
    ("deals:deal_lose", "POST", "deal:own_team", *SAVES_A),
    ("deals:deal_lose", "POST", "deal:other_dept", *SAVES_FAR),
    ("deals:deal_reopen", "POST", "deal:own_team", *SAVES_A),
    ("deals:payment_add", "POST", "deal:own_team", *PAYS_A),
    ("deals:payment_add", "POST", "deal:other_dept", *PAYS_FAR),
    ("deals:payment_remove", "GET", "args:987654321,987654321", *DEALS_MISSING),
    ("deals:payment_remove", "POST", "args:987654321,987654321", *DEALS_MISSING),
    ("deals:import_upload", "GET", None, *MANAGERS),
    ("deals:import_template", "GET", None, *MANAGERS),
    ("deals_admin:stages_list", "GET", None, *ADMINS),
    ("deals_admin:stages_create", "GET", None, *ADMINS),
    ("deals_admin:stages_create", "POST", None, *ADMINS_INVALID),
    ("deals_admin:stages_edit", "GET", "missing", *ADMINS_MISSING),
    ("deals_admin:stages_delete", "GET", "missing", *ADMINS_MISSING),
    ("deals_admin:stages_delete", "POST", "missing", *ADMINS_MISSING),

    ("notifications:notification_list", "GET", None, *ANY_ROLE),
    ("notifications:notification_bell", "GET", None, *ANY_ROLE),
    # Marking someone else's notification read does nothing and leads to one's own list.
    ("notifications:notification_read", "POST", "notification:sales_rep",
                                                    L,     302,   302,   302,   302,   302,   302,   302,   403),
    ("notifications:notification_read_all", "POST", None,
                                                    L,     302,   302,   302,   302,   302,   302,   302,   403),

    ("service:ticket_queue", "GET", None,           *ANY_ROLE),
    ("service:ticket_create", "GET", None,          *ANY_ROLE),
    ("service:ticket_create", "GET", "own_team",    *SEES_A),
    ("service:ticket_create", "GET", "other_dept",  *SEES_FAR),
    # An unknown caller registered with the ticket: the desk, managers and admins
    # (customers.register_caller); an empty form answers 400.
    ("service:ticket_create", "GET", "new_caller",  L,     403,   403,   403,   403,   200,   200,   200,   403),
    ("service:ticket_create", "POST", "new_caller", L,     403,   403,   403,   403,   400,   400,   400,   403),
    ("service:ticket_detail", "GET", "ticket:own_team",   *SEES_A),
    ("service:ticket_detail", "GET", "ticket:other_team", *SEES_B),
    ("service:ticket_detail", "GET", "ticket:other_dept", *SEES_FAR),
    ("service:ticket_reply", "POST", "ticket:own_team",         *WORKS_A),
    ("service:ticket_reply", "POST", "ticket:other_dept",       *WORKS_FAR),
    ("service:message_delivery", "GET", "message:own_team",     *SEES_A),
    ("service:message_delivery", "GET", "message:other_dept",   *SEES_FAR),
    ("service:attachment_upload", "POST", "ticket:own_team",    *WORKS_A),
    ("service:attachment_upload", "POST", "ticket:other_dept",  *WORKS_FAR),
    ("service:ticket_transition", "POST", "ticket:own_team",    *WORKS_A),
    ("service:ticket_transition", "POST", "ticket:other_dept",  *WORKS_FAR),
    ("service:ticket_link", "POST", "ticket:own_team",          *WORKS_A),
    ("service:ticket_link", "POST", "ticket:other_dept",        *WORKS_FAR),
    ("service:ticket_merge", "GET", "ticket:own_team",          *WORKS_A),
    ("service:ticket_merge", "GET", "ticket:other_dept",        *WORKS_FAR),
    ("service:workorder_create", "POST", "ticket:own_team",     *WORKS_A),
    ("service:workorder_create", "POST", "ticket:other_dept",   *WORKS_FAR),
    # An empty assignment goes back to the ticket with a message.
    ("service:ticket_assign", "POST", "ticket:own_team",   L, 403,   403,   404,   404,   302,   302,   302,   403),
    ("service:ticket_assign", "POST", "ticket:other_dept", L, 404,   404,   404,   403,   404,   302,   302,   403),
    ("service:canned_reply", "GET", "ticket:own_team",     L, 403,   403,   404,   404,   200,   200,   200,   403),
    ("service:canned_reply", "GET", "ticket:other_dept",   L, 404,   404,   404,   403,   404,   200,   200,   403),
    ("service:attachment_download", "GET", "attachment:own_team",   *SEES_A),
    ("service:attachment_download", "GET", "attachment:other_dept", *SEES_FAR),
    ("service:workorder_list", "GET", None,         *ANY_ROLE),
    # Work orders go to the service department; the ticket's viewers may look.
    ("service:workorder_detail", "GET", "workorder:own_team",   *SEES_A),
    ("service:workorder_detail", "GET", "workorder:other_dept", *SEES_FAR),
    ("service:workorder_rate", "POST", "workorder:own_team", L, 403, 403,  404,   404,   302,   302,   302,   403),
    # 服务补救 (issue 16): the canary tasks are the desk team's cases (its lead recovers).
    # Sales see the tasks of the customers they see, the desk its team's, managers their
    # department's teams' and customers', admins all; the assignee, the team lead,
    # managers and admins record (an empty form answers 400).
    ("recovery:task_list", "GET", None,             *ANY_ROLE),
    ("recovery:task_detail", "GET", "recovery:own_team",   *SEES_A),
    ("recovery:task_detail", "GET", "recovery:other_dept", L, 404,  404,   404,   200,   404,   200,   200,   403),
    ("recovery:task_detail", "GET", "missing",      L,     404,   404,   404,   404,   404,   404,   404,   403),
    ("recovery:task_record", "POST", "recovery:own_team",  L, 403,  403,   404,   404,   400,   403,   400,   403),
    ("recovery:task_record", "POST", "recovery:other_dept", L, 404, 404,   404,   403,   404,   403,   400,   403),
    ("service:asset_create", "GET", "own_team",     L,     403,   403,   403,   403,   200,   200,   200,   403),
    ("service:asset_create", "GET", "other_dept",   L,     403,   403,   403,   403,   404,   200,   200,   403),
    ("service:asset_detail", "GET", "asset:own_team",   *SEES_A),
    ("service:asset_detail", "GET", "asset:other_dept", *SEES_FAR),
    ("service:dealer_report", "GET", None,          *MANAGERS),
    # 入伙: every staff role sees published events and books the customers it may see;
    # managers and admins plan events (drafts are theirs alone). Empty forms answer 400.
    ("handover:event_list", "GET", None,            *ANY_ROLE),
    ("handover:event_create", "GET", None,          *MANAGERS),
    ("handover:event_create", "POST", None,         L,     403,   403,   403,   403,   400,   403,   400,   403),
    ("handover:event_detail", "GET", "event",       *ANY_ROLE),
    ("handover:event_detail", "GET", "draft_event", L,     404,   404,   404,   404,   200,   404,   200,   403),
    ("handover:event_edit", "GET", "event",         *MANAGERS),
    ("handover:event_edit", "GET", "draft_event",   *MANAGERS),
    ("handover:event_publish", "POST", "draft_event", L,   403,   403,   403,   403,   302,   403,   302,   403),
    ("handover:event_close", "POST", "event",       L,     403,   403,   403,   403,   302,   403,   302,   403),
    ("handover:slots_add", "GET", "event",          *MANAGERS),
    ("handover:slots_add", "POST", "event",         L,     403,   403,   403,   403,   400,   403,   400,   403),
    # The slot page lists only the appointments of customers the role may see.
    ("handover:slot_detail", "GET", "slot",         *ANY_ROLE),
    ("handover:slot_detail", "GET", "draft_slot",   L,     404,   404,   404,   404,   200,   404,   200,   403),
    # The check-in desk (the owner's QR code): every staff role; without a code, the form.
    ("handover:desk_check_in", "GET", None,         *ANY_ROLE),
    ("handover:desk_check_in", "POST", None,        *ANY_ROLE),
    # An owner's personal link (no login): a token that is not a live link is a 404 for
    # everyone (tests/handover/test_owner_pages.py covers the live ones).
    ("owner_booking", "GET", "args:not-a-token",    404,   404,   404,   404,   404,   404,   404,   404,   404),
    ("owner_booking", "POST", "args:not-a-token",   404,   404,   404,   404,   404,   404,   404,   404,   404),
    ("owner_change", "GET", "args:not-a-token",     404,   404,   404,   404,   404,   404,   404,   404,   404),
    ("owner_change", "POST", "args:not-a-token",    404,   404,   404,   404,   404,   404,   404,   404,   404),
    ("owner_cancel", "GET", "args:not-a-token",     404,   404,   404,   404,   404,   404,   404,   404,   404),
    ("owner_cancel", "POST", "args:not-a-token",    404,   404,   404,   404,   404,   404,   404,   404,   404),
    ("owner_qr", "GET", "args:not-a-token",         404,   404,   404,   404,   404,   404,   404,   404,   404),
    # A customer's survey link (no login): a token that names no open survey is a 404
    # for everyone (tests/satisfaction/test_surveys.py covers the live, expired and
    # answered ones).
    ("survey_answer", "GET", "args:not-a-token",    404,   404,   404,   404,   404,   404,   404,   404,   404),
    ("survey_answer", "POST", "args:not-a-token",   404,   404,   404,   404,   404,   404,   404,   404,   404),
    # Surveys and campaigns to a segment (issue 16): managers and admins.
    ("satisfaction:survey_list", "GET", None,       *MANAGERS),
    ("satisfaction:campaign_list", "GET", None,     *MANAGERS),
    ("satisfaction:campaign_create", "GET", None,   *MANAGERS),
    ("satisfaction:campaign_create", "POST", None,  L,     403,   403,   403,   403,   400,   403,   400,   403),
    ("satisfaction:campaign_detail", "GET", "missing", *MANAGERS_MISSING),
    ("satisfaction:campaign_progress", "GET", "missing", *MANAGERS_MISSING),
    ("handover:appointment_book", "GET", "event",   *ANY_ROLE),
    ("handover:appointment_book", "GET", "own_team",   *SEES_A),
    ("handover:appointment_book", "GET", "other_dept", *SEES_FAR),
    ("handover:appointment_book", "POST", "own_team",   L, 400,   400,   404,   404,   400,   400,   400,   403),
    ("handover:appointment_book", "POST", "other_dept", L, 404,   404,   404,   400,   404,   400,   400,   403),
    ("handover:appointment_cancel", "POST", "appointment:own_team",     L, 302, 302, 404, 404, 302, 302, 302, 403),
    ("handover:appointment_cancel", "POST", "appointment:other_dept",   L, 404, 404, 404, 302, 404, 302, 302, 403),
    ("handover:appointment_check_in", "POST", "appointment:own_team",   L, 302, 302, 404, 404, 302, 302, 302, 403),
    ("handover:appointment_check_in", "POST", "appointment:other_dept", L, 404, 404, 404, 302, 404, 302, 302, 403),
    ("handover:appointment_reschedule", "GET", "appointment:own_team",   *SEES_A),
    ("handover:appointment_reschedule", "GET", "appointment:other_dept", *SEES_FAR),
    ("handover:appointment_reschedule", "POST", "appointment:own_team",  L, 400, 400, 404, 404, 400, 400, 400, 403),
    # 交付准备 and the call list: every staff role (the list shows each caller only the
    # owners it may see); a missing event or unit is a 404 for them.
    ("handover:event_readiness", "GET", "event",    *ANY_ROLE),
    ("handover:event_readiness", "GET", "draft_event", L,  404,   404,   404,   404,   200,   404,   200,   403),
    ("handover:call_list", "GET", "event",          *ANY_ROLE),
    ("handover:call_list", "GET", "draft_event",    L,     404,   404,   404,   404,   200,   404,   200,   403),
    # 交付大屏 and its polled fragments: managers and admins (drafts too: they plan them).
    ("handover:board_current", "GET", None,         L,     403,   403,   403,   403,   302,   403,   302,   403),
    ("handover:event_board", "GET", "event",        *MANAGERS),
    ("handover:event_board", "GET", "draft_event",  *MANAGERS),
    ("handover:event_board", "GET", "missing",      *MANAGERS_MISSING),
    ("handover:event_board_live", "GET", "event",   *MANAGERS),
    ("handover:event_board_live", "GET", "missing", *MANAGERS_MISSING),
    ("handover:event_board_grid", "GET", "event",   *MANAGERS),
    ("handover:event_board_grid", "GET", "missing", *MANAGERS_MISSING),
    ("handover:call_record", "GET", f"args:{MISSING_ID},{MISSING_ID}",  L, 404, 404, 404, 404, 404, 404, 404, 403),
    ("handover:call_record", "POST", f"args:{MISSING_ID},{MISSING_ID}", L, 404, 404, 404, 404, 404, 404, 404, 403),
    ("handover:call_dial", "POST", f"args:{MISSING_ID},{MISSING_ID},{MISSING_ID}", L, 404, 404, 404, 404, 404, 404, 404, 403),
    # 入伙通知 (notice_views.py): every staff role follows the notices and links of the
    # events it sees; managers and admins send, print, record letters and revoke links.
    ("handover:notice_list", "GET", "event",        *ANY_ROLE),
    ("handover:notice_list", "GET", "draft_event",  L,     404,   404,   404,   404,   200,   404,   200,   403),
    ("handover:owner_links", "GET", "event",        *ANY_ROLE),
    ("handover:owner_links", "GET", "draft_event",  L,     404,   404,   404,   404,   200,   404,   200,   403),
    ("handover:notice_run_start", "POST", "event",  L,     403,   403,   403,   403,   400,   403,   400,   403),
    ("handover:notice_run_progress", "GET", "missing", L,  404,   404,   404,   404,   404,   404,   404,   403),
    ("handover:notice_run_pdf", "GET", "missing",   *MANAGERS_MISSING),
    ("handover:letters_delivered", "POST", "missing", *MANAGERS_MISSING),
    ("handover:unit_notice_pdf", "POST", "missing", *MANAGERS_MISSING),
    ("handover:owner_link_revoke", "POST", "missing", *MANAGERS_MISSING),
    # 入伙 reports (report_views.py): managers and admins, over the events they see;
    # the acceptance form PDF also for the service staff who handled the case (so a
    # missing case is a 404 for them too).
    ("handover:daily_report", "GET", "event",       *MANAGERS),
    ("handover:daily_report", "GET", "draft_event", *MANAGERS),
    ("handover:refusal_list", "GET", "event",       *MANAGERS),
    ("handover:no_show_list", "GET", "event",       *MANAGERS),
    ("handover:not_accepted_list", "GET", "event",  *MANAGERS),
    ("handover:rectification_board", "GET", None,   *MANAGERS),
    ("handover:acceptance_form_pdf", "GET", "missing", L, 403, 403, 403, 403, 404, 404, 404, 403),
    # Scope and batches: every staff role views, managers and admins edit; the event
    # has no project, so adding units answers 400 with the message; an empty bulk
    # action goes back to the scope page with it.
    ("handover:event_scope", "GET", "event",        *ANY_ROLE),
    ("handover:event_scope", "GET", "draft_event",  L,     404,   404,   404,   404,   200,   404,   200,   403),
    ("handover:scope_add", "GET", "event",          *MANAGERS),
    ("handover:scope_add", "POST", "event",         L,     403,   403,   403,   403,   400,   403,   400,   403),
    ("handover:scope_bulk", "POST", "event",        L,     403,   403,   403,   403,   302,   403,   302,   403),
    ("handover:batch_list", "GET", "event",         *ANY_ROLE),
    ("handover:batch_create", "GET", "event",       *MANAGERS),
    ("handover:batch_create", "POST", "event",      L,     403,   403,   403,   403,   400,   403,   400,   403),
    ("handover:batch_edit", "GET", "batch",         *MANAGERS),
    ("handover:batch_edit", "GET", "missing",       *MANAGERS_MISSING),
    ("handover:batch_delete", "POST", "batch",      L,     403,   403,   403,   403,   302,   403,   302,   403),
    ("handover:batch_assign", "GET", "batch",       *MANAGERS),
    ("handover:batch_assign", "POST", "batch",      L,     403,   403,   403,   403,   400,   403,   400,   403),
    ("handover:batch_slots_add", "GET", "batch",    *MANAGERS),
    ("handover:batch_slots_add", "POST", "batch",   L,     403,   403,   403,   403,   400,   403,   400,   403),
    # 入伙 on the day: every staff role records at the stations and decides outcomes on
    # the cases of the events it sees (tests/handover/test_outcomes.py, test_captures.py
    # open real cases per role).
    ("handover:case_outcome", "GET", "missing", L, 404, 404, 404, 404, 404, 404, 404, 403),
    ("handover:case_outcome_panel", "GET", "missing", L, 404, 404, 404, 404, 404, 404, 404, 403),
    ("handover:refusal_evidence", "GET", "missing", L, 404, 404, 404, 404, 404, 404, 404, 403),
    ("handover:case_accept", "POST", "missing", L, 404, 404, 404, 404, 404, 404, 404, 403),
    ("handover:case_not_accepted", "POST", "missing", L, 404, 404, 404, 404, 404, 404, 404, 403),
    ("handover:case_refuse", "POST", "missing", L, 404, 404, 404, 404, 404, 404, 404, 403),
    ("handover:case_no_show_next", "POST", "missing", L, 404, 404, 404, 404, 404, 404, 404, 403),
    ("handover:case_reinspection_book", "POST", "missing", L, 404, 404, 404, 404, 404, 404, 404, 403),
    ("handover:capture_settlement", "POST", "missing", L, 404, 404, 404, 404, 404, 404, 404, 403),
    ("handover:capture_fee_add", "POST", "missing", L, 404, 404, 404, 404, 404, 404, 404, 403),
    ("handover:capture_fee_void", "POST", "missing", L, 404, 404, 404, 404, 404, 404, 404, 403),
    # The owner's signature image, for whoever sees the case (its page shows it).
    ("handover:case_signature", "GET", "missing", L, 404, 404, 404, 404, 404, 404, 404, 403),
    ("handover:capture_meters", "POST", "missing", L, 404, 404, 404, 404, 404, 404, 404, 403),
    ("handover:capture_keys", "POST", "missing", L, 404, 404, 404, 404, 404, 404, 404, 403),
    ("handover:capture_signature", "POST", "missing", L, 404, 404, 404, 404, 404, 404, 404, 403),
    ("handover:capture_survey", "POST", "missing", L, 404, 404, 404, 404, 404, 404, 404, 403),
    # 入伙 on the day (issue 17): the desk, stations and cases for the roles that book
    # (every staff role), the station sequence for managers and admins. An empty
    # check-in answers 400 with the message; an event without stations saves nothing.
    ("handover:onsite_home", "GET", None,           *ANY_ROLE),
    ("handover:onsite_event", "GET", "event",       *ANY_ROLE),
    ("handover:onsite_event", "GET", "draft_event", L,     404,   404,   404,   404,   200,   404,   200,   403),
    ("handover:onsite_checkin", "GET", "event",     *ANY_ROLE),
    ("handover:onsite_checkin", "POST", "event",    L,     400,   400,   400,   400,   400,   400,   400,   403),
    ("handover:station_config", "GET", "event",     *MANAGERS),
    ("handover:station_config", "POST", "event",    L,     403,   403,   403,   403,   302,   403,   302,   403),
    # Adding a station: an empty form re-renders the setup page with its errors (400);
    # deleting one: a confirmation page, then the delete (managers and admins).
    ("handover:station_add", "POST", "event",       L,     403,   403,   403,   403,   400,   403,   400,   403),
    ("handover:station_delete", "GET", f"args:{MISSING_ID},{MISSING_ID}", *MANAGERS_MISSING),
    ("handover:station_delete", "POST", f"args:{MISSING_ID},{MISSING_ID}", *MANAGERS_MISSING),
    ("handover:station_page", "GET", f"args:{MISSING_ID},{MISSING_ID}", L, 404, 404, 404, 404, 404, 404, 404, 403),
    ("handover:station_call_next", "POST", f"args:{MISSING_ID},{MISSING_ID}", L, 404, 404, 404, 404, 404, 404, 404, 403),
    ("handover:visit_action", "POST", f"args:{MISSING_ID},start", L, 404, 404, 404, 404, 404, 404, 404, 403),
    ("handover:case_detail", "GET", "missing",      L,     404,   404,   404,   404,   404,   404,   404,   403),
    # The property register (docs/property.md): every staff role reads, managers and
    # admins write; an empty form re-renders with its errors (400).
    ("property:project_list", "GET", None,          *ANY_ROLE),
    ("property:project_create", "GET", None,        *MANAGERS),
    ("property:project_create", "POST", None,       L,     403,   403,   403,   403,   400,   403,   400,   403),
    ("property:import_upload", "GET", None,         *MANAGERS),
    ("property:import_upload", "POST", None,        L,     403,   403,   403,   403,   400,   403,   400,   403),
    ("property:import_template", "GET", None,       *MANAGERS),
    ("property:project_detail", "GET", "missing",   L,     404,   404,   404,   404,   404,   404,   404,   403),
    ("property:project_edit", "GET", "missing",     *MANAGERS_MISSING),
    ("property:phase_create", "GET", "missing",     *MANAGERS_MISSING),
    ("property:building_create", "GET", "missing",  *MANAGERS_MISSING),
    ("property:building_detail", "GET", "missing",  L,     404,   404,   404,   404,   404,   404,   404,   403),
    ("property:building_edit", "GET", "missing",    *MANAGERS_MISSING),
    ("property:unit_create", "GET", "missing",      *MANAGERS_MISSING),
    ("property:unit_detail", "GET", "missing",      L,     404,   404,   404,   404,   404,   404,   404,   403),
    ("property:unit_edit", "GET", "missing",        *MANAGERS_MISSING),
    ("property:owner_add", "GET", "missing",        *MANAGERS_MISSING),
    ("property:owner_end", "POST", "missing",       *MANAGERS_MISSING),
    # 问题整改 (issue 17, defects): every staff role sees, records and works defects;
    # managers and admins decide disputes, void and force-close (an empty form: 400),
    # and make a contractor's link; the desk, managers and admins link repair tickets.
    ("defects:defect_list", "GET", None,            *ANY_ROLE),
    ("defects:defect_detail", "GET", "defect",      *ANY_ROLE),
    ("defects:defect_detail", "GET", "missing",     *ANY_MISSING),
    ("defects:defect_photo", "GET", "missing",      *ANY_MISSING),
    ("defects:defect_due", "POST", "defect",        L,     403,   403,   403,   403,   400,   403,   400,   403),
    ("defects:defect_due", "POST", "missing",       *MANAGERS_MISSING),
    ("defects:defect_transition", "POST", "dtrans:start", L, 400, 400,   400,   400,   400,   400,   400,   403),
    ("defects:defect_transition", "POST", "dtrans:void",  L, 403, 403,   403,   403,   400,   403,   400,   403),
    ("defects:defect_transition", "POST", "args:987654321,start", *ANY_MISSING),
    ("defects:defect_ticket_create", "POST", "missing", *DESK_MISSING),
    ("defects:defect_ticket_link", "POST", "missing",   *DESK_MISSING),
    ("defects:defect_ticket_link", "POST", "defect",    L, 403, 403,   403,   403,   400,   400,   400,   403),
    ("defects:record", "GET", "missing",            *ANY_MISSING),
    ("defects:record_unit", "GET", "missing",       *ANY_MISSING),
    ("defects:record_unit", "GET", "defect_unit",   *ANY_ROLE),
    ("defects:record_unit", "POST", "defect_unit",  L,     400,   400,   400,   400,   400,   400,   400,   403),
    ("defects:record_ticket", "GET", "args:2026999999,987654321", *DESK_MISSING),
    ("defects:category_options", "GET", None,       *ANY_ROLE),
    ("defects:contractor_detail", "GET", "missing", *ANY_MISSING),
    ("defects:contractor_detail", "GET", "contractor", *ANY_ROLE),
    ("defects:contractor_detail", "POST", "contractor", L, 403, 403,   403,   403,   200,   403,   200,   403),
    # A contractor's link (no login): a token that is not a live link is a 404 for
    # everyone (tests/defects/test_views.py covers the live, expired and tampered ones).
    ("contractor_items", "GET", "args:not-a-token", 404,   404,   404,   404,   404,   404,   404,   404,   404),
    ("contractor_items", "POST", "args:not-a-token", 404,  404,   404,   404,   404,   404,   404,   404,   404),
    ("defects_admin:contractors_list", "GET", None, *ADMINS),
    ("defects_admin:contractors_create", "GET", None, *ADMINS),
    ("defects_admin:contractors_create", "POST", None, *ADMINS_INVALID),
    ("defects_admin:contractors_edit", "GET", "missing", *ADMINS_MISSING),
    ("defects_admin:contractors_delete", "GET", "missing", *ADMINS_MISSING),
    ("defects_admin:contractors_delete", "POST", "missing", *ADMINS_MISSING),
    ("defects_admin:categories_list", "GET", None, *ADMINS),
    ("defects_admin:categories_create", "GET", None, *ADMINS),
    ("defects_admin:categories_create", "POST", None, *ADMINS_INVALID),
    ("defects_admin:categories_edit", "GET", "missing", *ADMINS_MISSING),
    ("defects_admin:categories_delete", "GET", "missing", *ADMINS_MISSING),
    ("defects_admin:categories_delete", "POST", "missing", *ADMINS_MISSING),
    ("property:proxy_add", "GET", "missing",        *MANAGERS_MISSING),
    ("property:proxy_revoke", "POST", "missing",    *MANAGERS_MISSING),
    ("property:proxy_document", "GET", "missing",   *MANAGERS_MISSING),
]
# fmt: on

# Cells where the app deviates from the documented rule (docs/access.md) would be listed
# here and run as strict xfails in test_access_matrix_known_bugs. None at present.
KNOWN_BUGS: dict[tuple, str] = {}

# The canaries each persona may see anywhere (lists, home, exports, any page).
VISIBLE = {
    "anonymous": set(),
    "sales_rep": {"own_team"},
    "teammate": {"own_team"},
    "outsider": {"other_team"},
    "far_outsider": {"other_dept"},
    "manager": {"own_team", "other_team"},
    "service_agent": set(CANARIES),
    "admin_user": set(CANARIES),
    "readonly_user": set(),
}
# Pages that show a record's name when they answer 200.
NAME_PAGES = {
    "customers:customer_detail",
    "customers:customer_edit",
    "service:ticket_detail",
}
# Public pages opened by a signed token (the customer's link): the token is the key.
TOKEN_PAGES = {"intake_follow"}
# Pages whose URL takes the customer as ?customer= rather than in the path.
QUERY_CUSTOMER_PAGES = {
    "service:ticket_create",
    "service:asset_create",
    "deals:deal_create",
}
# What each POST sends: enough to pass the form where the row expects a save.
POST_DATA = {
    "intake": {"name": "", "phone": "", "description": ""},
    "intake_follow": {"body": ""},
}

EXCLUDED_NAMES = {"set_language"}


def _url_patterns(patterns=None, prefix="", namespace=""):
    """(route, name) of every URL pattern, following include() recursively."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    for pattern in patterns:
        route = prefix + str(pattern.pattern).lstrip("^")
        if isinstance(pattern, URLResolver):
            inner = (
                f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            )
            yield from _url_patterns(pattern.url_patterns, route, inner)
        else:
            yield route, f"{namespace}{pattern.name}" if pattern.name else route


def _checked_patterns():
    for route, name in _url_patterns():
        if route.startswith(("admin/", "static/")) or name in EXCLUDED_NAMES:
            continue
        yield route, name


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class World:
    """Every persona, the canary customers, and records hanging off them (on demand)."""

    def __init__(self, actors):
        self.actors = actors
        self.customers = {}
        for target, name in CANARIES.items():
            owner = actors[OWNERS[target]] if OWNERS[target] else None
            self.customers[target] = customer_services.customer_create(
                by=owner or actors["admin_user"],
                data={"name": name},
                phone_numbers=[PHONES[target]],
                owner=owner,
            )
        Customer.objects.filter(pk=self.customers["unverified"].pk).update(
            is_verified=False, pool_entered_at=None
        )
        self.customers["unverified"].refresh_from_db()
        self._tickets = {}
        self._handover = {}

    def ticket(self, target):
        if target not in self._tickets:
            self._tickets[target] = service_services.ticket_create(
                by=self.actors["admin_user"],
                customer=self.customers[target],
                ticket_type="repair",
                channel="hotline",
                subject=f"{CANARIES[target]}的报修",
                description="门锁坏了",
            )
        return self._tickets[target]

    def handover_event(self, kind):
        """A published (`event`) or draft (`draft_event`) 入伙 event with one slot."""
        if kind not in self._handover:
            self._handover[kind] = make_event(
                self.actors["admin_user"],
                slots_per_day=1,
                publish=kind == "event",
            )
        return self._handover[kind]

    def handover_appointments(self):
        """Every canary customer booked into the published event's slot."""
        if "appointments" not in self._handover:
            slot = self.handover_event("event").slots.get()
            self._handover["appointments"] = {
                target: handover_services.appointment_book(
                    slot=slot, customer=customer, by=self.actors["admin_user"]
                )
                for target, customer in self.customers.items()
            }
        return self._handover["appointments"]

    def url(self, url_name, target):
        """The address of `url_name` for `target` (see the module docstring)."""
        if target is None:
            return reverse(url_name)
        if target == "new_caller":
            return f"{reverse(url_name)}?caller=new"
        if target.startswith("args:"):  # a page named by its arguments, no record
            return reverse(url_name, args=target.removeprefix("args:").split(","))
        if target.startswith("dtrans:"):  # a transition of the matrix's defect
            action = target.removeprefix("dtrans:")
            return reverse(url_name, args=[self.defect().pk, action])
        if url_name in QUERY_CUSTOMER_PAGES:
            return f"{reverse(url_name)}?customer={self.customers[target].pk}"
        if url_name == "handover:appointment_book" and target in self.customers:
            event = self.handover_event("event")
            customer = self.customers[target]
            return f"{reverse(url_name, args=[event.pk])}?customer={customer.pk}"
        return reverse(url_name, args=[self._arg(url_name, target)])

    def defect(self):
        """A defect recorded by unit (no event) on a unit with an owner."""
        if "defect" not in self._handover:
            from tests.defects.builders import defect
            from tests.property.builders import unit_with_owner

            admin = self.actors["admin_user"]
            self._handover["defect"] = defect(
                admin, unit=unit_with_owner(admin, owner_name="业主甲")
            )
        return self._handover["defect"]

    def recovery_task(self, which):
        """An unhappy answer to the canary's ticket, recovered by the desk team's lead."""
        from culture.satisfaction import recovery
        from tests.satisfaction.recovery_builders import answered_survey

        desk = self.actors["service_agent"].team
        if desk.lead_id is None:
            desk.lead = UserFactory(
                username="desk_lead_matrix", team=desk, role=Role.SERVICE
            )
            desk.save()
        survey = answered_survey(
            score=2, team=desk, customer=self.customers[which], comment="不满意"
        )
        return recovery.recovery_open_for(survey)

    def export_request(self, which):
        """A pending export request of the manager, or of a manager of another
        department (`far`)."""
        requester = self.actors["manager"]
        if which == "far":
            requester = UserFactory(
                username="manager_far",
                team=self.actors["far_outsider"].team,
                role=Role.MANAGER,
            )
        return ExportRequest.objects.create(
            requested_by=requester, row_count=500, reason="矩阵导出"
        )

    def _arg(self, url_name, target):
        admin = self.actors["admin_user"]
        if target == "missing":
            return MISSING_ID
        kind, _, which = target.partition(":")
        if kind == "ticket":
            return self.ticket(which).reference
        if kind == "workorder":
            return service_services.workorder_create(
                by=admin,
                ticket=self.ticket(which),
                department=self.actors["service_agent"].team.department,
                title="更换门锁",
                due_at=timezone.now() + dt.timedelta(days=2),
            ).pk
        if kind == "asset":
            return service_services.asset_create(
                by=admin, customer=self.customers[which], data={"name": "空调外机"}
            ).pk
        if kind == "follow":
            return service_services.follow_token(self.ticket(which))
        if kind == "defect":
            return self.defect().pk
        if kind == "defect_unit":
            return self.defect().unit_id
        if kind == "contractor":
            from tests.defects.builders import contractor

            return contractor().pk
        if kind == "message":
            return service_services.ticket_message_add(
                by=admin, ticket=self.ticket(which), body="师傅下午上门"
            ).pk
        if kind == "attachment":
            return service_services.attachment_add(
                by=admin,
                ticket=self.ticket(which),
                upload=SimpleUploadedFile("photo.png", PNG, "image/png"),
            ).pk
        if kind in ("event", "draft_event"):
            return self.handover_event(kind).pk
        if kind == "slot":
            return next(iter(self.handover_appointments().values())).slot_id
        if kind == "batch":
            from service.handover.models import Batch

            now = timezone.now()
            return Batch.objects.get_or_create(
                event=self.handover_event("event"),
                name="矩阵批次",
                defaults={
                    "booking_opens_at": now,
                    "booking_closes_at": now + dt.timedelta(days=7),
                },
            )[0].pk
        if kind == "draft_slot":
            return self.handover_event("draft_event").slots.get().pk
        if kind == "appointment":
            return self.handover_appointments()[which].pk
        if kind == "followup":
            owner = self.actors[OWNERS[which]]
            return customer_services.followup_create(
                by=owner,
                customer=self.customers[which],
                assignee=owner,
                due_at=timezone.now() + dt.timedelta(days=1),
                note="回访",
            ).pk
        if kind == "exportrequest":
            return self.export_request(which).pk
        if kind == "deal":
            from culture.deals import services as deal_services
            from tests.factories import deal_stage

            return deal_services.deal_create(
                by=self.actors[OWNERS[which]],
                customer=self.customers[which],
                data={"title": f"{CANARIES[which]}的商机", "amount": 1000},
                stage=deal_stage("visit"),
            ).pk
        if kind == "recovery":
            return self.recovery_task(which).pk
        if kind == "notification":
            return notification_services.notification_send(
                recipient=self.actors[which],
                key=f"matrix:{which}",
                title=f"跟进提醒：{CANARIES['own_team']}",
                url="/",
                email=False,
            ).pk
        return self.customers[target].pk


@pytest.fixture(scope="module")
def _world_once(django_db_setup, django_db_blocker):
    """The personas and canaries, made once for the module's 450-odd tests in a
    transaction rolled back after the last (a World of its own for each test cost a
    third of the module's time); each test runs in a savepoint inside it."""
    with django_db_blocker.unblock(), transaction.atomic():
        world = World(personas.make_personas())
        yield world, _copy(vars(world))
        transaction.set_rollback(True)


def _copy(state: dict) -> dict:
    return {k: dict(v) if isinstance(v, dict) else v for k, v in state.items()}


@pytest.fixture
def world(db, _world_once):
    """The module's World as it was made. The records a test made (tickets, events)
    went with its savepoint, so World forgets them; the personas and canaries are
    read again, since a test may change one (a role removed, a team's lead set)."""
    world, made = _world_once
    vars(world).clear()
    vars(world).update(_copy(made))
    for row in [*world.actors.values(), *world.customers.values()]:
        row.refresh_from_db()  # also forgets related rows it had cached
        for cached in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
            row.__dict__.pop(cached, None)
    return world


def _body(response) -> str:
    if getattr(response, "streaming", False):
        # Consuming the content closes the response (and its file) the test client's way.
        content = b"".join(response.streaming_content)
    else:
        content = response.content
    return content.decode(errors="replace")


def _post_data(world, url_name, target):
    if url_name == "customers:customer_create":
        return {"name": "矩阵新客户"}
    if url_name == "customers:customer_edit":
        customer = world.customers[target]
        return {"name": "矩阵改名", "version": customer.version}
    return POST_DATA.get(url_name, {})


def _check(world, url, url_name, method, target, actor, expected) -> list[str]:
    """Request `url` as `actor`; what is wrong with the answer (empty when right).

    Runs in a savepoint rolled back afterwards, so each persona finds the same world.
    """
    problems = []
    savepoint = transaction.savepoint()
    try:
        client = Client(raise_request_exception=False)
        if actor != "anonymous":
            client.force_login(world.actors[actor])
        rows_before = Customer.objects.count()
        if method == "POST":
            response = client.post(url, _post_data(world, url_name, target))
        else:
            response = client.get(url)
        body = _body(response)

        got = response.status_code
        if expected == LOGIN:
            location = response.get("Location", "")
            if got != 302 or location.split("?")[0] != reverse("login"):
                problems.append(f"{actor}: expected a redirect to login, got {got}")
        elif expected == PROBE:
            if got not in (200, 503) or response["Content-Type"] != "application/json":
                problems.append(f"{actor}: expected the health JSON, got {got}")
        elif got != expected:
            problems.append(f"{actor}: expected {expected}, got {got}")

        allowed = VISIBLE[actor] | (
            {"pool"}
            if url_name in ("customers:pool_list", "customers:pool_preview")
            else set()
        )
        if url_name in TOKEN_PAGES:
            # Whoever holds the signed link sees the one ticket it was made for.
            allowed = allowed | {target.partition(":")[2]}
        leaked = {t for t, name in CANARIES.items() if name in body} - allowed
        if leaked:
            problems.append(f"{actor}: page shows canaries of {sorted(leaked)}")
        if expected == 200 and url_name in NAME_PAGES:
            which = target.partition(":")[2] or target
            if CANARIES[which] not in body:
                problems.append(f"{actor}: page does not show {CANARIES[which]}")

        if method == "POST" and url_name == "customers:customer_edit":
            renamed = Customer.objects.get(pk=world.customers[target].pk).name
            if (renamed == "矩阵改名") != (expected == 302):
                problems.append(f"{actor}: saved={renamed == '矩阵改名'} ({got})")
        if method == "POST" and url_name == "customers:customer_create":
            added = Customer.objects.count() - rows_before
            if added != (1 if expected == 302 else 0):
                problems.append(f"{actor}: {added} customers added ({got})")
    finally:
        transaction.savepoint_rollback(savepoint)
    return problems


def _row_id(row) -> str:
    url_name, method, target, *_ = row
    return f"{method} {url_name}" + (f" [{target}]" if target else "")


def test_every_url_pattern_is_in_the_access_matrix():
    in_table = {row[0] for row in MATRIX}
    routes = dict(_checked_patterns())
    missing = {name: route for route, name in routes.items() if name not in in_table}
    assert not missing, f"URL patterns missing from the access matrix: {missing}"
    stale = in_table - set(routes.values())
    assert not stale, f"access matrix rows for URLs that no longer exist: {stale}"


def test_every_matrix_row_has_a_status_for_every_persona():
    for row in MATRIX:
        assert len(row) == 3 + len(ACTORS), _row_id(row)


@pytest.mark.parametrize("row", MATRIX, ids=_row_id)
def test_access_matrix(world, row):
    url_name, method, target, *statuses = row
    url = world.url(url_name, target)
    problems = []
    for actor, expected in zip(ACTORS, statuses, strict=True):
        if (url_name, method, target, actor) in KNOWN_BUGS:
            continue
        problems += _check(world, url, url_name, method, target, actor, expected)
    assert not problems, f"{method} {url}:\n" + "\n".join(problems)


def _known_bug_cases():
    expected = {
        (row[0], row[1], row[2], actor): status
        for row in MATRIX
        for actor, status in zip(ACTORS, row[3:], strict=True)
    }
    for cell, reason in KNOWN_BUGS.items():
        yield pytest.param(
            *cell,
            expected[cell],
            marks=pytest.mark.xfail(strict=True, reason=reason),
            id=f"{_row_id(cell[:3])} as {cell[3]}",
        )


@pytest.mark.parametrize(
    "url_name, method, target, actor, expected", list(_known_bug_cases())
)
def test_access_matrix_known_bugs(world, url_name, method, target, actor, expected):
    url = world.url(url_name, target)
    problems = _check(world, url, url_name, method, target, actor, expected)
    assert not problems, "\n".join(problems)


# --- lists, home pages and exports show only what the role may see -------------------

LIST_ACTORS = sorted(set(VISIBLE) - {"anonymous", "readonly_user"})


def _canaries_in(body: str) -> set[str]:
    return {target for target, name in CANARIES.items() if name in body}


@pytest.mark.parametrize("actor", LIST_ACTORS)
def test_customer_list_shows_exactly_the_canaries_the_role_may_see(
    client, world, actor
):
    client.force_login(world.actors[actor])
    response = client.get(reverse("customers:customer_list"))
    assert _canaries_in(response.content.decode()) == VISIBLE[actor]


@pytest.mark.parametrize("actor", LIST_ACTORS)
def test_home_page_shows_no_canary_of_other_teams(client, world, actor):
    client.force_login(world.actors[actor])
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert _canaries_in(response.content.decode()) <= VISIBLE[actor]


def test_sales_home_lists_their_own_customer(client, world):
    client.force_login(world.actors["sales_rep"])
    body = client.get(reverse("home")).content.decode()
    assert CANARIES["own_team"] in body


@pytest.mark.parametrize("actor", ["manager", "admin_user"])
def test_export_contains_exactly_the_canaries_the_role_may_see(client, world, actor):
    client.force_login(world.actors[actor])
    response = client.get(reverse("customers:export_download"))
    assert response.status_code == 200
    assert _canaries_in(_body(response)) == VISIBLE[actor]


def test_outsider_searching_another_teams_customer_finds_nothing(client, world):
    client.force_login(world.actors["outsider"])
    for query in (CANARIES["own_team"], PHONES["own_team"]):
        # The search box posts; a phone comes back as ?s=<token>.
        response = client.post(
            reverse("customers:customer_list"), {"q": query}, follow=True
        )
        assert response.status_code == 200
        body = response.content.decode()
        assert "没有找到" in body
        assert world.customers["own_team"].get_absolute_url() not in body


def _page_text(response, url):
    """The page with its per-response CSRF tokens and its own address blanked out."""
    body = response.content.decode().replace(url, "URL")
    return re.sub(
        r'("X-CSRFToken": "|name="csrfmiddlewaretoken" value=")[^"]*', r"\1", body
    )


def test_a_hidden_customer_and_a_missing_one_answer_alike(client, world):
    """So that ids cannot be probed for existence."""
    client.force_login(world.actors["outsider"])
    hidden_url = reverse(
        "customers:customer_detail", args=[world.customers["own_team"].pk]
    )
    missing_url = reverse("customers:customer_detail", args=[MISSING_ID])
    hidden = client.get(hidden_url)
    missing = client.get(missing_url)
    assert hidden.status_code == missing.status_code == 404
    assert _page_text(hidden, hidden_url) == _page_text(missing, missing_url)


def test_marking_someone_elses_notification_read_changes_nothing(client, world):
    url = world.url("notifications:notification_read", "notification:sales_rep")
    client.force_login(world.actors["outsider"])
    assert client.post(url).status_code == 302
    sales_rep = world.actors["sales_rep"]
    assert Notification.objects.unread().filter(recipient=sales_rep).count() == 1


def test_user_whose_role_was_removed_cannot_read_old_notifications(client, world):
    sales_rep = world.actors["sales_rep"]
    world.url("notifications:notification_read", "notification:sales_rep")
    sales_rep.groups.clear()
    client.force_login(sales_rep)
    response = client.get(reverse("notifications:notification_list"))
    assert CANARIES["own_team"] not in response.content.decode()
    assert response.status_code == 403


# --- the visibility scope is a setting ---------------------------------------------


def test_default_sales_scope_is_team(settings, client, world):
    assert settings.KEHU_VISIBILITY["sales"] == "team"
    client.force_login(world.actors["teammate"])
    customer = world.customers["own_team"]
    url = reverse("customers:customer_detail", args=[customer.pk])
    assert client.get(url).status_code == 200


def test_sales_scope_own_hides_a_teammates_customer(settings, client, world):
    settings.KEHU_VISIBILITY = {**settings.KEHU_VISIBILITY, "sales": "own"}
    customer = world.customers["own_team"]
    url = reverse("customers:customer_detail", args=[customer.pk])

    client.force_login(world.actors["teammate"])
    response = client.get(url)
    assert response.status_code == 404
    assert customer.name not in response.content.decode()
    listing = client.get(reverse("customers:customer_list")).content.decode()
    assert customer.name not in listing
    ticket_url = world.url("service:ticket_detail", "ticket:own_team")
    assert client.get(ticket_url).status_code == 404

    client.force_login(world.actors["sales_rep"])
    assert client.get(url).status_code == 200


def test_sales_scope_department_shows_another_teams_customer(settings, client, world):
    settings.KEHU_VISIBILITY = {**settings.KEHU_VISIBILITY, "sales": "department"}
    same_department = world.customers["own_team"]
    other_department = world.customers["other_dept"]

    client.force_login(world.actors["outsider"])
    response = client.get(
        reverse("customers:customer_detail", args=[same_department.pk])
    )
    assert response.status_code == 200
    assert same_department.name in response.content.decode()
    listing = client.get(reverse("customers:customer_list")).content.decode()
    assert _canaries_in(listing) == {"own_team", "other_team"}

    response = client.get(
        reverse("customers:customer_detail", args=[other_department.pk])
    )
    assert response.status_code == 404
    assert other_department.name not in response.content.decode()


def test_an_unknown_scope_falls_back_to_own(settings, client, world):
    settings.KEHU_VISIBILITY = {**settings.KEHU_VISIBILITY, "sales": "everything"}
    customer = world.customers["own_team"]
    url = reverse("customers:customer_detail", args=[customer.pk])
    client.force_login(world.actors["teammate"])
    assert client.get(url).status_code == 404
    client.force_login(world.actors["sales_rep"])
    assert client.get(url).status_code == 200
