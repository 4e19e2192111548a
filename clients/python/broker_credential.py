"""A credential over the token broker's GET /api/token, standard library only.

It satisfies azure.core.credentials' TokenCredential protocol (get_token(*scopes, **kwargs) ->
AccessToken(token, expires_on)), so any Azure SDK client or msgraph-sdk takes it; azure-core is not
needed (its AccessToken is used when installed). Same behaviour as the Node and .NET clients: cached
until 5 minutes before expiry, one request in flight per scope set, upstream_unavailable retried after
Retry-After within max_wait, every other failure a BrokerError (code, status, remedy, retry_after).
Scopes are "the connection's own" (scope= left out) when none are given, when each is among the
scopes the broker reported for its default token, or when it is {resource}/.default for their resource.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import namedtuple
from email.utils import parsedate_to_datetime

try:  # pragma: no cover - only when azure-core is installed
    from azure.core.credentials import AccessToken
except ImportError:  # the same shape: a NamedTuple (token, expires_on)
    AccessToken = namedtuple("AccessToken", ["token", "expires_on"])

__all__ = ["AccessToken", "BrokerCredential", "BrokerError"]

_REFRESH_MARGIN = 300
_GRAPH = "https://graph.microsoft.com"
_OIDC = {"openid", "profile", "email", "offline_access"}
_SHORT = re.compile(r"^[A-Za-z][A-Za-z0-9._-]*$")


class BrokerError(Exception):
    """Every failure: code is the broker's problem code or one of this client's (broker_unreachable,
    broker_timeout, invalid_response). The message never holds a token or a key."""

    def __init__(self, code, message, status=0, remedy=None, retry_after=None, consent_url=None):
        super().__init__(message)
        self.code = code
        self.status = status
        self.remedy = remedy
        self.retry_after = retry_after
        self.consent_url = consent_url


def _normalize(scopes):
    out = []
    for s in scopes:
        for part in (s or "").split():
            if part not in out:
                out.append(part)
    return out


def _full(scope):
    if _SHORT.match(scope) and scope.lower() not in _OIDC:
        return f"{_GRAPH}/{scope}".lower()
    return scope.lower()


def _resource(scope):
    return scope.rsplit("/", 1)[0] if "/" in scope else ""


def _is_own(asked, own):
    if not asked:
        return True
    resources = {_resource(s) for s in own}
    for scope in asked:
        full = _full(scope)
        if full in own:
            continue
        if full.endswith("/.default") and _resource(full) in resources:
            continue
        return False
    return True


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


class BrokerCredential:
    """BrokerCredential(url, connection, function_key=None, credential=None, api_scope=None,
    max_wait=30.0, attempt_timeout=10.0). `credential` is a TokenCredential for the broker's API
    (CALLER_AUTH=entra), asked for `api_scope`, instead of the function key."""

    def __init__(self, url, connection, function_key=None, credential=None, api_scope=None,
                 max_wait=30.0, attempt_timeout=10.0):
        if not re.match(r"^https?://", url or "", re.I):
            raise ValueError("url must be the broker's http(s) base URL")
        if not connection:
            raise ValueError("connection is required")
        if credential is not None and not api_scope:
            raise ValueError("api_scope is required with credential (e.g. api://broker/.default)")
        base = url.rstrip("/")
        if base.endswith("/api"):
            base = base[:-4]
        self._token_url = base + "/api/token"
        self._connection = connection
        self._function_key = function_key
        self._credential = credential
        self._api_scope = api_scope
        self._max_wait = max_wait
        self._attempt_timeout = attempt_timeout
        self._lock = threading.Lock()
        self._cache = {}
        self._flights = {}
        self._own = None

    # azure.core.credentials.TokenCredential
    def get_token(self, *scopes, claims=None, tenant_id=None, enable_cae=False, **kwargs):
        entry = self._entry(_normalize(scopes), False)
        return AccessToken(entry["token"], entry["expires_on"])

    def xoauth2(self, user=None, scopes=()):
        """The base64 SASL XOAUTH2 string (imaplib: authenticate('XOAUTH2', lambda _: raw) takes
        the decoded bytes). With user, built here; without, the broker builds it for the account."""
        if isinstance(scopes, str):
            scopes = (scopes,)
        asked = _normalize(scopes)
        if user is not None:
            token = self._entry(asked, False)["token"]
            return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode()
        sasl = self._entry(asked, True)["xoauth2"]
        if not isinstance(sasl, str):
            raise BrokerError("invalid_response", "The broker answered format=xoauth2 without an xoauth2 string.", 200)
        return sasl

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _key(self, asked):
        return "" if _is_own(asked, self._own) else " ".join(sorted(asked))

    def _fresh(self, key, xoauth2):
        entry = self._cache.get(key)
        if entry is None or entry["expires_on"] - _REFRESH_MARGIN <= time.time():
            return None
        if xoauth2 and entry.get("xoauth2") is None:
            return None
        return entry

    def _entry(self, asked, xoauth2):
        if self._own is None and asked:
            # Which scopes are the connection's own is known only from an answer without scope=.
            self._flight("", False)
        key = "" if self._own is None else self._key(asked)
        return self._fresh(key, xoauth2) or self._flight(key, xoauth2)

    def _flight(self, key, xoauth2):
        """One request per (scope set, format) at a time: the others wait for its outcome."""
        flight_key = key + ("#xoauth2" if xoauth2 else "")
        with self._lock:
            hit = self._fresh(key, xoauth2)
            if hit is not None:
                return hit
            flight = self._flights.get(flight_key)
            leader = flight is None
            if leader:
                flight = {"done": threading.Event(), "entry": None, "error": None}
                self._flights[flight_key] = flight
        if not leader:
            flight["done"].wait()
            if flight["error"] is not None:
                raise flight["error"]
            return flight["entry"]
        try:
            flight["entry"] = self._fetch_with_retry(key, xoauth2)
            return flight["entry"]
        except BaseException as err:
            flight["error"] = err
            raise
        finally:
            with self._lock:
                self._flights.pop(flight_key, None)
            flight["done"].set()

    def _fetch_with_retry(self, key, xoauth2):
        started = time.monotonic()
        while True:
            try:
                entry = self._request(key, xoauth2)
            except BrokerError as err:
                if err.code != "upstream_unavailable" or err.retry_after is None:
                    raise
                wait = max(1, err.retry_after)
                if time.monotonic() - started + wait > self._max_wait:
                    raise
                time.sleep(wait)
                continue
            with self._lock:
                if key == "":
                    self._own = {_full(s) for s in _normalize([entry["scope"]])}
                self._cache[key] = entry
            return entry

    def _request(self, key, xoauth2):
        query = {"connection": self._connection}
        if key:
            query["scope"] = key
        if xoauth2:
            query["format"] = "xoauth2"
        headers = {"Accept": "application/json"}
        if self._credential is not None:
            try:
                api = self._credential.get_token(self._api_scope)
            except Exception as err:
                raise BrokerError("caller_credential_failed",
                                  f"The credential for the broker's API could not get a token for {self._api_scope}.") from err
            headers["Authorization"] = f"Bearer {api.token}"
        elif self._function_key:
            headers["x-functions-key"] = self._function_key
        where = f"{self._token_url}?connection={self._connection}"
        request = urllib.request.Request(self._token_url + "?" + urllib.parse.urlencode(query), headers=headers)
        try:
            response = _opener.open(request, timeout=self._attempt_timeout)
        except urllib.error.HTTPError as err:
            response = err
        except (TimeoutError, OSError) as err:
            reason = getattr(err, "reason", err)
            if isinstance(reason, TimeoutError) or "timed out" in str(reason):
                raise BrokerError("broker_timeout", f"The broker at {where} did not answer within {self._attempt_timeout} s.") from None
            raise BrokerError("broker_unreachable", f"The broker at {where} could not be reached ({type(reason).__name__}).") from None
        status = response.status if hasattr(response, "status") else response.code
        with response:
            try:
                text = response.read().decode("utf-8", "replace")
            except TimeoutError:
                raise BrokerError("broker_timeout", f"The broker at {where} did not answer completely within {self._attempt_timeout} s.") from None
            except Exception:
                raise BrokerError("invalid_response",
                                  f"The broker at {where} answered HTTP {status} but broke off before the end of the body (truncated).",
                                  status) from None
        content_type = (response.headers.get("Content-Type") or "no content type").split(";")[0]
        if status == 200:
            return _token(status, content_type, text)
        raise _problem(status, content_type, response.headers.get("Retry-After"), text)


def _json(text):
    try:
        return json.loads(text)
    except ValueError:
        return None


def _token(status, content_type, text):
    body = _json(text)
    if body is None:
        what = "an empty body" if not text else f"a body that is not JSON ({content_type})"
        raise BrokerError("invalid_response", f"The broker answered HTTP {status} with {what}.", status)
    if not isinstance(body, dict):
        raise BrokerError("invalid_response", f"The broker answered HTTP {status} but not with a JSON object.", status)
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise BrokerError("invalid_response", f"The broker answered HTTP {status} but without an access_token.", status)
    try:
        expires_on = int(body["expires_on"])
    except (KeyError, TypeError, ValueError):
        try:
            expires_on = int(time.time()) + int(body["expires_in"])
        except (KeyError, TypeError, ValueError):
            raise BrokerError("invalid_response", f"The broker answered HTTP {status} but without a readable expires_on.", status) from None
    scope = body.get("scope") if isinstance(body.get("scope"), str) else ""
    return {"token": token, "expires_on": expires_on, "scope": scope, "xoauth2": body.get("xoauth2")}


def _retry_after(value):
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        return max(0, int(parsedate_to_datetime(value).timestamp() - time.time()))
    except (TypeError, ValueError):
        return None


def _problem(status, content_type, retry_after_header, text):
    retry_after = _retry_after(retry_after_header)
    problem = _json(text) if "json" in content_type else None
    if not isinstance(problem, dict) or not isinstance(problem.get("code"), str):
        if status == 401:  # Azure's Functions host refuses a wrong function key itself, with an empty 401
            return BrokerError("unauthorized", "The broker refused the credentials (HTTP 401): a wrong or missing "
                               "function key, or a caller token it does not accept.", status)
        what = "an empty body" if not text else f"{content_type} instead of problem+json"
        return BrokerError("invalid_response",
                           f"The broker answered HTTP {status} with {what}: something in front of it (a proxy, the platform) answered, or it is not the broker.",
                           status, retry_after=retry_after)
    remedy = problem.get("remedy") if isinstance(problem.get("remedy"), dict) else None
    detail = problem.get("detail") or problem.get("title") or problem["code"]
    message = f"{problem['code']} (HTTP {status}): {detail}" + (f" What to do: {remedy.get('text')}" if remedy else "")
    return BrokerError(problem["code"], message, status, remedy, retry_after, problem.get("consentUrl"))
