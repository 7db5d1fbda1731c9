"""The Intelligence Unit console's web app: OpenID Connect sign-in, queues, decision review, held reports, re-contact.

Sign-in is the authorization-code flow with PKCE against the force's identity provider (authlib reads
its discovery document, checks the ID token's signature, issuer, audience and nonce); the officer id is
the token's subject and the roles its roles claim. The session is a signed cookie (HttpOnly, SameSite
Lax, Secure unless configured off for local runs) that ends after a short idle time and at a fixed
maximum; it holds the officer id, roles, CSRF token and sign-in time, never anything of an intel.
Every POST carries the session's CSRF token. Nothing here logs a reason, a text or anything of a source.
"""

from __future__ import annotations

import hmac
import secrets
import time
import warnings
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from kafka.errors import KafkaError
from starlette.datastructures import MutableHeaders
from starlette.middleware.sessions import SessionMiddleware

from schemas import DecisionReview
from services.common.errors import CpiError
from services.common.files import write_private

with warnings.catch_warnings():
    # authlib turns its own deprecation warnings always-on and warns at import that its httpx client will move to
    # httpx2; the console uses the Starlette client, so the line would only be noise on the console's stderr.
    import authlib.deprecate  # noqa: F401  (its always-on filter first, so the ignore below comes before it)

    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.starlette_client import OAuth, OAuthError
from services.console import pages
from services.console.adapters.decisions import DecisionFeed, ReviewQueue, publish_review
from services.console.adapters.held import HeldReview, NotFoundInText
from services.console.adapters.requests import RecontactRequests, new_request_id
from services.console.domain import (
    Officer,
    QueueFilter,
    RequestStatus,
    ReviewForm,
    decision_refusal,
    needs_approval,
    request_refusal,
    review_of,
    review_queue,
    roles_of,
    summarise_agreement,
    view_refusal,
)
from services.console.metrics import (
    CSRF_REFUSED,
    DECISION_REVIEWS,
    HELD_ACTIONS,
    RECONTACT,
    RECONTACT_REFUSED,
    SIGN_INS,
)
from services.console.settings import ConsoleSettings
from services.intake.api import SECURITY_HEADERS
from services.sanitiser.adapters.sealed_store import (
    MIN_REASON_CHARS,
    UNSEAL_ROLE,
    AuditUnavailable,
    HeldReviewDenied,
    SealedRecordNotFound,
    SealedStore,
)

log = structlog.get_logger(__name__)

SESSION_COOKIE = "cpi_console"
_MAX_FORM_BYTES = 64 * 1024
_STATIC = Path(__file__).parent / "static"


def session_secret(settings: ConsoleSettings) -> str:
    """`CPI_CONSOLE_SESSION_SECRET` if set; else a random secret kept under the data dir, so restarts keep it."""
    if settings.console_session_secret is not None:
        return settings.console_session_secret.get_secret_value()
    path = settings.data_dir / "keys" / "console-session.secret"
    if not path.exists():
        write_private(path, secrets.token_hex(32).encode())
    return path.read_text().strip()


class _SecurityHeaders:
    """The edge's security headers (no-store, CSP without scripts, no framing) on every console response."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        async def with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


def create_console(settings: ConsoleSettings, *, store: SealedStore, held: HeldReview,
                   requests: RecontactRequests, decisions: ReviewQueue, feed: DecisionFeed | None = None,
                   reviews: Callable[[DecisionReview], None] | None = None) -> FastAPI:
    """The console app over the given sealed store, held review, request queue and review queue (and the feed
    that fills it, whose health the queue page reports); `reviews` sends a handler's review to the router
    (by default to cpi.decision.reviewed.v1)."""
    send_review = reviews or (lambda review: publish_review(settings, review))
    app = FastAPI(title="CPI Intelligence Unit console", docs_url=None, redoc_url=None, openapi_url=None)
    oauth = OAuth()
    oauth.register(
        "idp", client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None,
        server_metadata_url=f"{(settings.oidc_issuer or '').rstrip('/')}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid", "code_challenge_method": "S256"},
    )
    idp: Any = oauth.create_client("idp")
    max_age = settings.console_session_max_minutes * 60
    criteria, targets = settings.review_criteria, settings.review_targets
    stylesheet = (_STATIC / "console.css").read_bytes()

    def officer_of(request: Request) -> Officer | None:
        session = request.session
        if "officer_id" not in session:
            return None
        now = time.time()
        if now - float(session.get("since", 0)) > max_age:
            session.clear()
            return None
        # Touched on every request, so the cookie (and its signed timestamp, which the middleware checks
        # against the idle time) is renewed: the idle clock restarts, the maximum since sign-in does not.
        session["seen"] = int(now)
        return Officer(str(session["officer_id"]), frozenset(session.get("roles", [])))

    def page(html: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(html, status_code=status)

    def to_sign_in(request: Request) -> RedirectResponse:
        request.session["next"] = request.url.path
        return RedirectResponse("/signin", status_code=303)

    async def posted(request: Request) -> dict[str, list[str]] | None:
        """The urlencoded form, or None when too large or unreadable."""
        body = await request.body()
        if len(body) > _MAX_FORM_BYTES:
            return None
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200, errors="strict")
        except (UnicodeDecodeError, ValueError):
            return None
        form: dict[str, list[str]] = {}
        for name, value in pairs:
            form.setdefault(name, []).append(value)
        return form

    async def authorised_post(request: Request) -> tuple[Officer, str, dict[str, list[str]]] | Response:
        """The officer, their CSRF token and the form of a POST; or the refusal to send instead."""
        officer = officer_of(request)
        if officer is None:
            return page(pages.message("Your session has ended", "Sign in again; nothing was done.",
                                      link="/signin"), 401)
        form = await posted(request)
        token = str(request.session.get("csrf", ""))
        sent = (form or {}).get("csrf_token", [""])[0]
        if form is None or not token or not hmac.compare_digest(token, sent):
            CSRF_REFUSED.inc()
            return page(pages.message("This form has expired", "For your security, forms must be sent from this "
                                      "console in the same session. Nothing was done.", officer, token,
                                      link="/"), 403)
        return officer, token, form

    def field(form: dict[str, list[str]], name: str) -> str:
        return form.get(name, [""])[0]

    # -- sign-in -------------------------------------------------------------------

    @app.get("/signin")
    async def signin(request: Request) -> Response:
        if settings.oidc_issuer is None:
            return page(pages.message("Sign-in is not configured", "Set CPI_OIDC_ISSUER to the force's identity "
                                      "provider."), 503)
        response: Response = await idp.authorize_redirect(request, f"{settings.console_base_url}/auth/callback")
        return response

    @app.get("/auth/callback")
    async def callback(request: Request) -> Response:
        try:
            token = await idp.authorize_access_token(request)
        except OAuthError as exc:
            SIGN_INS.labels("failed").inc()
            log.warning("console_sign_in_failed", error=exc.error)
            return page(pages.message("Sign-in failed", "The identity provider did not sign you in. Try again.",
                                      link="/signin"), 400)
        claims = token.get("userinfo") or {}
        subject = str(claims.get("sub", "")).strip()
        roles = roles_of(claims, settings.oidc_roles_claim)
        following = str(request.session.get("next", "/"))
        request.session.clear()  # a fresh session at every sign-in: nothing carried over from before
        if not subject or not roles:
            SIGN_INS.labels("no_role").inc()
            log.warning("console_sign_in_refused", reason_code="no_console_role")
            return page(pages.message("No access", "Your account has no Intelligence Unit console role."), 403)
        request.session.update({"officer_id": subject[:100], "roles": sorted(roles), "since": time.time(),
                                "csrf": secrets.token_urlsafe(32)})
        SIGN_INS.labels("signed_in").inc()
        log.info("console_signed_in", officer_id=subject[:100], roles=sorted(roles))
        safe_next = following if following.startswith("/") and not following.startswith("//") else "/"
        return RedirectResponse(safe_next, status_code=303)

    @app.post("/signout")
    async def signout(request: Request) -> Response:
        checked = await authorised_post(request)
        if isinstance(checked, Response):
            return checked
        request.session.clear()
        return page(pages.message("Signed out", "You have signed out of the console.", link="/signin"))

    # -- pages ---------------------------------------------------------------------

    @app.get("/")
    async def home(request: Request) -> Response:
        officer = officer_of(request)
        if officer is None:
            return to_sign_in(request)
        return page(pages.home(officer, str(request.session["csrf"])))

    @app.get("/queue")
    async def queue(request: Request) -> Response:
        officer = officer_of(request)
        if officer is None:
            return to_sign_in(request)
        now = datetime.now(UTC)
        filters = QueueFilter.from_query(request.query_params)
        rows = review_queue(decisions.items(), criteria=criteria, targets=targets, now=now, filters=filters)
        waiting, note = None, ""
        if officer.intelligence_unit:
            try:
                waiting = held.waiting()
            except (CpiError, KafkaError) as exc:  # held topic unreadable now: the decisions still worth showing
                log.warning("console_held_unreadable", error=type(exc).__name__)
                note = "The held reports cannot be read just now; try again shortly."
        return page(pages.queues(officer, str(request.session["csrf"]), rows, filters, waiting, today=now.date(),
                                 criteria=criteria, targets=targets, held_note=note,
                                 stale=feed is not None and not feed.current()))

    @app.get("/agreement")
    async def agreement_page(request: Request) -> Response:
        officer = officer_of(request)
        if officer is None:
            return to_sign_in(request)
        return page(pages.agreement(officer, str(request.session["csrf"]),
                                    summarise_agreement(decisions.first_reviews())))

    @app.get("/held")
    async def held_list(request: Request) -> Response:
        officer = officer_of(request)
        if officer is None:
            return to_sign_in(request)
        csrf = str(request.session["csrf"])
        if not officer.intelligence_unit:
            return page(pages.message("Not permitted", "Held reports are for Intelligence Unit officers.",
                                      officer, csrf), 403)
        return page(pages.held_list(officer, csrf, held.waiting()))

    @app.get("/held/{intel_id}")
    async def held_one(request: Request, intel_id: str) -> Response:
        officer = officer_of(request)
        if officer is None:
            return to_sign_in(request)
        csrf = str(request.session["csrf"])
        if not officer.intelligence_unit:
            return page(pages.message("Not permitted", "Held reports are for Intelligence Unit officers.",
                                      officer, csrf), 403)
        record = next((r for r in held.waiting() if r.intel_id == intel_id), None)
        if record is None:
            return page(pages.message("Not held", "No report with that id is waiting for review.", officer, csrf,
                                      link="/held"), 404)
        return page(pages.held_open(officer, csrf, record))

    @app.post("/held/{intel_id}/{action}")
    async def held_action(request: Request, intel_id: str, action: str) -> Response:
        checked = await authorised_post(request)
        if isinstance(checked, Response):
            return checked
        officer, csrf, form = checked
        if action not in {"show", "redact", "release"}:
            return page(pages.message("Not found", "There is no such action.", officer, csrf), 404)
        reason = field(form, "reason")
        try:
            if action == "show":
                record, content = held.show(officer, intel_id, reason)
                result = page(pages.held_review(officer, csrf, record, content))
            elif action == "redact":
                texts = [line.strip() for line in field(form, "texts").splitlines() if line.strip()]
                if not texts:
                    return page(pages.message("Nothing to redact", "Enter the text to redact, one per line.",
                                              officer, csrf, link=f"/held/{intel_id}"), 422)
                record, content = held.redact(officer, intel_id, reason, texts)
                result = page(pages.held_review(officer, csrf, record, content,
                                                note=f"Redacted: revision {record.revision}."))
            else:
                record = held.release(officer, intel_id, reason)
                result = page(pages.message("Released", f"Report {intel_id} has been released to the router.",
                                            officer, csrf, link="/held"))
        except HeldReviewDenied as exc:
            HELD_ACTIONS.labels(action, exc.code).inc()
            return page(pages.message("Not permitted", f"{exc} The attempt has been audited.", officer, csrf,
                                      link="/held"), 403)
        except NotFoundInText as exc:
            HELD_ACTIONS.labels(action, "text_not_found").inc()
            return page(pages.message("Nothing was redacted", f"Text {exc} of those you entered does not occur "
                                      "as a whole word in the report.", officer, csrf, link=f"/held/{intel_id}"), 422)
        HELD_ACTIONS.labels(action, "done").inc()
        log.info("console_held_action", action=action, intel_id=intel_id, officer_id=officer.officer_id)
        return result

    # -- reviewing decisions -----------------------------------------------------------

    def no_such_decision(officer: Officer, csrf: str) -> Response:
        return page(pages.message("Not found", "The console holds no decision with that id.", officer, csrf,
                                  link="/queue"), 404)

    @app.get("/decisions/{decision_id}")
    async def decision_page(request: Request, decision_id: str) -> Response:
        officer = officer_of(request)
        if officer is None:
            return to_sign_in(request)
        csrf = str(request.session["csrf"])
        found = decisions.get(decision_id[:64])
        if found is None:
            return no_such_decision(officer, csrf)
        return page(pages.decision_review(officer, csrf, found))

    @app.post("/decisions/{decision_id}/review")
    async def review_decision(request: Request, decision_id: str) -> Response:
        checked = await authorised_post(request)
        if isinstance(checked, Response):
            return checked
        officer, csrf, form = checked
        found = decisions.get(decision_id[:64])
        if found is None:
            return no_such_decision(officer, csrf)
        sent = ReviewForm(action=field(form, "action"), revision=field(form, "revision"), reason=field(form, "reason"),
                          outcomes=tuple(form.get("outcomes", [])), priority=field(form, "priority"),
                          source_evaluation=field(form, "source_evaluation"),
                          intelligence_assessment=field(form, "intelligence_assessment"),
                          handling_code=field(form, "handling_code"))
        review = review_of(found, found.revision, officer, sent, datetime.now(UTC).date())
        if isinstance(review, list):
            code = "role_not_permitted" if not officer.may_review_decisions else (
                "stale_revision" if review[0].field == "revision" else "invalid")
            DECISION_REVIEWS.labels(sent.action if sent.action in {"confirm", "amend"} else "unknown", code).inc()
            # The problems' field names only: a message may quote what was typed.
            log.warning("console_review_refused", decision_id=found.decision_id, reason_code=code,
                        fields=sorted({p.field for p in review}))
            status = 403 if code == "role_not_permitted" else 409 if code == "stale_revision" else 422
            return page(pages.decision_review(officer, csrf, found, form=sent, problems=review), status)
        if not decisions.claim_review(found.decision_id, found.revision):
            DECISION_REVIEWS.labels(sent.action, "stale_revision").inc()
            return page(pages.decision_review(officer, csrf, found, note="Another handler has just reviewed this "
                                              "revision; your review was not sent. Open it again shortly."), 409)
        try:
            send_review(review)
        except (CpiError, KafkaError) as exc:
            decisions.release_review(found.decision_id, found.revision)  # not sent: the revision may be reviewed
            DECISION_REVIEWS.labels(sent.action, "unsent").inc()
            log.warning("console_review_unsent", decision_id=found.decision_id, error=type(exc).__name__)
            return page(pages.decision_review(officer, csrf, found, form=sent, note="The review could not be sent "
                                              "just now (the broker did not take it); nothing was published. Send "
                                              "it again shortly."), 503)
        DECISION_REVIEWS.labels(sent.action, "sent").inc()
        log.info("console_review_sent", decision_id=found.decision_id, action=review.action.value,
                 revision=found.revision + 1, officer_id=officer.officer_id)
        return page(pages.message(
            "Review sent", f"Your {'confirmation' if sent.action == 'confirm' else 'amendment'} of decision "
            f"{found.decision_id} is with the router, which publishes it as revision {found.revision + 1}.",
            officer, csrf, link="/queue"))

    def recontact_page(officer: Officer, csrf: str, note: str = "", status: int = 200) -> Response:
        return page(pages.recontact(officer, csrf, requests.of_requester(officer.officer_id),
                                    requests.pending() if officer.may_decide_recontact else [], note=note), status)

    @app.get("/recontact")
    async def recontact(request: Request) -> Response:
        officer = officer_of(request)
        if officer is None:
            return to_sign_in(request)
        return recontact_page(officer, str(request.session["csrf"]))

    @app.post("/recontact")
    async def recontact_request(request: Request) -> Response:
        checked = await authorised_post(request)
        if isinstance(checked, Response):
            return checked
        officer, csrf, form = checked
        intel_id, reason = field(form, "intel_id").strip().lower(), field(form, "reason")
        refusal = request_refusal(officer, intel_id, reason, MIN_REASON_CHARS)
        audit = {"role": officer.audit_role, "officer_id": officer.officer_id, "reason": reason}
        if refusal is not None:
            RECONTACT_REFUSED.labels("request", refusal[0]).inc()
            store.audit_recontact("request", "", intel_id[:64], result=f"denied:{refusal[0]}", **audit)
            log.warning("console_recontact_refused", step="request", reason_code=refusal[0])
            return recontact_page(officer, csrf, refusal[1], 403 if refusal[0] == "role_not_permitted" else 422)
        approval = needs_approval(settings.recontact_approval, officer)
        # Audited before it is queued: if the audit log cannot be written, there is no request to approve.
        request_id = new_request_id()
        store.audit_recontact("request", request_id, intel_id,
                              result="granted" if approval else "granted:no_approval_needed", **audit)
        created = requests.add(intel_id, officer.officer_id, reason,
                               RequestStatus.PENDING if approval else RequestStatus.APPROVED, request_id)
        RECONTACT.labels("request", "pending" if approval else "approved").inc()
        log.info("console_recontact_requested", request_id=created.request_id, intel_id=intel_id,
                 officer_id=officer.officer_id)
        return recontact_page(officer, csrf, "Your request is waiting for a supervisor's approval." if approval
                              else "Your request needs no approval: you may see the details once.")

    @app.post("/recontact/{request_id}/{step}")
    async def recontact_step(request: Request, request_id: str, step: str) -> Response:
        checked = await authorised_post(request)
        if isinstance(checked, Response):
            return checked
        officer, csrf, _form = checked
        if step not in {"approve", "refuse", "view"}:
            return page(pages.message("Not found", "There is no such action.", officer, csrf), 404)
        found = requests.get(request_id[:64])
        refusal = view_refusal(officer, found) if step == "view" else decision_refusal(officer, found)
        audit = {"role": officer.audit_role, "officer_id": officer.officer_id,
                 "reason": found.reason if found else ""}
        intel_id = found.intel_id if found else ""
        if refusal is not None:
            RECONTACT_REFUSED.labels(step, refusal[0]).inc()
            store.audit_recontact(step, request_id[:64], intel_id, result=f"denied:{refusal[0]}", **audit)
            log.warning("console_recontact_refused", step=step, reason_code=refusal[0], request_id=request_id[:64])
            return recontact_page(officer, csrf, refusal[1], 403)
        assert found is not None
        to = {"approve": RequestStatus.APPROVED, "refuse": RequestStatus.REFUSED, "view": RequestStatus.VIEWED}[step]
        store.audit_recontact(step, request_id, intel_id, result="granted", **audit)
        if not requests.move(found, to, officer.officer_id if step != "view" else None):
            return recontact_page(officer, csrf, "Someone else acted on that request first.", 409)
        RECONTACT.labels(step, "done").inc()
        log.info("console_recontact_step", step=step, request_id=request_id, officer_id=officer.officer_id)
        if step != "view":
            return recontact_page(officer, csrf, f"The request has been {to.value}.")
        try:
            source = store.unseal(intel_id, role=UNSEAL_ROLE, officer_id=officer.officer_id,
                                  reason=f"re-contact request {request_id}: {found.reason}")
        except SealedRecordNotFound:
            return recontact_page(officer, csrf, "No sealed record has that intel id (it may have been purged).", 404)
        return page(pages.recontact_details(officer, csrf, found, source))

    @app.exception_handler(AuditUnavailable)
    async def audit_unavailable(request: Request, exc: AuditUnavailable) -> Response:
        """Fail closed: an action whose audit entry the audit topic did not take was not done (nothing shown,
        nothing published); a re-contact attempt so refused is counted, so it alerts like any refused one."""
        parts = request.url.path.strip("/").split("/")
        if parts[0] == "recontact":
            RECONTACT_REFUSED.labels(parts[2] if len(parts) == 3 else "request", "audit_unavailable").inc()
        log.error("console_audit_unavailable", path=request.url.path.split("/")[1])
        return page(pages.message("Not done: the audit log is unavailable", "Every step here is written to the "
                                  "audit log first, and it cannot be written just now, so nothing was done and "
                                  "nothing was shown. Try again in a few minutes.", link="/"), 503)

    @app.get("/static/console.css")
    async def css() -> Response:
        return Response(stylesheet, media_type="text/css")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(SessionMiddleware, secret_key=session_secret(settings), session_cookie=SESSION_COOKIE,
                       max_age=settings.console_session_idle_minutes * 60, same_site="lax",
                       https_only=settings.console_cookie_secure)
    app.add_middleware(_SecurityHeaders)
    return app
