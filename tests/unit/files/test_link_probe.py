"""The link checker's probe and round (files/fetching.probe,
assessment/links.check_links) against a local server of good, broken, slow,
redirecting and HEAD-refusing links: HEAD first, a ranged GET only when HEAD
is refused, redirects followed hop by hop under the harvest's address
rules, a deadline for slow servers, one request at a time per host."""
from __future__ import annotations

import pytest

from ckanext.shanghai.assessment.links import Link, check_links
from ckanext.shanghai.files.fetching import FetchLimits, probe
from link_server import link_server


@pytest.fixture
def links():
    with link_server() as server:
        yield server


def loopback(**limits) -> FetchLimits:
    return FetchLimits(allowed_hosts=frozenset({"127.0.0.1"}), **{"deadline": 1.5, "connect_timeout": 1,
                                                                  "read_timeout": 1, **limits})


def test_a_good_link_answers_to_head_alone(links):
    result = probe(links.url("/good.csv"), loopback())
    assert result.ok and result.status == 200 and result.method == "HEAD"
    assert links.requests == [("HEAD", "/good.csv", None)]


def test_a_broken_link_is_broken_with_its_http_status_in_both_languages(links):
    result = probe(links.url("/missing.csv"), loopback())
    assert not result.ok and result.status == 404
    assert (result.problem.code, result.problem.zh, result.problem.en) == (
        "http-error", "返回 HTTP 404", "Answered HTTP 404")
    # 404 is an answer about the file, not a refusal of HEAD: no second request.
    assert [method for method, _path, _range in links.requests] == ["HEAD"]


def test_a_server_refusing_head_is_asked_for_one_byte(links):
    result = probe(links.url("/no-head"), loopback())
    assert result.ok and result.status == 206 and result.method == "GET"
    assert links.requests == [("HEAD", "/no-head", None), ("GET", "/no-head", "bytes=0-0")]


def test_redirects_are_followed_to_where_they_end(links):
    assert probe(links.url("/redirect"), loopback()).final_url == links.url("/good")
    assert probe(links.url("/redirect"), loopback()).ok
    broken = probe(links.url("/redirect-broken"), loopback())
    assert not broken.ok and broken.status == 404 and broken.final_url == links.url("/broken")
    loop = probe(links.url("/loop"), loopback(max_redirects=3))
    assert not loop.ok and loop.problem.code == "too-many-redirects"


def test_a_slow_link_is_cut_off_at_the_deadline(links):
    result = probe(links.url("/slow"), loopback())
    assert not result.ok and result.problem.code == "timeout"
    assert "秒未应答" in result.problem.zh


def test_internal_addresses_are_refused_without_a_request(links):
    result = probe(links.url("/good.csv"), FetchLimits(deadline=1.5))
    assert not result.ok and result.problem.code == "address-refused"
    assert links.requests == []


def test_a_round_asks_one_host_one_request_at_a_time_and_each_url_once(links):
    batch = [Link(f"r{n}", "p1", links.url(f"/held{n % 3}")) for n in range(6)] + [
        Link("r-broken", "p2", links.url("/missing")), Link("r-bad-scheme", "p2", "ftp://example.org/x")]
    results = check_links(batch, loopback(), host_delay=0, hosts_at_once=4)
    assert set(results) == {link.resource_id for link in batch}
    assert all(results[f"r{n}"].ok for n in range(6))
    assert results["r-broken"].status == 404
    assert results["r-bad-scheme"].problem.code == "source-unreachable"
    # Six resources share three URLs; with four hosts at once allowed, the
    # one host still got one request at a time.
    assert sorted(path for _m, path, _r in links.requests) == ["/held0", "/held1", "/held2", "/missing"]
    assert links.most_at_once == 1
