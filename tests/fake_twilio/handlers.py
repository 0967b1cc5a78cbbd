"""What the fake answers: request checks against the document, then one handler per operation.

Error codes and messages are Twilio's own (https://www.twilio.com/docs/errors/<code>):
20003 Authenticate, 20004 Method not allowed, 20404 not found, 20429 Too Many Requests,
21201 no To, 21213 no From, 21205 no Url/Twiml/ApplicationSid, 21211 invalid To,
21210 From not a number of the account, 21219 trial account calling an unverified number,
21220 call not in progress. 20001 stands for any other malformed parameter.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import Message
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from tests.fake_twilio.openapi import Operation, schema_problems
from tests.fake_twilio.resources import AccountRecord, FakeCall, error_body, new_sid

if TYPE_CHECKING:
    from tests.fake_twilio.server import FakeTwilio, RequestRecord

DEFAULT_PAGE_SIZE = 50  # Twilio's default PageSize
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
REQUIRED_CREATE_CODES = {"To": 21201, "From": 21213}
FINAL = ("completed", "busy", "no-answer", "failed", "canceled")


@dataclass
class Answer:
    """The fake's answer: JSON with a status, or silence (hang/drop)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    silent: bool = False
    silent_seconds: float | None = None  # with silent: None = until the fake stops


def error(status: int, code: int, message: str, **headers: str) -> Answer:
    return Answer(status, error_body(status, code, message), dict(headers))


def handle(fake: FakeTwilio, request: RequestRecord, headers: Message) -> Answer:
    """Check `request` against Twilio's document and answer it as Twilio would."""
    from tests.fake_twilio.server import basic_credentials

    operation, path_params, known = fake.spec.match(request.method, request.path)
    if not known:
        fake.record_violation(request.method, request.path, ["no such path in Api v2010"])
        return _not_found(request)
    if operation is None:
        fake.record_violation(request.method, request.path, ["method not allowed on this path"])
        return error(405, 20004, "Method not allowed")
    credentials = basic_credentials(headers.get("Authorization"))
    if credentials is None:
        fake.record_violation(request.method, request.path, ["no Basic Authorization header"])
        return _unauthenticated()
    account = fake.find_account(credentials[0])
    owner = path_params.get("AccountSid") or path_params.get("Sid")
    if account is None or account.token != credentials[1] or owner != account.sid:
        return _unauthenticated()
    if account.status != "active":
        return error(401, 20005, f"Account {account.sid} is {account.status}")
    problems = _request_problems(fake, operation, path_params, request, headers)
    if problems:
        fake.record_violation(request.method, request.path, problems)
        return _field_error(problems)
    handler = HANDLERS.get(operation.operation_id)
    if handler is None:
        fake.record_violation(request.method, request.path, ["operation not faked"])
        return error(404, 20404, f"The fake does not implement {operation.operation_id}")
    answer = handler(fake, account, path_params, request)
    if answer.status == operation.success_status and operation.response_schema:
        off_schema = schema_problems(fake.spec, operation.response_schema, answer.body)
        if off_schema:
            fake.record_violation(request.method, request.path, ["fake answered"] + off_schema)
    return answer


def _unauthenticated() -> Answer:
    return error(401, 20003, "Authenticate", **{"WWW-Authenticate": 'Basic realm="Twilio API"'})


def _request_problems(
    fake: FakeTwilio,
    operation: Operation,
    path_params: dict[str, str],
    request: RequestRecord,
    headers: Message,
) -> list[str]:
    spec = fake.spec
    problems = spec.check_fields({k: [v] for k, v in path_params.items()}, operation.path_params)
    query: dict[str, list[str]] = {}
    for name, value in request.query:
        query.setdefault(name, []).append(value)
    problems += spec.check_fields(query, operation.query_params)
    if operation.form_schema is None:
        if request.form:
            problems.append("a body was sent to an operation that takes none")
        return problems
    content_type = headers.get("Content-Type", "")
    if request.form and not content_type.startswith("application/x-www-form-urlencoded"):
        problems.append(f"body is {content_type or 'untyped'}, not form-encoded")
    required = frozenset(operation.form_schema.get("required", ()))
    problems += spec.check_fields(request.form, operation.form_schema["properties"], required)
    if operation.operation_id == "CreateCall" and not (
        {"Url", "Twiml", "ApplicationSid"} & set(request.form)
    ):
        problems.append("missing Url, Twiml or ApplicationSid")
    return problems


def _field_error(problems: list[str]) -> Answer:
    for name, code in REQUIRED_CREATE_CODES.items():
        if f"missing required field {name}" in problems:
            return error(400, code, f"Required parameter '{name}' missing.")
    if "missing Url, Twiml or ApplicationSid" in problems:
        return error(400, 21205, "Either a 'Url', 'Twiml' or 'ApplicationSid' is required.")
    return error(400, 20001, "Invalid parameter: " + "; ".join(problems))


# -- Calls ---------------------------------------------------------------------------------


def create_call(
    fake: FakeTwilio, account: AccountRecord, _path: dict[str, str], request: RequestRecord
) -> Answer:
    if fake.over_rate(account.sid, time.time()):
        return error(429, 20429, "Too Many Requests")
    fault = fake.next_fault()
    if fault is not None and fault.kind == "fail":
        return error(fault.status, fault.code or 20500, fault.message)
    if fault is not None and not fault.create:
        return Answer(0, silent=True, silent_seconds=fault.seconds)
    to, from_ = request.form["To"][-1], request.form["From"][-1]
    refusal = _create_refusal(fake, account, to, from_)
    if refusal is not None:
        return refusal
    number = account.numbers[from_]
    with fake.lock:
        outcome = fake.outcome_for.get(to, fake.default_outcome)
    call = FakeCall(
        sid=new_sid("CA"),
        account_sid=account.sid,
        to=to,
        from_=from_,
        params=request.form,
        phone_number_sid=number.sid,
        outcome=outcome,
        date_created=datetime.now(UTC),
    )
    with fake.lock:  # the answer shows the call as created, before its clock moves it
        body = call.to_json()
        fake.add_call(call)
    if fake.callback_before_response and fake.lifecycle is not None:
        fake.lifecycle.rush(call)  # outside the lock: the receiver may ask the fake things
    if fault is not None:
        return Answer(0, silent=True, silent_seconds=fault.seconds)
    return Answer(201, body)


def _create_refusal(fake: FakeTwilio, account: AccountRecord, to: str, from_: str) -> Answer | None:
    with fake.lock:
        forced = fake.fail_numbers.get(to)
    if forced is not None:
        return error(*forced)
    if not E164.match(to):
        return error(400, 21211, f"Invalid 'To' Phone Number: {to}")
    number = account.numbers.get(from_)
    if number is None or not number.voice:
        return error(
            400,
            21210,
            f"The source phone number provided, {from_}, is not yet verified for your account. "
            "You may only make calls from phone numbers that you've verified or purchased "
            "from Twilio.",
        )
    if account.trial and to not in account.verified_numbers and to not in account.numbers:
        return error(
            400,
            21219,
            f"The number {to} is unverified. Trial accounts cannot call unverified numbers; "
            f"verify {to} at twilio.com/user/account/phone-numbers/verified, or purchase a "
            "Twilio number to call unverified numbers.",
        )
    return None


def fetch_call(
    fake: FakeTwilio, account: AccountRecord, path: dict[str, str], request: RequestRecord
) -> Answer:
    call = _own_call(fake, account, path["Sid"])
    if call is None:
        return _not_found(request)
    with fake.lock:
        return Answer(200, call.to_json())


def update_call(
    fake: FakeTwilio, account: AccountRecord, path: dict[str, str], request: RequestRecord
) -> Answer:
    call = _own_call(fake, account, path["Sid"])
    if call is None:
        return _not_found(request)
    wanted = (request.form.get("Status") or [None])[-1]
    redirect = bool({"Url", "Twiml"} & set(request.form))
    with fake.lock:
        if call.is_final and redirect:
            return error(400, 21220, "Call is not in-progress. Cannot redirect.")
        ended = _apply_status(call, wanted)
        body = call.to_json()
    if ended and fake.lifecycle is not None:
        fake.lifecycle.send_status(call, "completed", call.status)
    return Answer(200, body)


def _apply_status(call: FakeCall, wanted: str | None) -> bool:
    """Cancel or hang up as Twilio does; True if the call ended now."""
    if wanted is None or call.is_final:
        return False
    now = datetime.now(UTC)
    if call.status in ("queued", "ringing"):
        call.finish("canceled", now)
    elif call.status == "in-progress" and wanted == "completed":
        call.finish("completed", now)
    else:
        return False  # canceled on an answered call: Twilio leaves it as is
    call.events.append(call.status)
    return True


def _not_found(request: RequestRecord) -> Answer:
    return error(404, 20404, f"The requested resource {request.path} was not found")


def _own_call(fake: FakeTwilio, account: AccountRecord, sid: str) -> FakeCall | None:
    with fake.lock:
        call = fake._calls_by_sid.get(sid)  # noqa: SLF001
    return call if call is not None and call.account_sid == account.sid else None


def list_calls(
    fake: FakeTwilio, account: AccountRecord, _path: dict[str, str], request: RequestRecord
) -> Answer:
    query = dict(request.query)
    matches = [c for c in fake.calls if c.account_sid == account.sid and _matches(c, query)]
    # Twilio lists the newest first.
    matches.sort(key=lambda c: (c.date_created, c.sid), reverse=True)
    with fake.lock:
        return Answer(200, _page(request, query, matches, "calls", FakeCall.to_json))


def _matches(call: FakeCall, query: dict[str, str]) -> bool:
    simple = {"To": call.to, "From": call.from_, "Status": call.status, "ParentCallSid": None}
    for name, actual in simple.items():
        if name in query and query[name] != actual:
            return False
    for prefix, moment in (("StartTime", call.start_time), ("EndTime", call.end_time)):
        for suffix in ("", ">", "<"):
            value = query.get(prefix + suffix)
            if value is not None and not _date_filter(moment, suffix, _filter_day(value)):
                return False
    return True


def _filter_day(value: str) -> date:
    """Twilio filters StartTime/EndTime by UTC date: any time part is ignored."""
    return date.fromisoformat(value[:10])


def _date_filter(moment: datetime | None, suffix: str, day: date) -> bool:
    if moment is None:  # a call not started yet has no start_time and matches no date filter
        return False
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    if suffix == ">":  # StartTime>=YYYY-MM-DD: on or after midnight of that date
        return moment >= midnight
    if suffix == "<":  # StartTime<=YYYY-MM-DD: on or before midnight of that date
        return moment <= midnight
    return midnight <= moment < midnight + timedelta(days=1)


def _page(
    request: RequestRecord,
    query: dict[str, str],
    items: list[Any],
    key: str,
    to_json: Any,
) -> dict[str, Any]:
    """One page of `items` with Twilio's paging fields (PageSize, Page, PageToken)."""
    size = int(query.get("PageSize", DEFAULT_PAGE_SIZE))
    page = int(query.get("Page", 0))
    start = page * size
    token = query.get("PageToken")
    if token:
        sids = [item.sid for item in items]
        start = sids.index(token[2:]) + 1 if token[2:] in sids else len(items)
    chosen = items[start : start + size]
    filters = [(k, v) for k, v in request.query if k not in ("PageSize", "Page", "PageToken")]

    def uri(page_number: int, page_token: str | None = None) -> str:
        params = filters + [("PageSize", str(size)), ("Page", str(page_number))]
        if page_token:
            params.append(("PageToken", page_token))
        return f"{request.path}?{urlencode(params)}"

    more = start + size < len(items)
    return {
        key: [to_json(item) for item in chosen],
        "end": page * size + max(len(chosen) - 1, 0),
        "first_page_uri": uri(0),
        "next_page_uri": uri(page + 1, "PA" + chosen[-1].sid) if more and chosen else None,
        "page": page,
        "page_size": size,
        "previous_page_uri": uri(page - 1) if page > 0 else None,
        "start": page * size,
        "uri": uri(page, token),
    }


# -- Accounts and numbers ------------------------------------------------------------------


def fetch_account(
    fake: FakeTwilio, account: AccountRecord, _path: dict[str, str], _request: RequestRecord
) -> Answer:
    with fake.lock:
        return Answer(200, account.to_json())


def list_numbers(
    fake: FakeTwilio, account: AccountRecord, _path: dict[str, str], request: RequestRecord
) -> Answer:
    query = dict(request.query)
    wanted = query.get("PhoneNumber")
    pattern = re.compile(re.escape(wanted).replace(r"\*", r"\d") if wanted else ".*")
    with fake.lock:
        numbers = [n for n in account.numbers.values() if pattern.search(n.phone_number)]
        body = _page(request, query, numbers, "incoming_phone_numbers", lambda n: n.to_json())
    return Answer(200, body)


HANDLERS = {
    "CreateCall": create_call,
    "FetchCall": fetch_call,
    "UpdateCall": update_call,
    "ListCall": list_calls,
    "FetchAccount": fetch_account,
    "ListIncomingPhoneNumber": list_numbers,
}
