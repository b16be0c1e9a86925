"""Every error the API can answer, and the one place that turns errors into responses.

    ApiError (status, ErrorCode, message, field errors)
     ├── BadRequest          400  malformed body, whole-request validation
     ├── UnreadableRequest   400  refused by the HTTP parser (line or header too long, malformed)
     ├── Unauthorized        401  no, unknown, disabled or expired API key
     ├── Forbidden           403  authenticated, but without a required role
     ├── NotFound            404  unknown id or route (another tenant's id looks the same)
     ├── MethodNotAllowed    405
     ├── PayloadTooLarge     413
     ├── RateLimited         429  with Retry-After
     └── Unavailable         503  cannot durably accept (Redis unreachable)

Anything else is a bug: 500, logged with its traceback, never with details sent to the client.
Errors that never reach the middleware (the HTTP parser's, or a bug outside it) are mapped by
``outside_middleware`` and answered by ``gateway.parser_errors``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

import redis.exceptions
from aiohttp import web

from gateway.wire import WireError

log = logging.getLogger("smsgw.gateway")

FieldError = tuple[str, str, str]  # (ErrorCode, FieldName, Message)


class ApiError(Exception):
    """An error with an HTTP status and a ServiceStack ResponseStatus."""

    status = 500
    code = "Exception"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field_errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or type(self).code
        self.field_errors = list(field_errors)
        self.headers = dict(headers or {})


class BadRequest(ApiError):
    status, code = 400, "ValidationException"


class UnreadableRequest(ApiError):
    # ServiceStack's HttpError(HttpStatusCode.BadRequest) code: not a validation failure.
    status, code = 400, "BadRequest"


class Unauthorized(ApiError):
    status, code = 401, "Unauthorized"

    def __init__(self, message: str, challenge: str = 'Basic realm="/auth/apikey"') -> None:
        super().__init__(message, headers={"WWW-Authenticate": challenge})


class Forbidden(ApiError):
    status, code = 403, "Forbidden"


class NotFound(ApiError):
    status, code = 404, "NotFound"


class MethodNotAllowed(ApiError):
    status, code = 405, "MethodNotAllowed"


class PayloadTooLarge(ApiError):
    status, code = 413, "RequestEntityTooLarge"


class RateLimited(ApiError):
    status, code = 429, "TooManyRequests"


class Unavailable(ApiError):
    status, code = 503, "ServiceUnavailable"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorRenderer = Callable[[web.Request, ApiError], web.Response]
ErrorAnswer = Callable[[web.Request, Exception], web.Response]

_REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
               redis.exceptions.BusyLoadingError, redis.exceptions.ReadOnlyError)


def _from_http(exc: web.HTTPException) -> ApiError:
    if exc.status == 404:
        return NotFound(f"no route for this path: {exc.reason}", code="NotFound")
    if exc.status == 405:
        return MethodNotAllowed("method not allowed on this route")
    if exc.status == 413:
        return PayloadTooLarge("request body is larger than the limit")
    err = ApiError(exc.reason or "error")
    err.status = exc.status
    return err


class UnknownAccount(LookupError):
    """No API key was ever created for the account. Answered 404 naming it."""

    def __init__(self, account: str) -> None:
        super().__init__(account)
        self.account = account


class InvalidField(ValueError):
    """A value the client sent that cannot be stored; ``field`` names it. Answered 400
    ``Invalid`` naming the field (keys, webhooks, numbers and accounts raise subclasses)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def error_answer(render: ErrorRenderer) -> ErrorAnswer:
    """Map every exception a handler raises to a ResponseStatus in the negotiated format (what
    is no error, a redirect, is raised again). The gateway's one middleware calls it
    (``metrics.metrics_middleware``): a middleware of its own would cost every request an
    extra coroutine."""

    def answer(request: web.Request, error: Exception) -> web.Response:
        try:
            raise error
        except ApiError as exc:
            return render(request, exc)
        except UnknownAccount as exc:
            return render(request, NotFound(f"no account '{exc.account}'"))
        except InvalidField as exc:
            return render(request, BadRequest(exc.message, code="Invalid",
                                              field_errors=[("Invalid", exc.field, exc.message)]))
        except WireError as exc:
            return render(request, BadRequest(exc.message, code=exc.code,
                                              field_errors=exc.field_errors))
        except _REDIS_DOWN as exc:
            log.warning("redis unavailable: %s", exc)
            return render(request, Unavailable("storage is unavailable; nothing was accepted, "
                                               "retry later"))
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return render(request, _from_http(exc))
        except Exception:  # the error boundary: a bug, never leak details
            log.exception("unhandled error on %s %s", request.method, request.path)
            return render(request, ApiError("internal error"))

    return answer


# Parser messages can quote up to a whole request line (32 KiB) of the client's bytes.
_MAX_PARSER_MESSAGE = 160


def outside_middleware(status: int, exc: BaseException | None, message: str | None,
                       peer: str | None) -> ApiError:
    """The error for a request the middleware never saw, logged: a 4xx is aiohttp's HTTP
    parser refusing it (one WARNING line, it is the client's), a 5xx a bug outside the
    middleware (with its traceback)."""
    if status >= 500:
        log.error("unhandled error outside the error middleware (request from %s)", peer,
                  exc_info=exc)
        err = ApiError("internal error")
    else:
        detail = _one_line(message or (str(exc) if exc else "") or "malformed request")
        log.warning("refused an unreadable HTTP request from %s: %s", peer, detail)
        err = UnreadableRequest(f"the HTTP request could not be read: {detail}")
    err.status = status
    return err


def _one_line(text: str) -> str:
    # aiohttp's C parser draws a caret under the offending byte on a line of its own.
    words = " ".join(w for line in text.splitlines() if line.strip() != "^"
                     for w in line.split())
    if len(words) <= _MAX_PARSER_MESSAGE:
        return words
    return words[:_MAX_PARSER_MESSAGE - 1] + "…"
