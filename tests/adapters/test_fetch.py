"""Fetching from a platform's storage over real HTTP (a local fake storage, never the
internet): byte bounds, no redirects, the SSRF guard, and messages without secrets."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest

from cleanit.adapters.fetch import (
    FetchedContentTooLarge,
    FetchFailed,
    HttpContentFetcher,
    StorageUrlRefused,
    media_type,
    shown,
)
from tests.fakes.storage_server import StorageServer
from tests.services.test_matching import ORIGINAL

LIMIT = 1024 * 1024


@pytest.fixture
def storage() -> Iterator[StorageServer]:
    with StorageServer() as server:
        yield server


@pytest.fixture
def fetcher() -> HttpContentFetcher:
    return HttpContentFetcher(timeout=2.0, allow_private=True)


def test_fetches_an_object_with_its_media_type(
    storage: StorageServer, fetcher: HttpContentFetcher
) -> None:
    url = storage.put("a.png", ORIGINAL, "image/png; charset=binary")
    got = fetcher.fetch(url + "?sig=abc", max_bytes=LIMIT)
    assert got.data == ORIGINAL
    assert got.content_type == "image/png"
    assert got.final_url == url + "?sig=abc"
    assert storage.paths == ["/o/a.png?sig=abc"]
    untyped = storage.put("b.bin", b"plain bytes", None)
    assert fetcher.fetch(untyped, max_bytes=LIMIT).content_type is None


def test_an_error_status_names_the_status_and_never_the_query_or_credentials(
    storage: StorageServer, fetcher: HttpContentFetcher
) -> None:
    secret_url = storage.url.replace("http://", "http://svc:hunter2@") + "/o/gone?sig=SECRET"
    with pytest.raises(FetchFailed) as caught:
        fetcher.fetch(secret_url, max_bytes=LIMIT)
    err = caught.value
    assert err.status == 502 and err.field == "storage_url"
    assert err.detail == f"the storage answered 404 Not Found for {storage.url}/o/gone"
    assert "SECRET" not in err.detail and "hunter2" not in err.detail


def test_a_redirect_is_refused_and_names_where_it_pointed(
    storage: StorageServer, fetcher: HttpContentFetcher
) -> None:
    with pytest.raises(StorageUrlRefused) as caught:
        fetcher.fetch(storage.url + "/moved", max_bytes=LIMIT)
    assert caught.value.status == 422
    assert "302" in caught.value.detail and "10.0.0.7" in caught.value.detail
    assert "redirects are not followed" in caught.value.detail
    assert storage.paths == ["/moved"]  # the redirect target was never asked for


def test_an_endless_body_is_cut_at_the_limit_without_reading_it_all(
    storage: StorageServer, fetcher: HttpContentFetcher
) -> None:
    with pytest.raises(FetchedContentTooLarge) as caught:
        fetcher.fetch(storage.url + "/endless", max_bytes=LIMIT)
    assert caught.value.status == 422
    assert f"larger than the limit of {LIMIT:,} bytes" in caught.value.detail
    # The server could send 1 GiB; it got rid of little more than the limit plus the
    # socket buffers before the client hung up.
    assert storage.endless_sent < 64 * LIMIT


def test_a_declared_length_over_the_limit_is_refused_before_reading(
    storage: StorageServer, fetcher: HttpContentFetcher
) -> None:
    with pytest.raises(FetchedContentTooLarge) as caught:
        fetcher.fetch(storage.url + "/liar", max_bytes=LIMIT)
    assert "1,000,000,000,000 bytes" in caught.value.detail
    assert "not downloaded" in caught.value.detail


def test_a_storage_that_stalls_times_out(storage: StorageServer) -> None:
    fetcher = HttpContentFetcher(timeout=0.3, allow_private=True)
    with pytest.raises(FetchFailed) as caught:
        fetcher.fetch(storage.url + "/stall?token=SECRET", max_bytes=LIMIT)
    assert "stopped answering for more than 0.3 s" in caught.value.detail
    assert "SECRET" not in caught.value.detail
    storage.release.set()


def test_a_refused_connection_is_a_clear_error(fetcher: HttpContentFetcher) -> None:
    with socket.socket() as s:  # a port nobody listens on any more
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FetchFailed) as caught:
        fetcher.fetch(f"http://127.0.0.1:{port}/o/x", max_bytes=LIMIT)
    assert caught.value.detail.startswith(
        f"cannot connect to the storage at http://127.0.0.1:{port}/o/x"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/o/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/o/x",
    ],
)
def test_private_addresses_are_refused_before_connecting(url: str) -> None:
    fetcher = HttpContentFetcher(timeout=0.5)
    with pytest.raises(StorageUrlRefused, match="non-public address"):
        fetcher.fetch(url, max_bytes=LIMIT)


def test_loopback_is_refused_by_default_even_when_something_listens(
    storage: StorageServer,
) -> None:
    url = storage.put("a.png", ORIGINAL)
    with pytest.raises(StorageUrlRefused, match=r"127\.0\.0\.1 resolves to a non-public"):
        HttpContentFetcher(timeout=1.0).fetch(url, max_bytes=LIMIT)
    assert storage.paths == []  # refused before any connection


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://files.example.org/a", "absolute http(s) URL"),
        ("/relative/path", "absolute http(s) URL"),
        ("http://files.example.org:99999/a", "cannot be parsed"),
    ],
)
def test_urls_that_are_not_http_are_refused(url: str, message: str) -> None:
    with pytest.raises(StorageUrlRefused, match=re.escape(message)):
        HttpContentFetcher().fetch(url, max_bytes=LIMIT)


def test_shown_and_media_type() -> None:
    assert shown("https://u:p@Files.Example.org:8443/a/b.png?sig=1#f") == (
        "https://files.example.org:8443/a/b.png"
    )
    assert shown("http://[::1]:80/x") == "http://[::1]:80/x"
    assert media_type("Image/PNG ; q=1") == "image/png"
    assert media_type("") is None and media_type(None) is None
