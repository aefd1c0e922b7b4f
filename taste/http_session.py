"""HTTP sessions with urllib3's bounded retries, shared by the LLM judge's and Suno's clients.

urllib3's `Retry` does the retrying (connection errors, timeouts, 429 and 5xx answers, a 429's
Retry-After); this module only chooses its settings and logs each retry as
`<METHOD> <path>: <what failed>; retry i/n in s`. A session made with `resend_after_send=False`
never sends a request again once it may have reached the server (a timeout or a dropped
connection after sending): use it for calls that cost money, such as a paid submission.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, TimeoutError
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)

RETRY_STATUSES = (429, 500, 502, 503, 504)


def describe_error(error: BaseException) -> str:
    """A short, secret-free reason for a transport error (urllib3's or requests')."""
    reason = error
    if isinstance(error, requests.RequestException) and error.args:
        reason = error.args[0]
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    if isinstance(reason, (TimeoutError, requests.Timeout)):
        return "timed out"
    return "connection error (ConnectionError)"


def attempts_made(response: requests.Response) -> int:
    """How many times urllib3 sent the request that gave `response`."""
    retries = getattr(response.raw, "retries", None)
    return len(retries.history) + 1 if retries is not None else 1


class LoggedRetry(Retry):
    """urllib3's `Retry` that logs every retry it grants with the method, path and reason."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        attempt = len(new.history)
        limit = attempt + (new.total or 0)
        if response is not None:
            failure = f"http {response.status}"
            delay = new.get_retry_after(response) or new.get_backoff_time()
        else:
            failure, delay = describe_error(error), new.get_backoff_time()
        log.warning(
            "%s %s: %s; retry %d/%d in %.2f s", method, urlsplit(url or "").path, failure, attempt, limit, delay
        )
        return new


def retrying_session(
    max_retries: int, backoff_s: float, max_backoff_s: float = 60.0, resend_after_send: bool = True
) -> requests.Session:
    """A session whose every call is retried up to `max_retries` times after the first attempt.

    Args:
        max_retries: Retries after the first attempt, all causes together.
        backoff_s: urllib3's backoff factor: the first retry is immediate, then backoff_s * 2**(n-1).
        max_backoff_s: Cap of the backoff and of a 429's Retry-After.
        resend_after_send: False = a timeout or a dropped connection after the request was sent is
            raised at once (connection failures before sending and 429/5xx answers are still retried).

    Exhausted status retries return the last answer (check `response.status_code`); exhausted
    connection retries raise `requests.ConnectionError`.
    """
    retry = LoggedRetry(
        total=max_retries,
        read=None if resend_after_send else False,
        allowed_methods=None,  # every method: whether a sent request may go again is `read`'s decision
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff_s,
        backoff_max=max_backoff_s,
        retry_after_max=max_backoff_s,
        raise_on_status=False,
        raise_on_redirect=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
