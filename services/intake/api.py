"""The intake HTTP edge: the web form and `POST /api/v1/submissions`, producing to the received topic.

The source block is field-encrypted before anything is produced, so no topic ever holds it
readable. The receipt handed back to the professional never becomes an id downstream. Hostile or
broken input gets a 4xx with reasons, never a 500: bodies are size-limited while they are read,
parsed strictly (no NaN, no duplicate keys, bounded nesting) and validated by the one function
every channel uses.

Partner systems authenticate with an API key; the form is open to people and guarded by its CSRF
token. The rate limit counts per partner, else per client address (believed from X-Forwarded-For
only when the connection comes from a configured proxy). /metrics is not served here: it has its
own internal listener (services.intake.server).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import structlog
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel
from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from schemas import Channel, Submission, ValidationIssue
from services.common.envelope import RecipientKey
from services.common.keys import load_edge_keys
from services.common.settings import IntakeSettings
from services.intake.domain import parse_json
from services.intake.form import read_form, render_form, render_message, render_receipt
from services.intake.idempotency import (
    IdempotencyStore,
    Receipt,
    form_principal,
    idempotency_path,
    partner_principal,
)
from services.intake.metrics import RATE_LIMITED, REQUEST_SECONDS, UNAUTHENTICATED
from services.intake.partners import PartnerKeys, bearer
from services.intake.protection import RateLimiter, csrf_token, csrf_valid, edge_secret, new_csrf_cookie
from services.intake.receiving import Answer, Intake, KafkaPublisher, Publisher, refusal

__all__ = ["Problems", "Receipt", "create_api"]

log = structlog.get_logger(__name__)

SUBMISSIONS_PATH = "/api/v1/submissions"
CSRF_COOKIE = "cpi_csrf"
# A form post is percent-encoded: non-Latin text grows up to nine-fold on the wire, so the form
# gets more room than the JSON body for the same submission.
FORM_BODY_FACTOR = 4
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATIC = Path(__file__).parent / "static"


class Problems(BaseModel):
    """Why a request was refused: every problem, each with a JSON pointer, a stable code and a message."""

    errors: list[ValidationIssue]


class EdgeMiddleware:
    """Security headers and no-store on every response; the request latency histogram.

    Plain ASGI rather than BaseHTTPMiddleware: it adds nothing per request but a header loop.
    """

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            route = scope.get("route")
            method = scope.get("method", "")
            REQUEST_SECONDS.labels(getattr(route, "path", "unmatched"), method if method in _METHODS else "other",
                                   str(status)).observe(time.perf_counter() - started)


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None once it passes `limit` bytes: refused while reading, never buffered whole."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def media_type_is(request: Request, expected: str) -> bool:
    """True for `expected`, with no charset or a UTF-8 one."""
    media, _, params = request.headers.get("content-type", "").partition(";")
    if media.strip().lower() != expected:
        return False
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in {"utf-8", "utf8"}:
            return False
    return True


def _client(request: Request) -> str:
    # Used only as the rate limiter's key, in memory: never logged or stored. It is the connection's
    # peer, or what a trusted proxy says the peer was (the ProxyHeadersMiddleware in create_api).
    return "address:" + (request.client.host if request.client else "unknown")


def create_api(settings: IntakeSettings, *, transport_key: RecipientKey | None = None,
               publisher: Publisher | None = None, idempotency: IdempotencyStore | None = None) -> FastAPI:
    """The FastAPI app. Kafka is the default publisher; tests may pass their own adapters."""
    sink: Publisher = publisher or KafkaPublisher(settings)
    secret = edge_secret(settings)
    intake = Intake(transport_key=transport_key or load_edge_keys(settings), publisher=sink,
                    idempotency=idempotency or IdempotencyStore(idempotency_path(settings)), secret=secret)
    limiter = RateLimiter(settings.rate_limit_per_minute)
    partners = PartnerKeys.load(settings.api_keys_file)
    stylesheet = (_STATIC / "form.css").read_bytes()
    state = {"ready": False}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await sink.start()
        state["ready"] = True
        try:
            yield
        finally:
            state["ready"] = False
            await sink.stop()

    app = FastAPI(title="CPI intake", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Community Partnership Information: share non-urgent information with the police. "
                              "If anyone is in immediate danger, call 999.")
    app.add_middleware(EdgeMiddleware)
    if settings.trusted_proxies:  # the proxy's view of the client, believed from those addresses only
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)

    def json_answer(answer: Answer, challenge: bool = False) -> JSONResponse:
        headers = {"retry-after": str(answer.retry_after)} if answer.retry_after else {}
        if challenge and answer.status == 401:
            headers["www-authenticate"] = 'Bearer realm="cpi-intake"'
        if answer.receipt is not None:
            return JSONResponse(answer.receipt.model_dump(mode="json"), status_code=answer.status, headers=headers)
        body = Problems(errors=list(answer.problems)).model_dump(mode="json")
        return JSONResponse(body, status_code=answer.status, headers=headers)

    def refused(request: Request, client: str | None = None) -> Answer | None:
        """429 once `client` (a partner, else the request's address) is past its budget."""
        client = client or _client(request)
        if not limiter.allow(client):
            RATE_LIMITED.inc()
            return refusal(429, "rate_limited", "Too many submissions from your connection. Wait a minute and "
                             "try again.", retry_after=limiter.retry_after(client))
        return None

    def unauthenticated(request: Request) -> Answer:
        UNAUTHENTICATED.inc()
        # A guess costs the address a token, so keys cannot be tried at any speed.
        return refused(request) or refusal(401, "unauthenticated", "Partner systems must send their API key "
                                           "as 'Authorization: Bearer <key>'. People can use the form at /.")

    problem_responses: dict[int | str, dict[str, Any]] = {
        status: {"model": Problems, "description": text} for status, text in (
            (400, "The body is not valid JSON, has duplicate keys, NaN/Infinity or is nested too deeply."),
            (401, "No API key, or one no partner holds: send 'Authorization: Bearer <key>'."),
            (409, "The idempotency key was used for different content, or is still being received."),
            (413, "The body is larger than the configured limit."),
            (415, "The body is not application/json (UTF-8)."),
            (422, "The submission has problems: each with a JSON pointer, a stable code and a message."),
            (429, "Too many requests from this client; see Retry-After."),
            (503, "The pipeline could not take the submission; retry later."),
        )
    }
    problem_responses[202] = {"model": Receipt, "description": "Received. Keep the receipt."}

    @app.post(SUBMISSIONS_PATH, status_code=202, response_model=None, responses=problem_responses,
              summary="Share a submission",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"$ref": "#/components/schemas/Submission"}}}}})
    async def submit(request: Request) -> JSONResponse:
        """Receive one submission as JSON from a partner system; 202 with a receipt, or why it was refused."""
        partner = partners.authenticate(bearer(request.headers.get("authorization")))
        if partner is None:
            return json_answer(unauthenticated(request), challenge=True)
        principal = partner_principal(partner)
        answer = refused(request, principal)
        if answer is None and not media_type_is(request, "application/json"):
            answer = refusal(415, "unsupported_media_type", "Send the submission as application/json.")
        if answer is None:
            try:
                body = await read_body(request, settings.max_body_bytes)
            except ClientDisconnect:  # gone, or cut off by the body deadline: nobody to answer
                return JSONResponse(None, status_code=408)
            if body is None:
                answer = refusal(413, "body_too_large", f"The submission is larger than "
                                   f"{settings.max_body_bytes} bytes. Shorten the longest texts.")
            else:
                data, problem = parse_json(body)
                answer = (Answer(status=400, problems=(problem,)) if problem
                          else await intake.receive(data, Channel.API, principal))
        return json_answer(answer)

    def form_page(request: Request, html: str, status: int = 200, cookie: str | None = None) -> HTMLResponse:
        response = HTMLResponse(html, status_code=status)
        if cookie is not None:
            response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="strict", path="/",
                                secure=request.url.scheme == "https")
        return response

    def cookie_of(request: Request) -> tuple[str, bool]:
        """The CSRF cookie, and whether it is new and must be set."""
        existing = request.cookies.get(CSRF_COOKIE, "")
        if 20 <= len(existing) <= 100 and existing.replace("-", "").replace("_", "").isalnum():
            return existing, False
        return new_csrf_cookie(), True

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def form(request: Request) -> HTMLResponse:
        cookie, is_new = cookie_of(request)
        html = render_form(csrf_token=csrf_token(secret, cookie), idempotency_key=uuid.uuid4().hex)
        return form_page(request, html, cookie=cookie if is_new else None)

    @app.post("/", response_class=HTMLResponse, include_in_schema=False)
    async def form_post(request: Request) -> HTMLResponse:
        limited = refused(request)
        if limited is not None:
            return form_page(request, render_message("Too many attempts", limited.problems[0].message), 429)
        if not media_type_is(request, "application/x-www-form-urlencoded"):
            return form_page(request, render_message("Form not understood", "Send the form from this site."), 415)
        try:
            body = await read_body(request, settings.max_body_bytes * FORM_BODY_FACTOR)
        except ClientDisconnect:  # gone, or cut off by the body deadline: nobody to answer
            return HTMLResponse(None, status_code=408)
        if body is None:
            return form_page(request, render_message("Too much text", "The form is too large to send. Shorten "
                                                     "the longest answers and try again."), 413)
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=2000,
                              errors="strict")
        except (UnicodeDecodeError, ValueError):
            return form_page(request, render_message("Form not understood", "The form could not be read."), 400)
        posted = read_form(pairs)
        cookie, is_new = cookie_of(request)
        if is_new or not csrf_valid(secret, cookie, posted.csrf_token):
            html = render_message("Your form has expired", "For your security the form must be sent from this "
                                  "page in the same browser session. Your answers were not sent.",
                                  status_hint="Open the form again and re-enter your answers.")
            return form_page(request, html, 403, cookie=cookie if is_new else None)
        # The key is the one this server made at random when it rendered the form, and it counts only
        # within this browser's session: nothing typed into the form can find another's submission.
        key = posted.values.get("idempotency_key", "") or uuid.uuid4().hex
        rows = dict(posted.rows)
        if posted.action.startswith("add_") and posted.action[4:] in rows:
            section = posted.action[4:]
            rows[section] = max(rows[section], 1) + 1
            return form_page(request, render_form(csrf_token=posted.csrf_token, idempotency_key=key,
                                                  values=posted.values, categories=posted.categories, rows=rows))
        answer = await intake.receive(posted.data, Channel.WEB, form_principal(cookie))
        if answer.receipt is not None:
            return form_page(request, render_receipt(answer.receipt.receipt_id, answer.receipt.received_at))
        if answer.status == 422:
            return form_page(request, render_form(csrf_token=posted.csrf_token, idempotency_key=key,
                                                  values=posted.values, categories=posted.categories, rows=rows,
                                                  issues=answer.problems), 422)
        return form_page(request, render_message("Not sent", answer.problems[0].message), answer.status)

    @app.get("/static/form.css", include_in_schema=False)
    async def css() -> Response:
        return Response(stylesheet, media_type="text/css")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        return JSONResponse({"ready": state["ready"]}, status_code=200 if state["ready"] else 503)

    def openapi() -> dict[str, Any]:
        """The generated schema, with the request body described by the very model that validates it."""
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            body = Submission.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body.pop("$defs", {}))
            components["Submission"] = body
            schema["components"]["securitySchemes"] = {"partnerKey": {
                "type": "http", "scheme": "bearer", "description": "The API key a partner system was given."}}
            schema["paths"][SUBMISSIONS_PATH]["post"]["security"] = [{"partnerKey": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
