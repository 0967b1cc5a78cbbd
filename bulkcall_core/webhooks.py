"""The web hooks server: what Twilio fetches and calls back, on uvicorn.

- `GET/HEAD /media/{token}.{ext}`: a recording, with its audio Content-Type, range requests
  (single and multiple ranges, 206/416), ETag (the file's SHA-256) and Last-Modified. A token
  is looked up in the database, never joined to a path: unknown names answer 404, nothing is
  listed, no path traversal.
- `POST /twilio/status` and `POST /twilio/amd`: Twilio's status and asynchronous machine
  detection callbacks, accepted only with a valid `X-Twilio-Signature` from the auth token of a
  channel on the callback's AccountSid; anything else answers 403 and changes nothing. A
  campaign call's callback URL carries `?call=<id>&claim=<claim token>`
  (`callback_url_for_call`), so a callback that overtakes Twilio's answer to the create still
  finds its call (see `outcomes`); the signature covers the query, so nobody can forge it.
- `GET /healthz`: 200 when the database answers.

Signatures are checked against the URL Twilio used: PUBLIC_BASE_URL plus the path and query,
because behind a reverse proxy or tunnel the request's own URL differs; the request's own URL is
tried too (direct set-ups, or PUBLIC_BASE_URL unset). Both need the auth token, so accepting
either admits nobody who lacks it. Request paths are logged with the media token removed, and
signatures are never logged.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import uvicorn
from sqlalchemy import Engine, text
from sqlmodel import select
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from twilio.request_validator import RequestValidator

from bulkcall_core import crypto, outcomes
from bulkcall_core.audio import CONTENT_TYPES, public_base_url, recording_path
from bulkcall_core.database import get_engine, new_session
from bulkcall_core.errors import SettingsError
from bulkcall_core.models import Channel, Recording
from bulkcall_core.settings import Settings

logger = logging.getLogger(__name__)

STATUS_PATH = "/twilio/status"
AMD_PATH = "/twilio/amd"
# A stored token is secrets.token_urlsafe(32): 43 url-safe characters. Anything else is 404
# before the database is asked.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
# A token's file never changes (new content gets a new token), so Twilio may cache it long.
MEDIA_CACHE_CONTROL = "public, max-age=86400, immutable"
# Twilio's callbacks are well under 2 KB; anything far larger is not one and is not parsed.
MAX_CALLBACK_BYTES = 64 * 1024
# How long `serve_in_background` waits for the server to accept connections.
START_TIMEOUT_SECONDS = 10.0


def status_callback_url(settings: Settings) -> str:
    """The StatusCallback URL for Twilio. Raises SettingsError when PUBLIC_BASE_URL is unset."""
    return public_base_url(settings) + STATUS_PATH


def amd_callback_url(settings: Settings) -> str:
    """The AsyncAmdStatusCallback URL. Raises SettingsError when PUBLIC_BASE_URL is unset."""
    return public_base_url(settings) + AMD_PATH


def callback_url_for_call(url: str, *, call_id: int, claim: str) -> str:
    """`url` (a callback URL above) naming the campaign call and claim it is for."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{urlencode({'call': call_id, 'claim': claim})}"


def create_app(settings: Settings) -> Starlette:
    """The ASGI app: media, Twilio callbacks and health, on the configured (migrated) database."""
    app = Starlette(
        routes=[
            Route("/healthz", _health, methods=["GET", "HEAD"]),
            Route("/media/{name}", _media, methods=["GET", "HEAD"]),
            Route(STATUS_PATH, _status_callback, methods=["POST"]),
            Route(AMD_PATH, _amd_callback, methods=["POST"]),
        ],
        middleware=[Middleware(_RedactedAccessLog)],
    )
    app.state.settings = settings
    app.state.engine = get_engine(settings)
    return app


def serve(settings: Settings) -> None:
    """Run the web hooks server on WEBHOOK_HOST:WEBHOOK_PORT until SIGINT/SIGTERM."""
    if not logging.getLogger().handlers:  # a process of its own: show the access lines
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    uvicorn.run(create_app(settings), **_uvicorn_options(settings))


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "host": settings.webhook_host,
        "port": settings.webhook_port,
        "access_log": False,  # uvicorn's would log media tokens; _RedactedAccessLog logs instead
        "server_header": False,
        "proxy_headers": True,  # X-Forwarded-* from a reverse proxy on this machine
        "log_level": "info",
    }


# -- endpoints -------------------------------------------------------------------------------


async def _health(request: Request) -> Response:
    try:
        await run_in_threadpool(_ping, request.app.state.engine)
    except Exception as exc:  # noqa: BLE001 - health reports any database failure
        return JSONResponse({"ok": False, "database": type(exc).__name__}, status_code=503)
    return JSONResponse({"ok": True})


def _ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


async def _media(request: Request) -> Response:
    token, _, extension = request.path_params["name"].rpartition(".")
    if extension not in CONTENT_TYPES or not TOKEN_PATTERN.fullmatch(token):
        return _not_found()
    recording = await run_in_threadpool(_find_recording, request.app.state.engine, token)
    if recording is None or recording.extension != extension:
        return _not_found()
    path = recording_path(recording, request.app.state.settings)
    try:
        stat_result = os.stat(path)
    except FileNotFoundError:
        logger.error("Recording %s is in the database but its file is missing", recording.id)
        return _not_found()
    etag = f'"{recording.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": MEDIA_CACHE_CONTROL,
        "X-Content-Type-Options": "nosniff",
    }
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(
        path, media_type=recording.content_type, headers=headers, stat_result=stat_result
    )


def _not_found() -> Response:
    return PlainTextResponse("Not found", status_code=404)


def _find_recording(engine: Engine, token: str) -> Recording | None:
    with new_session(engine) as session:
        return session.exec(select(Recording).where(Recording.token == token)).first()


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in candidates or etag in candidates


async def _status_callback(request: Request) -> Response:
    return await _callback(request, ("CallSid", "CallStatus"), _apply_status)


async def _amd_callback(request: Request) -> Response:
    return await _callback(request, ("CallSid", "AnsweredBy"), _apply_answered_by)


async def _callback(
    request: Request,
    required: tuple[str, ...],
    apply: Callable[[Engine, Mapping[str, str], _Target], None],
) -> Response:
    body = await _limited_body(request)
    if body is None:
        return PlainTextResponse("A callback is a few hundred bytes; this is too large", 413)
    form = await _signed_form(request, body)
    if form is None:
        return PlainTextResponse("Invalid or missing X-Twilio-Signature", status_code=403)
    missing = [name for name in required if not form.get(name)]
    if missing:
        return PlainTextResponse(f"Missing {', '.join(missing)}", status_code=400)
    target = _Target(
        call_id=_int_or_none(request.query_params.get("call")),
        claim=request.query_params.get("claim") or None,
    )
    await run_in_threadpool(apply, request.app.state.engine, form, target)
    return Response(status_code=204)


@dataclass(frozen=True)
class _Target:
    """The campaign call and claim a callback URL names (None for a test call's)."""

    call_id: int | None
    claim: str | None


def _apply_status(engine: Engine, form: Mapping[str, str], target: _Target) -> None:
    with new_session(engine) as session:
        outcomes.apply_call_status(
            session=session,
            sid=form["CallSid"],
            status=form["CallStatus"],
            answered_by=form.get("AnsweredBy"),
            duration=form.get("CallDuration"),
            error_code=form.get("ErrorCode"),
            error_message=form.get("ErrorMessage"),
            sequence=_int_or_none(form.get("SequenceNumber")),
            call_id=target.call_id,
            claim=target.claim,
        )
        session.commit()


def _apply_answered_by(engine: Engine, form: Mapping[str, str], target: _Target) -> None:
    with new_session(engine) as session:
        outcomes.apply_answered_by(
            session=session,
            sid=form["CallSid"],
            answered_by=form["AnsweredBy"],
            call_id=target.call_id,
            claim=target.claim,
        )
        session.commit()


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


# -- signatures ------------------------------------------------------------------------------


async def _limited_body(request: Request) -> bytes | None:
    """The request body, or None past MAX_CALLBACK_BYTES (read no further than that)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_CALLBACK_BYTES:
            return None
    return body


async def _signed_form(request: Request, body: bytes) -> dict[str, str] | None:
    """The callback's form when its signature is valid for one of our channels, else None."""
    signature = request.headers.get("x-twilio-signature")
    form = FormData(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    params = {key: str(value) for key, value in form.items()}
    account_sid = params.get("AccountSid")
    if not signature or not account_sid:
        logger.warning("Refused %s: no signature or AccountSid", request.url.path)
        return None
    urls = _signed_urls(request)
    valid = await run_in_threadpool(
        _signature_valid, request.app.state, account_sid, urls, form, signature
    )
    if not valid:
        logger.warning("Refused %s for account %s: bad signature", request.url.path, account_sid)
        return None
    return params


def _signed_urls(request: Request) -> list[str]:
    """The URLs Twilio may have signed: the public one first, then the request's own."""
    urls = []
    settings: Settings = request.app.state.settings
    if settings.public_base_url:
        query = f"?{request.url.query}" if request.url.query else ""
        urls.append(settings.public_base_url + request.url.path + query)
    urls.append(str(request.url))
    return list(dict.fromkeys(urls))


def _signature_valid(
    state: Any, account_sid: str, urls: list[str], form: Any, signature: str
) -> bool:
    with new_session(state.engine) as session:
        encrypted = set(
            session.exec(
                select(Channel.auth_token_encrypted).where(Channel.account_sid == account_sid)
            )
        )
    for token in encrypted:
        try:
            validator = RequestValidator(crypto.decrypt_secret(state.settings, token))
        except SettingsError:  # stored under another key: it cannot sign anything here
            logger.error("The auth token of a channel on %s cannot be decrypted", account_sid)
            continue
        if any(validator.validate(url, form, signature) for url in urls):
            return True
    return False


# -- logging without secrets -----------------------------------------------------------------

_MEDIA_TOKEN = re.compile(r"^/media/[^/.]+")


class _RedactedAccessLog:
    """ASGI middleware: one log line per request, the media token replaced by <token>."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _MEDIA_TOKEN.sub("/media/<token>", scope["path"])

        async def send_and_log(message: Message) -> None:
            # Logged as the answer starts, so the line exists once the client has its reply.
            if message["type"] == "http.response.start":
                logger.info("%s %s %s", scope["method"], path, message["status"])
            await send(message)

        await self.app(scope, receive, send_and_log)


# -- running in a thread (tests, tools) ------------------------------------------------------


@dataclass
class BackgroundServer:
    """A web hooks server running in a thread of this process; `stop()` ends it."""

    url: str
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=START_TIMEOUT_SECONDS)


def serve_in_background(settings: Settings, *, port: int = 0) -> BackgroundServer:
    """Start the app on WEBHOOK_HOST:`port` (0 = a free port) in a daemon thread.

    Returns once it accepts connections. Raises RuntimeError if it does not start.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((settings.webhook_host, port))
    bound_port = listener.getsockname()[1]
    options = {**_uvicorn_options(settings), "port": bound_port, "log_level": "warning"}
    server = uvicorn.Server(uvicorn.Config(create_app(settings), **options))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="webhooks", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"The web hooks server did not start on port {bound_port}")
        time.sleep(0.02)
    url = f"http://{settings.webhook_host}:{bound_port}"
    return BackgroundServer(url=url, port=bound_port, server=server, thread=thread)
