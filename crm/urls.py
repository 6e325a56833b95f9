from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from crm.accounts import views as accounts_views
from crm.core import views as core_views

handler403 = "crm.core.views.error_403"
handler404 = "crm.core.views.error_404"
handler500 = "crm.core.views.error_500"

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("favicon.ico", core_views.favicon, name="favicon"),
    path("audit/", core_views.audit_log, name="audit_log"),
    path("system/actions/", include("crm.scheduler.urls")),
    # The admins' settings area (crm/core/crud.py) and the desk's sections of it.
    path("settings/desk/", include("service.admin_urls")),
    path("settings/deals/", include("culture.deals.admin_urls")),
    path("settings/value/", include("culture.value.admin_urls")),
    path("settings/scorecard/", include("culture.scorecard.admin_urls")),
    path("settings/defects/", include("service.defects.admin_urls")),
    path("settings/", include("crm.core.settings_urls")),
    path(
        "accounts/login/",
        accounts_views.LoginView.as_view(),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("accounts/", include("crm.accounts.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("customers/", include("customers.urls")),
    path("service/", include("service.urls")),
    path("handover/", include("service.handover.urls")),
    path("property/", include("service.property.urls")),
    path("defects/", include("service.defects.urls")),
    path("segments/", include("culture.segments.urls")),
    path("deals/", include("culture.deals.urls")),
    path("dashboards/", include("culture.dashboards.urls")),
    path("scorecard/", include("culture.scorecard.urls")),
    # 服务补救: the recovery tasks that follow unhappy survey answers.
    path("recovery/", include("culture.satisfaction.recovery_urls")),
    # One's own figures behind the home page's 个人指标 panel.
    path("scorecard/me/", include("culture.scorecard.personal_urls")),
    # The weekly culture report's PDF (managers and admins).
    path("scorecard/report/", include("culture.scorecard.report_urls")),
    # The public complaint/repair form: no login.
    path("report/", include("service.public_urls")),
    # An owner's personal 入伙 booking link: no login.
    path("o/", include("service.handover.owner_urls")),
    # A contractor's personal list of defects to rectify: no login.
    path("c/", include("service.defects.public_urls")),
    # A customer's personal satisfaction survey link: no login.
    path("s/", include("culture.satisfaction.public_urls")),
    path("satisfaction/", include("culture.satisfaction.urls")),
    path("notifications/", include("crm.notifications.urls")),
    path("value/", include("culture.value.urls")),
    path("segments/<int:pk>/dashboard/", include("culture.value.segment_urls")),
    # Before the admin's own: its sign-in takes the same limits as ours.
    path("admin/login/", accounts_views.AdminLoginView.as_view(), name="admin_login"),
    path("admin/", admin.site.urls),
]
