"""aiogram routers, one per feature, composed here with the role filters on the parents.

Order matters: outsiders (strangers, pending, denied) are handled first and get nothing but the
request-access flow; then analysts' features; the admin routers inside the analysts' router
carry their own admin filter; anything left over is answered (callbacks: refused and logged).
"""

from __future__ import annotations

from aiogram import Router

from handlers.access import (
    build_access_admin_router,
    build_leftovers_router,
    build_membership_router,
    build_outsiders_router,
)
from handlers.admin import build_admin_router
from handlers.campaigns import build_amplification_router, build_campaigns_router
from handlers.commands import build_commands_router, build_fallback_router
from handlers.desks import build_desk_membership_router, build_desks_router
from handlers.errors import install_error_boundary
from handlers.feedback import build_feedback_router
from handlers.learning import build_learning_router
from handlers.reports import build_reports_router
from handlers.roles import ANALYST, RoleFilter
from handlers.shared import build_shared_admin_router, build_shared_router
from handlers.watches import build_watches_router


def build_root_router() -> Router:
    root = Router(name="root")
    root.include_router(build_desk_membership_router())
    root.include_router(build_outsiders_router())
    root.include_router(build_membership_router())

    analyst = Router(name="analyst")
    analyst.message.filter(RoleFilter(ANALYST))
    analyst.callback_query.filter(RoleFilter(ANALYST))
    analyst.include_routers(
        build_commands_router(),
        build_watches_router(),
        build_feedback_router(),
        build_learning_router(),
        build_reports_router(),
        build_campaigns_router(),
        build_shared_router(),
        build_shared_admin_router(),
        build_desks_router(),
        build_admin_router(),
        build_amplification_router(),
        build_access_admin_router(),
        build_fallback_router(),
    )
    root.include_router(analyst)
    root.include_router(build_leftovers_router())
    install_error_boundary(root)
    return root
