"""The REST API under /api, one module per domain. Every route but POST /api/login needs a session
(the gate in `web.auth` answers 401 before a route runs); roles are checked per route (403).

Who may do what:
  admin     everything, including creating objects and accounts
  operator  read the board, acknowledge / close / annotate alarms
  auditor   read the board and its history, change nothing
  crew      /api/me, /api/logout, and their own group's work (web.routes.dispatch, /ws/crew)

Errors are JSON {"detail": "..."}: 401 not logged in, 403 wrong role, 404 no such thing,
409 the action does not fit the alarm's state (the alarm engine's message) or an edit was made from a
stale version, 422 a bad request body or parameter (with "errors" listing each problem: field, type,
English msg and a `message` in the user's language, see web/errors.py), 429 too many failed logins.
"""

from fastapi import APIRouter

from web.routes import (
                        admin,
                        alarms,
                        compliance,
                        dispatch,
                        evidence,
                        history,
                        imports,
                        objects,
                        session,
                        signals,
                        system,
                        users,
)

PUBLIC: list[APIRouter] = [session.public]
# history before dispatch's routers: /api/shifts/current and /api/shifts/report are the post's shift
# figures, the rest of /api/shifts is dispatch's duty shifts
ROUTERS: list[APIRouter] = [session.router, alarms.router, history.router, objects.router, signals.router,
                            system.router, users.router, imports.router, admin.router, compliance.router,
                            evidence.router, dispatch.router]
