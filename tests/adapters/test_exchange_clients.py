"""The ThreatExchange and TAT feed clients (python-threatexchange inside) against local fakes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from cleanit.adapters.exchange_clients import (
    TATFeedClient,
    ThreatExchangeFeedClient,
    ThreatExchangeOpinions,
    te_signal_type,
)
from cleanit.adapters.exchanges import Checkpoint, client_for, credentials, opinion_sender_for
from cleanit.domain.errors import InvalidInput
from cleanit.domain.exchanges import (
    ExchangeFailed,
    FeedDeletion,
    FeedError,
    FeedItem,
    FeedRecord,
    Opinion,
)
from tests.fakes.tat_server import FakeTAT
from tests.fakes.threatexchange_server import APP_ID, OTHER_APP_ID, FakeThreatExchange


def pdq(n: int) -> str:
    return hashlib.sha256(f"invented-image-{n}".encode()).hexdigest()


def md5(n: int) -> str:
    return hashlib.md5(f"invented-file-{n}".encode(), usedforsecurity=False).hexdigest()


@pytest.fixture
def te() -> Iterator[FakeThreatExchange]:
    with FakeThreatExchange() as fake:
        yield fake


@pytest.fixture
def tat() -> Iterator[FakeTAT]:
    with FakeTAT() as fake:
        yield fake


def te_client(fake: FakeThreatExchange, page_size: int = 100) -> ThreatExchangeFeedClient:
    return ThreatExchangeFeedClient(
        token=fake.token,
        privacy_group=int(fake.privacy_group),
        api_base=fake.api_base,
        allow_private=True,
        page_size=page_size,
    )


def tat_client(fake: FakeTAT, page_size: int | None = None) -> TATFeedClient:
    return TATFeedClient(
        credentials=fake.credentials,
        api_base=fake.api_base,
        allow_private=True,
        page_size=page_size,
    )


def drain(
    client: ThreatExchangeFeedClient | TATFeedClient, checkpoint: Checkpoint | None = None
) -> list[tuple[FeedItem, Checkpoint | None]]:
    return [(item, client.next_checkpoint) for item in client.fetch(checkpoint)]


# --------------------------------------------------------------------------- ThreatExchange


def test_threatexchange_types_deletions_garbage_and_paging(te: FakeThreatExchange) -> None:
    gone = te.add(pdq(0), at=100)
    te.add(md5(1), "HASH_MD5", at=100)
    te.add(md5(2), "HASH_MD5", at=101, tags=("media_type_video", "entity:invented-group"))
    te.add(md5(3), "HASH_VIDEO_MD5", at=101)
    te.add(pdq(4), "HASH_SHA256", at=102)
    te.add("HTTPS://WWW.Example.org/invented/", "URI", at=102)
    te.add("an invented phrase", "TEXT_STRING", at=103)
    te.add("nothex", "HASH_PDQ", at=103)
    te.add_raw({"id": "not-a-number", "indicator": "x"}, at=104)
    benign = te.add(pdq(5), at=104, status="NON_MALICIOUS")
    te.delete(gone, at=105)

    client = te_client(te, page_size=3)
    got = drain(client)
    items = [item for item, _ in got]
    records = {i.record_id: i.entry for i in items if isinstance(i, FeedRecord)}
    assert sorted((e.signal_type.value, e.value) for e in records.values()) == sorted(
        [
            ("md5", md5(1)),
            ("video_md5", md5(2)),
            ("video_md5", md5(3)),
            ("sha256", pdq(4)),
            ("url", "https://example.org/invented"),
        ]
    )
    # A tag that is one of our labels becomes a label; free-text tags do not.
    assert [e.labels for e in records.values() if e.value == md5(2)] == [("entity:invented-group",)]
    errors = [i for i in items if isinstance(i, FeedError)]
    assert errors[0].message == "unsupported signal type TEXT_STRING"
    assert errors[1].message.startswith("a PDQ hash contains only hexadecimal digits")
    assert errors[1].position.startswith("indicator ") and '"nothex"' in errors[1].excerpt
    assert errors[2].message == "a threat update needs a numeric id and last_updated"
    # Withdrawn: the deleted indicator, and the one every owner marks non-malicious.
    assert [i.record_id for i in items if isinstance(i, FeedDeletion)] == [benign, gone]
    assert te.pages_served == 4  # 11 updates, 3 a page
    assert got[-1][1] == {"update_time": 105, "done_ids": [gone]}
    # The checkpoint after two records of one second names both.
    assert got[0][1] == {"update_time": 100, "done_ids": [items_id(te, md5(1))]}
    assert got[2][1] == {
        "update_time": 101,
        "done_ids": [items_id(te, md5(2)), items_id(te, md5(3))],
    }
    # Nothing new: nothing fetched again.
    assert drain(te_client(te), got[-1][1]) == []


def items_id(te: FakeThreatExchange, value: str) -> str:
    return next(i for i, u in te.updates.items() if u.body.get("indicator") == value)


def test_threatexchange_resumes_exactly_inside_one_second(te: FakeThreatExchange) -> None:
    for n in range(12):
        te.add(pdq(n), at=200 + n // 4)  # four indicators a second
    everything = drain(te_client(te, page_size=5))
    order = [i.record_id for i, _ in everything if isinstance(i, FeedRecord)]
    assert len(order) == 12
    for cut in range(1, 12):
        checkpoint = everything[cut - 1][1]
        rest = drain(te_client(te, page_size=5), checkpoint)
        assert [i.record_id for i, _ in rest if isinstance(i, FeedRecord)] == order[cut:], cut
    # An update after the checkpoint (same indicator, later) is read again.
    te.add(pdq(0), at=300, tags=("entity:x",))
    again = drain(te_client(te), everything[-1][1])
    assert [i.record_id for i, _ in again] == [order[0]]


def test_threatexchange_refuses_bad_tokens_and_hostile_links(te: FakeThreatExchange) -> None:
    bad = ThreatExchangeFeedClient(
        token=f"{APP_ID}|wrongsecretwrongsecret00",
        privacy_group=int(te.privacy_group),
        api_base=te.api_base,
        allow_private=True,
    )
    with pytest.raises(ExchangeFailed) as exc:
        list(bad.fetch(None))
    assert "refused the access token" in exc.value.detail
    assert "Invalid OAuth access token" in exc.value.detail
    assert "wrongsecret" not in exc.value.detail  # the URL (with the token) is never shown
    with pytest.raises(InvalidInput, match=r"appid\|secret"):
        ThreatExchangeFeedClient(token="not-a-token", privacy_group=1, api_base=te.api_base)
    # Unknown privacy group: Graph's own message.
    other = ThreatExchangeFeedClient(
        token=te.token, privacy_group=99, api_base=te.api_base, allow_private=True
    )
    with pytest.raises(ExchangeFailed, match="Object with ID '99' does not exist"):
        list(other.fetch(None))
    # The SSRF guard: a loopback server is refused unless private targets are allowed.
    guarded = ThreatExchangeFeedClient(
        token=te.token, privacy_group=int(te.privacy_group), api_base=te.api_base
    )
    with pytest.raises(ExchangeFailed, match=r"refused to call 127\.0\.0\.1"):
        list(guarded.fetch(None))
    # A next link to another server is not followed.
    for n in range(3):
        te.add(pdq(n), at=10 + n)
    te.next_base = "http://127.0.0.2:9"
    with pytest.raises(ExchangeFailed, match="page link to another server"):
        drain(te_client(te, page_size=2))
    # Nor is a redirect, for reading or for reacting.
    te.redirect_to = "http://169.254.169.254/latest/meta-data/"
    with pytest.raises(ExchangeFailed, match="redirects are not followed"):
        drain(te_client(te))
    sender = ThreatExchangeOpinions(token=te.token, api_base=te.api_base, allow_private=True)
    with pytest.raises(ExchangeFailed, match="redirects are not followed"):
        sender.send("4000000000000001", Opinion.TRUE_POSITIVE, None)


def test_threatexchange_dropped_connection_is_a_clear_failure(te: FakeThreatExchange) -> None:
    for n in range(4):
        te.add(pdq(n), at=10 + n)
    te.drop_after_pages = 1
    client = te_client(te, page_size=2)
    seen: list[FeedItem] = []
    with pytest.raises(ExchangeFailed, match="could not be reached"):
        seen.extend(client.fetch(None))
    assert len(seen) == 2 and client.next_checkpoint == {
        "update_time": 11,
        "done_ids": [seen[1].record_id],  # type: ignore[union-attr]
    }


def test_opinions_become_reactions_and_a_change_of_mind_replaces_them(
    te: FakeThreatExchange,
) -> None:
    indicator = te.add(pdq(1), at=10)
    te.add(pdq(1), at=11, owner=APP_ID)  # our own descriptor on it too: not reacted on
    te.add(pdq(1), at=12, owner="5000000000000005")
    theirs = [d for d in te.indicator_descriptors[indicator] if te.descriptors[d].owner != APP_ID]
    sender = ThreatExchangeOpinions(token=te.token, api_base=te.api_base, allow_private=True)
    sent = sender.send(indicator, Opinion.TRUE_POSITIVE, None)
    # Graph lists descriptor ids only, so ours cannot be told apart: every one gets it.
    assert set(sent) == set(te.indicator_descriptors[indicator]) >= set(theirs)
    assert {(d, r, a) for d, r, a in te.reactions} == {(d, "HELPFUL", "added") for d in sent}
    te.reactions.clear()
    sender.send(indicator, Opinion.FALSE_POSITIVE, Opinion.TRUE_POSITIVE)
    assert sorted(te.reactions) == sorted(
        [(d, "DISAGREE_WITH_TAGS", "added") for d in sent]
        + [(d, "HELPFUL", "removed") for d in sent]
    )
    assert all(te.descriptors[d].reactions["HELPFUL"] == set() for d in sent)
    with pytest.raises(ExchangeFailed, match="does not exist"):
        sender.send("4999999999999999", Opinion.TRUE_POSITIVE, None)
    bad = ThreatExchangeOpinions(
        token=f"{OTHER_APP_ID}|wrongsecretwrongsecret00", api_base=te.api_base, allow_private=True
    )
    with pytest.raises(ExchangeFailed, match="refused the access token"):
        bad.send(indicator, Opinion.TRUE_POSITIVE, None)


def test_signal_type_mapping() -> None:
    assert te_signal_type("HASH_PDQ", set()) == "pdq"
    assert te_signal_type("HASH_MD5", set()) == "md5"
    assert te_signal_type("HASH_MD5", {"media_type_video"}) == "video_md5"
    assert te_signal_type("HASH_VIDEO_MD5", set()) == "video_md5"
    assert te_signal_type("HASH_SHA256", {"media_type_video"}) == "sha256"
    assert te_signal_type("RAW_URI", set()) == "url"
    assert te_signal_type("TEXT_STRING", set()) is None
    assert te_signal_type(None, set()) is None


# --------------------------------------------------------------------- Tech Against Terrorism


def test_tat_records_deletions_garbage_paging_and_resume(tat: FakeTAT) -> None:
    first = tat.add(pdq(0), at=1704901040.222779)
    tat.add(md5(1), algorithm="MD5", file_type="mp4", at=1704901040.24492)
    tat.add(md5(2), algorithm="MD5", file_type="pdf", at=1704901041.5)
    tat.add("zz", at=1704901042.0)
    tat.add(md5(3), algorithm="TMK", at=1704901043.0)
    tat.add_raw({"hash_digest": md5(4)}, at=1704901044.0)
    tat.add_raw({"id": 9001, "updated_on": 1704901044.5, "hash_digest": md5(5)}, at=1704901044.5)
    tat.delete(first, at=1704901045.0)
    got = drain(tat_client(tat, page_size=2))
    items = [i for i, _ in got]
    assert [
        (i.entry.signal_type.value, i.entry.value) for i in items if isinstance(i, FeedRecord)
    ] == [
        ("video_md5", md5(1)),
        ("md5", md5(2)),
    ]
    errors = [i for i in items if isinstance(i, FeedError)]
    assert errors[0].message.startswith("a PDQ hash")
    assert errors[1].message == "unsupported signal type TMK"
    assert errors[2].message == "a record needs a numeric id and updated_on"
    assert errors[3].message.startswith("a record has exactly:")
    assert errors[3].position == "record 9001"
    assert [i.record_id for i in items if isinstance(i, FeedDeletion)] == [str(first)]
    assert tat.pages_served == 4  # seven records, two a page
    assert got[-1][1] == {"after": f"1704901045.0,{first}"}
    # Resuming after any record gives exactly the records after it.
    for cut in range(1, len(got)):
        if got[cut - 1][1] == got[cut - 2][1]:
            continue  # a record without id and updated_on has no cursor: read again on resume
        rest = drain(tat_client(tat, page_size=2), got[cut - 1][1])
        assert [i for i, _ in rest] == items[cut:], cut
    assert drain(tat_client(tat), got[-1][1]) == []


def test_tat_bad_credentials_and_dropped_connection(tat: FakeTAT) -> None:
    bad = TATFeedClient(
        credentials="analyst@platform.example.org:wrong",
        api_base=tat.api_base,
        allow_private=True,
    )
    with pytest.raises(ExchangeFailed) as exc:
        list(bad.fetch(None))
    assert "HTTP 400: Unable to log in with provided credentials." in exc.value.detail
    assert "check the username:password" in exc.value.detail
    with pytest.raises(InvalidInput, match="username:password"):
        TATFeedClient(credentials="no-colon-here", api_base=tat.api_base)
    for n in range(5):
        tat.add(pdq(n), at=10.0 + n)
    tat.drop_after_pages = 2
    client = tat_client(tat, page_size=2)
    seen: list[FeedItem] = []
    with pytest.raises(ExchangeFailed, match="could not be reached"):
        seen.extend(client.fetch(None))
    assert len(seen) == 4 and client.next_checkpoint == {"after": f"13.0,{seen[3].record_id}"}  # type: ignore[union-attr]


# ---------------------------------------------------------------------------- credentials


def test_credentials_come_from_the_named_environment_variable(te: FakeThreatExchange) -> None:
    config = {
        "credentials_env": "TE_TOKEN",
        "privacy_group": int(te.privacy_group),
        "api_base": te.api_base,
    }
    with pytest.raises(InvalidInput, match="TE_TOKEN named by credentials_env is not set"):
        client_for("threatexchange", config, environ={})
    assert credentials(config, {"TE_TOKEN": te.token}) == te.token
    te.add(pdq(1), at=1)
    client = client_for(
        "threatexchange", config, allow_private=True, environ={"TE_TOKEN": te.token}
    )
    assert len(list(client.fetch(None))) == 1
    sender = opinion_sender_for(
        "threatexchange", config, allow_private=True, environ={"TE_TOKEN": te.token}
    )
    assert isinstance(sender, ThreatExchangeOpinions)
    with pytest.raises(InvalidInput, match="tat exchanges take no opinions"):
        opinion_sender_for("tat", config, environ={"TE_TOKEN": te.token})
