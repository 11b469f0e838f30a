"""ThreatExchange and Tech Against Terrorism feeds, through python-threatexchange's clients.

This is the only module that imports ``threatexchange`` for exchanges. It uses the library's
HTTP clients (``ThreatExchangeAPI``, ``TATHashListAPI``), its reading of a threat update into
opinions (``FBThreatExchangeIndicatorRecord``) and its credential formats, pointed at a
configurable base URL, and adds what a product needs around them:

- every call goes through the SSRF guard (``adapters.webhooks.check_target``), redirects are
  never followed and a ``next`` page must stay on the configured origin;
- server errors become ``ExchangeFailed`` with the server's own message and never the URL
  (ThreatExchange puts the access token in every URL);
- each record becomes a ``FeedRecord``, a ``FeedDeletion`` or a ``FeedError`` on its own, so a
  garbage record is reported and skipped instead of failing its page;
- the checkpoint after each record resumes right after that record (see the two clients).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from threatexchange.exchanges.clients.fb_threatexchange.api import ThreatExchangeAPI
from threatexchange.exchanges.clients.fb_threatexchange.threat_updates import ThreatUpdateJSON
from threatexchange.exchanges.clients.techagainstterrorism.api import (
    TATEndpoint,
    TATHashListAPI,
    TATHashListEntry,
)
from threatexchange.exchanges.fetch_state import SignalOpinionCategory
from threatexchange.exchanges.impl.fb_threatexchange_api import (
    FBThreatExchangeCredentials,
    FBThreatExchangeIndicatorRecord,
)
from threatexchange.exchanges.impl.techagainstterrorism_api import TATCredentials
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.sha256 import VideoSHA256Signal
from threatexchange.signal_type.url import URLSignal

from cleanit.adapters.webhooks import UnsafeTarget, check_target
from cleanit.domain.banks import validate_entry, validate_labels
from cleanit.domain.errors import InvalidInput
from cleanit.domain.exchanges import (
    ExchangeFailed,
    FeedDeletion,
    FeedError,
    FeedItem,
    FeedRecord,
    Opinion,
)

Checkpoint = dict[str, Any]
T = TypeVar("T")

TIMEOUT_SECONDS = 30.0
TE_PAGE_SIZE = 500
TE_DEFAULT_BASE = ThreatExchangeAPI._TE_BASE_URL
TAT_DEFAULT_BASE = TATHashListAPI.BASE_URL.rstrip("/")
EXCERPT = 200

# ---------------------------------------------------------------------------------- shared


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _guard_target(name: str, url: str, allow_private: bool) -> None:
    try:
        check_target(url, allow_private=allow_private)
    except UnsafeTarget as exc:
        raise ExchangeFailed(f"{name}: refused to call {urlsplit(url).hostname}: {exc}") from None


def _same_origin(name: str, url: str, origin: tuple[str, str]) -> None:
    """A page link must stay on the configured server (a hostile server could point
    elsewhere, past the SSRF guard)."""
    if _origin(url) != origin:
        raise ExchangeFailed(f"{name} sent a page link to another server ({urlsplit(url).netloc})")


def _call(name: str, call: Callable[[], T]) -> T:
    """Run one HTTP exchange; a network failure becomes ExchangeFailed without the URL
    (the exception's text holds it, and with ThreatExchange the URL holds the token)."""
    try:
        return call()
    except requests.TooManyRedirects:
        raise ExchangeFailed(
            f"{name} answered with a redirect; redirects are not followed"
        ) from None
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        detail = _error_detail(exc.response) if exc.response is not None else ""
        raise ExchangeFailed(f"{name} answered HTTP {status}{detail}") from None
    except requests.JSONDecodeError:
        raise ExchangeFailed(f"{name} answered something that is not JSON") from None
    except requests.RequestException as exc:
        raise ExchangeFailed(f"{name} could not be reached ({type(exc).__name__})") from None


def _error_detail(response: requests.Response) -> str:
    """The server's own error message, from the error shapes these APIs use."""
    try:
        body = response.json()
    except ValueError:
        return ""
    message: Any = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):  # Graph API: {"error": {"message", "type", "code"}}
            message = err.get("message")
            if err.get("code") is not None:
                message = f"{message} (code {err.get('code')})"
        elif isinstance(err, str):
            message = err
        else:  # Django REST framework: {"detail": ...} or {"non_field_errors": [...]}
            message = body.get("detail") or body.get("non_field_errors")
    if isinstance(message, list):
        message = "; ".join(str(m) for m in message)
    return f": {str(message)[:300]}" if message else ""


def _no_redirects(session: requests.Session) -> requests.Session:
    # A redirect could lead to an address the SSRF guard never saw.
    session.max_redirects = 0
    return session


def _excerpt(raw: Any) -> str:
    try:
        return json.dumps(raw, default=str)[:EXCERPT]
    except (TypeError, ValueError):
        return repr(raw)[:EXCERPT]


def _labels(tags: set[str]) -> list[str]:
    """Tags that already are labels of our taxonomy (``entity:x``...); free-text tags are
    not labels (the bank's own labels apply)."""
    out: list[str] = []
    for tag in sorted(tags):
        try:
            out.extend(validate_labels([tag]))
        except InvalidInput:
            continue
    return out[:20]


def _record(
    record_id: str, position: str, signal_type: str, value: Any, tags: set[str], raw: Any
) -> FeedRecord | FeedError:
    if not isinstance(value, str):
        return FeedError(position, "the record has no hash (a string)", _excerpt(raw))
    try:
        return FeedRecord(record_id, validate_entry(signal_type, value, _labels(tags)))
    except InvalidInput as exc:
        where = f" ({exc.field})" if exc.field else ""
        return FeedError(position, f"{exc.detail}{where}", _excerpt(raw))


# --------------------------------------------------------------------------- ThreatExchange

TE_NAME = "ThreatExchange"


def _indicator_types(declared: str | set[str] | dict[str, str | None]) -> dict[str, str | None]:
    if isinstance(declared, str):
        return {declared: None}
    if isinstance(declared, set):
        return dict.fromkeys(declared)
    return dict(declared)


def _te_signal_types() -> dict[tuple[str, str | None], str]:
    """(ThreatExchange indicator type, tag it needs or None) -> our signal type.

    The video and URL rows come from the library's signal types (``INDICATOR_TYPE``); a
    video's SHA-256 is a file SHA-256, which we hold as ``sha256``. ``HASH_PDQ`` is the
    library's ``PdqSignal`` type (not imported here: that module loads faiss). An untagged
    ``HASH_MD5``/``HASH_SHA256`` is a file hash (the library's old ``photo_md5``): our
    ``md5``/``sha256``.
    """
    table: dict[tuple[str, str | None], str] = {
        ("HASH_PDQ", None): "pdq",
        ("HASH_MD5", None): "md5",
        ("HASH_SHA256", None): "sha256",
    }
    for signal, ours in (
        (VideoMD5Signal, "video_md5"),
        (VideoSHA256Signal, "sha256"),
        (URLSignal, "url"),
    ):
        for te_type, tag in _indicator_types(signal.INDICATOR_TYPE).items():
            table[(te_type, tag)] = ours
    return table


TE_SIGNAL_TYPES = _te_signal_types()


def te_signal_type(te_type: Any, tags: set[str]) -> str | None:
    """Our signal type for a ThreatExchange indicator type (a tagged rule wins)."""
    if not isinstance(te_type, str):
        return None
    for tag in sorted(tags):
        if (te_type, tag) in TE_SIGNAL_TYPES:
            return TE_SIGNAL_TYPES[(te_type, tag)]
    return TE_SIGNAL_TYPES.get((te_type, None))


#: Reactions that carry our opinion: the library reads HELPFUL as a positive and
#: DISAGREE_WITH_TAGS as a negative opinion (``FBThreatExchangeIndicatorRecord``).
TE_REACTIONS = {Opinion.TRUE_POSITIVE: "HELPFUL", Opinion.FALSE_POSITIVE: "DISAGREE_WITH_TAGS"}


class _GraphAPI(ThreatExchangeAPI):
    """The library's Graph API client on ``api_base``, with our error handling and guard.

    The library's GET does not use its own session (no retries) and trusts any ``next``
    link; this override uses the session (retries on 429/5xx and dropped connections), a
    timeout, no redirects, the origin check and Graph's error shape.
    """

    def __init__(self, token: str, api_base: str, timeout: float) -> None:
        super().__init__(token, endpoint_override=api_base)
        self._origin = _origin(api_base)
        self._timeout = timeout

    def _get_session(self) -> requests.Session:
        return _no_redirects(super()._get_session())  # type: ignore[no-untyped-call]

    def get_json_from_url(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        *,
        json_obj_hook: Callable[..., Any] | None = None,
    ) -> Any:
        _same_origin(TE_NAME, url, self._origin)

        def get() -> requests.Response:
            with self._get_session() as session:
                return session.get(url, params=dict(params or {}), timeout=self._timeout)

        return _graph_answer(_call(TE_NAME, get), json_obj_hook)


def _graph_answer(response: requests.Response, hook: Callable[..., Any] | None = None) -> Any:
    if 300 <= response.status_code < 400:
        raise ExchangeFailed(f"{TE_NAME} answered with a redirect; redirects are not followed")
    try:
        body = response.json(object_hook=hook)
    except ValueError:
        body = None
    if response.status_code >= 400 or (isinstance(body, dict) and "error" in body):
        detail = _error_detail(response)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and (
            error.get("code") == 190 or error.get("type") == "OAuthException"
        ):
            raise ExchangeFailed(
                f"{TE_NAME} refused the access token (HTTP {response.status_code}{detail}); "
                "check the app token in the credentials_env variable"
            )
        raise ExchangeFailed(f"{TE_NAME} answered HTTP {response.status_code}{detail}")
    if body is None:
        raise ExchangeFailed(f"{TE_NAME} answered something that is not JSON")
    return body


def _te_token(token: str) -> str:
    creds = FBThreatExchangeCredentials(token.strip())
    if not creds._are_valid():
        raise InvalidInput(
            "the ThreatExchange credentials are not an app token of the form appid|secret",
            field="credentials_env",
        )
    return creds.api_token


class ThreatExchangeFeedClient:
    """The ``threat_updates`` of one privacy group, oldest update first.

    Checkpoint: ``{"update_time": T, "done_ids": [...]}``: the last update time reached and
    the indicators already stored at that very second. A sync resumes with
    ``start_time=T`` (inclusive, as the API's ``[start_time, stop_time)`` ranges are) and
    skips those indicators, so a crash between two records of the same second neither
    repeats nor loses one. Several updates of one indicator arrive in order; a deletion
    (``should_delete``) or an indicator every owner now marks non-malicious withdraws it.
    """

    def __init__(
        self,
        *,
        token: str,
        privacy_group: int,
        api_base: str | None = None,
        allow_private: bool = False,
        page_size: int = TE_PAGE_SIZE,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self._token = _te_token(token)
        self.privacy_group = privacy_group
        self.api_base = api_base or TE_DEFAULT_BASE
        self.allow_private = allow_private
        self.page_size = page_size
        self.timeout = timeout
        self._next: Checkpoint | None = None

    @property
    def next_checkpoint(self) -> Checkpoint | None:
        return self._next

    def fetch(self, checkpoint: Checkpoint | None) -> Iterator[FeedItem]:
        self._next = checkpoint
        start, ids = _te_position(checkpoint)
        time, done = start, set(ids)
        _guard_target(TE_NAME, self.api_base, self.allow_private)
        api = _GraphAPI(self._token, self.api_base, self.timeout)
        cursor = api.get_threat_updates(
            self.privacy_group,
            start_time=start,
            page_size=self.page_size,
            fields=FBThreatExchangeIndicatorRecord.te_threat_updates_fields(),
        )
        for page in cursor:
            if not isinstance(page, list):
                raise ExchangeFailed(f"{TE_NAME} answered a page without a data list")
            for raw in page:
                item, when, record_id = te_item(raw, api.app_id)
                if (
                    when is not None
                    and start is not None
                    and (when < start or (when == start and record_id in done))
                ):
                    continue  # stored by an earlier sync
                if when is not None and record_id is not None:
                    if time is None or when > time:
                        time, ids = when, [record_id]
                    elif when == time and record_id not in ids:
                        ids.append(record_id)
                    self._next = {"update_time": time, "done_ids": list(ids)}
                yield item


def _te_position(checkpoint: Checkpoint | None) -> tuple[int | None, list[str]]:
    if not checkpoint or checkpoint.get("update_time") is None:
        return None, []
    try:
        start = int(checkpoint["update_time"])
    except (TypeError, ValueError):
        return None, []  # not ours (an older format): read again; duplicates are skipped
    return start, [str(i) for i in checkpoint.get("done_ids") or ()]


def te_item(raw: Any, app_id: int) -> tuple[FeedItem, int | None, str | None]:
    """One threat update: the item, its update time and its indicator id (None if
    unreadable)."""
    if not isinstance(raw, dict):
        return FeedError("threat update", "not a JSON object", _excerpt(raw)), None, None
    update = ThreatUpdateJSON(raw)
    try:
        record_id, when = str(update.id), update.time
    except (KeyError, TypeError, ValueError):
        # Still place it when possible, so a resume does not report it again.
        given = str(raw["id"])[:80] if raw.get("id") not in (None, "") else None
        try:
            at: int | None = int(raw["last_updated"])
        except (KeyError, TypeError, ValueError):
            at = None
        error = FeedError(
            f"indicator {given or '?'}",
            "a threat update needs a numeric id and last_updated",
            _excerpt(raw),
        )
        return error, (at if given else None), given
    position = f"indicator {record_id}"
    try:
        if update.should_delete:
            return FeedDeletion(record_id, position), when, record_id
        record = FBThreatExchangeIndicatorRecord.from_threatexchange_json(app_id, update)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        message = f"malformed threat update ({type(exc).__name__}: {str(exc)[:100]})"
        return FeedError(position, message, _excerpt(raw)), when, record_id
    if record is None or all(
        o.category is SignalOpinionCategory.NEGATIVE_CLASS for o in record.opinions
    ):
        # No descriptor we may see any more, or every owner now says "non-malicious":
        # the indicator is no longer known-bad content.
        return FeedDeletion(record_id, position), when, record_id
    tags = {str(tag) for opinion in record.opinions for tag in opinion.tags}
    ours = te_signal_type(raw.get("type"), tags)
    if ours is None:
        message = f"unsupported signal type {str(raw.get('type'))[:80]}"
        return FeedError(position, message, _excerpt(raw)), when, record_id
    return _record(record_id, position, ours, raw.get("indicator"), tags, raw), when, record_id


class ThreatExchangeOpinions:
    """Our opinion on an indicator, as reactions on its descriptors (the library's
    ``react_to_threat_descriptor``). Changing our mind removes the opposite reaction."""

    def __init__(
        self,
        *,
        token: str,
        api_base: str | None = None,
        allow_private: bool = False,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self._token = _te_token(token)
        self.api_base = api_base or TE_DEFAULT_BASE
        self.allow_private = allow_private
        self.timeout = timeout

    def send(self, record_id: str, opinion: Opinion, previous: Opinion | None) -> list[str]:
        """React on every descriptor of the indicator; the descriptor ids reacted on."""
        if not record_id.isdigit():
            raise InvalidInput(f"{record_id!r} is not a ThreatExchange indicator id")
        _guard_target(TE_NAME, self.api_base, self.allow_private)
        api = _GraphAPI(self._token, self.api_base, self.timeout)
        try:
            descriptors = api.get_threat_descriptors_from_indicator(int(record_id))
        except (KeyError, TypeError) as exc:
            raise ExchangeFailed(f"{TE_NAME} answered no descriptor list ({exc})") from None
        ids = [
            str(d["id"])
            for d in descriptors
            if isinstance(d, dict)
            and "id" in d
            and str((d.get("owner") or {}).get("id", "")) != str(api.app_id)
        ]
        for descriptor_id in ids:
            react = api.react_to_threat_descriptor
            _posted(_call(TE_NAME, partial(react, descriptor_id, TE_REACTIONS[opinion])))
            if previous is not None and previous is not opinion:
                remove = api.remove_reaction_from_threat_descriptor
                _posted(_call(TE_NAME, partial(remove, descriptor_id, TE_REACTIONS[previous])))
        return ids


def _posted(result: Any) -> None:
    """The library's POST answers ``[error, exception, json]`` and never raises on HTTP
    errors: read Graph's answer ourselves."""
    body = result[2] if isinstance(result, list) and len(result) == 3 else None
    if isinstance(body, dict) and body.get("success") is True:
        return
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    raise ExchangeFailed(f"{TE_NAME} did not take the reaction: {message or _excerpt(body)}")


# -------------------------------------------------------------------- Tech Against Terrorism

TAT_NAME = "Tech Against Terrorism"
#: The library's rule: TAT's MD5s of these file types are video MD5s.
TAT_VIDEO_TYPES = frozenset({"mov", "m4v", "mp4", "webm"})


class _TATAPI(TATHashListAPI):
    """The library's hash list client on ``api_base`` (its URL is a class attribute)."""

    def __init__(self, username: str, password: str, api_base: str) -> None:
        super().__init__(username, password)
        # The library builds every URL (and mounts its retrying, 60-second-timeout adapter)
        # from BASE_URL; an instance value points it elsewhere.
        self.BASE_URL = api_base.rstrip("/") + "/"  # type: ignore[misc]

    def _get_session(self, auth_token: str | None = None) -> Any:
        return _TATSession(super()._get_session(auth_token))


class _TATSession:
    """Wraps the library's session context manager: no redirects."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __enter__(self) -> requests.Session:
        return _no_redirects(self.inner.__enter__())

    def __exit__(self, *exc: object) -> Any:
        return self.inner.__exit__(*exc)


def _tat_credentials(value: str) -> tuple[str, str]:
    creds = TATCredentials._from_str(value)
    if not creds._are_valid():
        raise InvalidInput(
            "the Tech Against Terrorism credentials are not of the form username:password",
            field="credentials_env",
        )
    return creds.username, creds.password


class TATFeedClient:
    """Tech Against Terrorism's hash list, oldest change first (``order=asc``).

    Checkpoint: ``{"after": "<updated_on>,<id>"}`` of the last record stored, the API's own
    cursor format, so resuming asks for exactly the records after it. A record marked
    ``deleted`` withdraws its hash.
    """

    def __init__(
        self,
        *,
        credentials: str,
        api_base: str | None = None,
        allow_private: bool = False,
        page_size: int | None = None,
    ) -> None:
        self._username, self._password = _tat_credentials(credentials)
        self.api_base = api_base or TAT_DEFAULT_BASE
        self.allow_private = allow_private
        self.page_size = page_size
        self._next: Checkpoint | None = None

    @property
    def next_checkpoint(self) -> Checkpoint | None:
        return self._next

    def _token(self, api: _TATAPI) -> str:
        try:
            token = _call(TAT_NAME, lambda: api.get_auth_token(self._username, self._password))
        except ExchangeFailed as exc:
            raise ExchangeFailed(
                f"{exc.detail}; check the username:password in the credentials_env variable"
            ) from None
        if not token:
            raise ExchangeFailed(f"{TAT_NAME} gave no token for these credentials")
        return token

    def fetch(self, checkpoint: Checkpoint | None) -> Iterator[FeedItem]:
        self._next = checkpoint
        after = str((checkpoint or {}).get("after") or "")
        _guard_target(TAT_NAME, self.api_base, self.allow_private)
        api = _TATAPI(self._username, self._password, self.api_base)
        origin = _origin(api.BASE_URL)
        url: str | None = api.BASE_URL + TATEndpoint.hash_list.value
        params: dict[str, Any] = {"order": "asc", "after": after}
        if self.page_size:
            params["limit"] = self.page_size
        while url:
            _same_origin(TAT_NAME, url, origin)
            # Like the library, a fresh token for every page (they are short-lived).
            token = self._token(api)
            page = _call(TAT_NAME, partial(api._get, url, token, **params))
            if not isinstance(page, dict) or not isinstance(page.get("results"), list):
                raise ExchangeFailed(f"{TAT_NAME} answered a page without a results list")
            for raw in page["results"]:
                item, position = tat_item(raw)
                if position is not None:
                    self._next = {"after": position}
                yield item
            following = page.get("next")
            url, params = (following if isinstance(following, str) and following else None), {}


def tat_item(raw: Any) -> tuple[FeedItem, str | None]:
    """One hash list record: the item and its cursor position (None if unreadable)."""
    if not isinstance(raw, dict):
        return FeedError("record", "not a JSON object", _excerpt(raw)), None
    try:
        record_id, updated = str(int(raw["id"])), float(raw["updated_on"])
    except (KeyError, TypeError, ValueError):
        # No cursor: a crash right after this record reads (and reports) it again.
        message = "a record needs a numeric id and updated_on"
        return FeedError(f"record {str(raw.get('id', '?'))[:80]}", message, _excerpt(raw)), None
    position, where = f"{updated!r},{record_id}", f"record {record_id}"
    try:
        entry = TATHashListEntry(**raw)
    except TypeError:
        expected = (
            "hash_digest, algorithm, ideology, file_type, deleted, updated_on, created_on, id"
        )
        return FeedError(where, f"a record has exactly: {expected}", _excerpt(raw)), position
    if entry.deleted is True:
        return FeedDeletion(record_id, where), position
    algorithm = str(entry.algorithm).upper()
    if algorithm == "PDQ":
        ours = "pdq"
    elif algorithm == "MD5":
        # The library keeps only video MD5s; any other file's MD5 is our file md5.
        ours = "video_md5" if str(entry.file_type).lower() in TAT_VIDEO_TYPES else "md5"
    else:
        message = f"unsupported signal type {str(entry.algorithm)[:80]}"
        return FeedError(where, message, _excerpt(raw)), position
    return _record(record_id, where, ours, entry.hash_digest, set(), raw), position


# ------------------------------------------------------------------------------ factories


def feed_client(
    kind: str,
    config: Mapping[str, Any],
    *,
    credentials: str,
    allow_private: bool,
) -> ThreatExchangeFeedClient | TATFeedClient:
    """The API feed client for an exchange's stored kind and config."""
    if kind == "threatexchange":
        return ThreatExchangeFeedClient(
            token=credentials,
            privacy_group=int(config["privacy_group"]),
            api_base=config.get("api_base"),
            allow_private=allow_private,
            page_size=int(config.get("page_size") or TE_PAGE_SIZE),
        )
    if kind == "tat":
        return TATFeedClient(
            credentials=credentials,
            api_base=config.get("api_base"),
            allow_private=allow_private,
            page_size=config.get("page_size"),
        )
    raise InvalidInput(f"no API client for exchanges of kind {kind!r}", field="kind")


def opinion_sender(
    kind: str, config: Mapping[str, Any], *, credentials: str, allow_private: bool
) -> ThreatExchangeOpinions:
    if kind == "threatexchange":
        return ThreatExchangeOpinions(
            token=credentials, api_base=config.get("api_base"), allow_private=allow_private
        )
    raise InvalidInput(f"{kind} exchanges take no opinions", field="opinion")
