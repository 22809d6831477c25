"""The limit beside each figure: the underlying engine doing the same work
with nothing of ours or CKAN's around it, measured in the same run on the
same stack. Solr answering the exact /select CKAN sends, Solr taking the
same, already built documents on /update in the same batch size, and
PostgreSQL taking the same rows with COPY."""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import json
import statistics
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Iterator

__all__ = ["captured_solr_requests", "SolrSelect", "solr_update_rate", "copy_rows_rate",
           "copy_file_rate", "read_and_hash_rate", "select_rate", "percentiles", "paired"]


def percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 1)

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99), "samples": len(ordered)}


def paired(ours: Callable[[Any], float | None], limit: Callable[[Any], float | None], items: list[Any],
           rounds: int = 3) -> tuple[dict[str, Any], dict[str, Any]]:
    """Latencies of ``ours`` and of ``limit`` for each item, asked one right
    after the other (ours, then the limit, item by item, ``rounds`` times),
    so that a slow moment of a shared machine falls on both; percentiles
    over all the samples of each. A call returns its seconds, or None for a
    failed request (counted as an error, left out of the percentiles)."""
    times: tuple[list[float], list[float]] = ([], [])
    errors = [0, 0]
    for _round in range(rounds):
        for item in items:
            for side, call in enumerate((ours, limit)):
                seconds = call(item)
                if seconds is None:
                    errors[side] += 1
                else:
                    times[side].append(seconds)
    return ({**percentiles(times[0]), "errors": errors[0], "rounds": rounds},
            {**percentiles(times[1]), "errors": errors[1], "rounds": rounds})


# A limit measured once in a few hundredths of a second is at the mercy
# of one slow moment of a shared machine (the small COPY's share moved
# +-32% over three quiet runs): each engine pass is repeated until the
# passes add up to this many seconds (at least three of them, at most
# MAX_PASSES), and the median pass counts.
MIN_SECONDS = 1.0
MAX_PASSES = 50


def median_pass(one_pass: Callable[[], float], min_seconds: float = MIN_SECONDS, min_passes: int = 3,
                max_passes: int = MAX_PASSES) -> tuple[float, list[float]]:
    """(median seconds, every pass) of ``one_pass`` (which returns the
    seconds it timed) run until the passes add up to ``min_seconds``."""
    passes: list[float] = []
    while len(passes) < max_passes and (len(passes) < min_passes or sum(passes) < min_seconds):
        passes.append(one_pass())
    return statistics.median(passes), passes


def read_and_hash_rate(path: Path, min_seconds: float = MIN_SECONDS) -> dict[str, Any]:
    """Records per second Python alone reads a JSON export and hashes each
    record (its canonical JSON, SHA-256): the reading and the recognising
    of a gather with nothing around them. The median pass (median_pass)."""
    count = 0

    def one_pass() -> float:
        nonlocal count
        started = time.perf_counter()
        records = json.loads(path.read_bytes())
        for record in records:
            hashlib.sha256(json.dumps(record, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
        count = len(records)
        return time.perf_counter() - started

    seconds, passes = median_pass(one_pass, min_seconds)
    return {"records": count, "seconds": seconds, "records_per_second": count / seconds, "passes": passes}


def select_rate(connection, sql: str, min_seconds: float = MIN_SECONDS) -> dict[str, Any]:
    """Seconds PostgreSQL takes to hand over the rows of ``sql`` (the median
    pass, median_pass), and how many rows."""
    cursor = connection.cursor()
    rows = 0

    def one_pass() -> float:
        nonlocal rows
        started = time.perf_counter()
        cursor.execute(sql)
        rows = len(cursor.fetchall())
        return time.perf_counter() - started

    seconds, passes = median_pass(one_pass, min_seconds)
    connection.rollback()
    return {"rows": rows, "seconds": seconds, "passes": passes}


@contextlib.contextmanager
def captured_solr_requests() -> Iterator[list[dict[str, Any]]]:
    """Every request pysolr sends in this process within the block, as
    ``{"method", "path", "body"}``: what CKAN really asks Solr, read from
    the wire rather than rebuilt by hand."""
    import pysolr

    seen: list[dict[str, Any]] = []
    send = pysolr.Solr._send_request

    def recording(self, method, path="", body=None, headers=None, files=None):
        seen.append({"method": method, "path": path, "body": body, "url": self.url})
        return send(self, method, path, body, headers, files)

    pysolr.Solr._send_request = recording
    try:
        yield seen
    finally:
        pysolr.Solr._send_request = send


class SolrSelect:
    """The /select request CKAN sent for one query, replayable with another
    ``q``: the same fq, facets, rows, fl, sort, defType and qf."""

    def __init__(self, request: dict[str, Any]):
        path = request["path"]
        handler, _, query = path.partition("/?")
        if request["method"].lower() == "post":
            query = request["body"] if isinstance(request["body"], str) else request["body"].decode()
        self.base = request["url"].rstrip("/")
        self.handler = handler or "select"
        self.params = urllib.parse.parse_qsl(query, keep_blank_values=True)

    def path_for(self, q: str) -> str:
        """The path (under the core's URL) of the same request with ``q``."""
        params = [(key, q if key == "q" else value) for key, value in self.params]
        return f"{urllib.parse.urlsplit(self.base).path}/{self.handler}?{urllib.parse.urlencode(params)}"

    def origin(self) -> str:
        parts = urllib.parse.urlsplit(self.base)
        return f"{parts.scheme}://{parts.netloc}"

    def found(self, q: str) -> int:
        """numFound for ``q`` asked straight of Solr."""
        parts = urllib.parse.urlsplit(self.base)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        connection.request("GET", self.path_for(q))
        body = json.loads(connection.getresponse().read())
        connection.close()
        return body["response"]["numFound"]

    def latency(self, queries: list[str]) -> dict[str, float]:
        """One keep-alive client asking Solr each query in turn."""
        parts = urllib.parse.urlsplit(self.base)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        times, errors = [], 0
        connection.request("GET", self.path_for(queries[0]))
        connection.getresponse().read()
        for q in queries:
            started = time.perf_counter()
            connection.request("GET", self.path_for(q))
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                errors += 1
                continue
            times.append(time.perf_counter() - started)
        connection.close()
        return {**percentiles(times), "errors": errors}


def solr_update_rate(core_url: str, documents: list[dict[str, Any]], batch: int,
                     repeat: int = 1, senders: int = 1) -> dict[str, Any]:
    """Documents per second Solr takes on /update for these documents in
    batches of ``batch`` (JSON, as pysolr sends them), one commit at the end.
    With ``senders`` above one the batches are shared out, in turn, among
    that many connections sending at once (as the rebuild's worker
    processes do): the same work at the same concurrency. With ``repeat``
    above one the same documents are sent again (each pass replaces the
    last's, the same work) and the median pass counts: a short measurement
    on a shared machine is otherwise at the mercy of one slow second."""
    import threading

    parts = urllib.parse.urlsplit(core_url.rstrip("/"))
    bodies = [json.dumps(documents[start:start + batch], default=str).encode("utf-8")
              for start in range(0, len(documents), batch)]
    refused: list[int] = []

    def send(share: list[bytes]) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
        try:
            for body in share:
                connection.request("POST", f"{parts.path}/update?commit=false", body,
                                   {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    refused.append(response.status)
                    return
        finally:
            connection.close()

    passes = []
    for _ in range(repeat):
        started = time.perf_counter()
        threads = [threading.Thread(target=send, args=(bodies[n::senders],)) for n in range(senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if refused:
            raise RuntimeError(f"Solr refused a batch: HTTP {refused[0]}")
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
        connection.request("GET", f"{parts.path}/update?commit=true&waitSearcher=true")
        connection.getresponse().read()
        connection.close()
        passes.append(time.perf_counter() - started)
    seconds = statistics.median(passes)
    return {"documents": len(documents), "batch": batch, "senders": senders, "seconds": seconds,
            "documents_per_second": len(documents) / seconds, "passes": passes}


def copy_rows_rate(connection, tables: dict[str, str], min_seconds: float = MIN_SECONDS) -> dict[str, Any]:
    """Rows per second PostgreSQL takes with COPY for the rows ``tables``
    selects (table name -> SELECT of its rows): each set is copied out first,
    then timed going into an empty table of the same columns (emptied again
    between passes, untimed; the median pass, median_pass)."""
    cursor = connection.cursor()
    buffers = {}
    for table, select in tables.items():
        out = io.StringIO()
        cursor.copy_expert(f"COPY ({select}) TO STDOUT", out)
        buffers[table] = out.getvalue()
        # An ordinary table, written to the WAL as the real ones are (a
        # temporary table is not, and would flatter the limit).
        cursor.execute(f'CREATE TABLE "bench_{table}" (LIKE "{table}" INCLUDING DEFAULTS)')
    connection.commit()
    rows = sum(text.count("\n") for text in buffers.values())

    def one_pass() -> float:
        cursor.execute("TRUNCATE " + ", ".join(f'"bench_{table}"' for table in tables))
        connection.commit()
        started = time.perf_counter()
        for table, text in buffers.items():
            cursor.copy_expert(f'COPY "bench_{table}" FROM STDIN', io.StringIO(text))
        connection.commit()
        return time.perf_counter() - started

    seconds, passes = median_pass(one_pass, min_seconds)
    for table in tables:
        cursor.execute(f'DROP TABLE "bench_{table}"')
    connection.commit()
    return {"rows": rows, "seconds": seconds, "rows_per_second": rows / seconds, "passes": passes,
            "tables": {table: text.count("\n") for table, text in buffers.items()}}


def copy_file_rate(connection, data: bytes, encoding: str, columns: int,
                   min_seconds: float = MIN_SECONDS) -> dict[str, Any]:
    """Rows per second COPY takes a CSV file into a table of ``columns``
    text columns (the header row skipped), as plain as a load can be: a new
    table each pass (made before the clock starts), passes repeated as
    median_pass repeats them, and the fastest pass counts. A small table's
    COPY takes 3 to 10 ms, less than the machine's own jitter: its passes
    within one run spread from 6 to 17 ms, and the median of 150 of them
    still moved by half between three quiet runs, while the fastest moved
    by a few per cent. (``median_seconds`` keeps the median, for the record.)"""
    cursor = connection.cursor()
    rows = 0

    def one_pass() -> float:
        nonlocal rows
        cursor.execute("DROP TABLE IF EXISTS bench_text_table")
        cursor.execute("CREATE TABLE bench_text_table ("
                       + ", ".join(f"c{n} text" for n in range(columns)) + ")")
        connection.commit()
        started = time.perf_counter()
        cursor.copy_expert(f"COPY bench_text_table FROM STDIN WITH (FORMAT csv, HEADER true, "
                           f"ENCODING '{encoding}')", io.BytesIO(data))
        connection.commit()
        seconds = time.perf_counter() - started
        cursor.execute("SELECT count(*) FROM bench_text_table")
        rows = cursor.fetchone()[0]
        return seconds

    median, passes = median_pass(one_pass, min_seconds)
    cursor.execute("DROP TABLE bench_text_table")
    connection.commit()
    seconds = min(passes)
    return {"rows": rows, "seconds": seconds, "rows_per_second": rows / seconds, "median_seconds": median,
            "passes": passes}
