"""The stream server: every open Server-Sent Events stream of real-time
products, held by one asyncio process (``ckan shanghai-realtime streams``)
instead of the web workers, so a hundred followers cost the web app
nothing. The web app's stream address answers 307 here with a ticket
(``tickets``) saying who the follower is.

Per product, one reader: a push's NOTIFY (``store.NOTIFY_CHANNEL``, sent
at commit) wakes it, it reads the new history rows once and writes the
same bytes to every open stream of the product. A stream opened with
``Last-Event-ID`` first catches up from the history on its own, then
joins. Without the NOTIFY connection (PostgreSQL restarting) the readers
poll. Heartbeats keep proxies from closing quiet streams, and the access
rules of conditional products are checked again every 15 seconds: a grant
revoked or expired ends the stream."""
from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import json
import logging
import time
import urllib.parse

import ckan.model as model
import ckan.plugins.toolkit as tk

from ckanext.shanghai.realtime import auth, store, tickets

__all__ = ["StreamServer", "serve", "parse_bind"]

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15
# A check of (product, user) serves the other streams of that pair this long.
ACCESS_CACHE_SECONDS = 5
PAGE = 1000
# A follower this far behind (bytes not yet taken by its socket) is
# dropped; it reconnects with Last-Event-ID and catches up from the history.
MAX_BUFFER = 8 * 1024 * 1024
_CORS = (b"Access-Control-Allow-Origin: *\r\n"
         b"Access-Control-Allow-Headers: Last-Event-ID, Cache-Control\r\n"
         b"Access-Control-Allow-Methods: GET, OPTIONS\r\n")
_PREFIX = "/api/realtime/"


def parse_bind(bind: str) -> tuple[str, int]:
    """``host:port`` (or ``:port``) as (host, port); ValueError when not."""
    host, _colon, port = (bind or "").strip().rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not HOST:PORT: {bind!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _event(row: dict) -> bytes:
    data = {"event_id": row["id"], "key": row["key"], "observed": row["observed"].isoformat(),
            "deleted": row["deleted"], "record": row["record"]}
    return (f"id: {row['id']}\nevent: observation\n"
            f"data: {json.dumps(data, ensure_ascii=False, default=str)}\n\n").encode("utf-8")


class Follower:
    """One open stream: where it is in the product's history."""

    def __init__(self, writer: asyncio.StreamWriter, user: str, last: int):
        self.writer, self.user, self.last = writer, user, last
        self.live = False
        self.closed = asyncio.Event()

    def send(self, rows: list[tuple[int, bytes]]) -> None:
        fresh = [chunk for event_id, chunk in rows if event_id > self.last]
        if not fresh or self.closed.is_set():
            return
        if self.writer.is_closing() or self.writer.transport.get_write_buffer_size() > MAX_BUFFER:
            self.close()
            return
        self.writer.write(b"".join(fresh))
        self.last = rows[-1][0]

    def close(self) -> None:
        self.closed.set()


class Product:
    """The open streams of one product and its one reader."""

    def __init__(self, resource_id: str, last: int):
        self.resource_id, self.last = resource_id, last
        self.followers: set[Follower] = set()
        self.reading: asyncio.Task | None = None
        self.again = False


class StreamServer:
    """The HTTP side (streams, /health), the products' readers and the
    NOTIFY listener, on one event loop."""

    def __init__(self, app, host: str, port: int):
        self.app, self.host, self.port = app, host, port
        self.secret = tk.config.get("SECRET_KEY")
        self.lasting = float(tk.config.get("ckanext.shanghai.realtime.stream_seconds"))
        self.poll = float(tk.config.get("ckanext.shanghai.realtime.stream_poll_seconds"))
        self.products: dict[str, Product] = {}
        # History reads in a few threads; CKAN's model (access rules) in one.
        self.readers = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="stream-read")
        self.checker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="stream-access")
        self.access: dict[tuple[str, str], tuple[float, int]] = {}
        self.listening = False
        # For /health: NOTIFYs received; history reads by the products'
        # readers (one per new batch, whatever the number of streams) and by
        # streams catching up on their own.
        self.notifications = self.fanout_reads = self.catch_up_reads = 0

    # ---------------------------------------------------------------- blocking work, in threads

    def _allowed(self, resource_id: str, user: str) -> int:
        """200 when ``user`` ('' anonymous) may follow the product, 404 when
        there is no such product, 403 otherwise."""
        with self.app.test_request_context():
            try:
                product = store.get_product(resource_id)
                if product is None or product["resource_id"] != resource_id:
                    return 404
                account = model.User.get(user) if user else None
                context = {"user": account.name if account is not None else "", "auth_user_obj": account}
                return 200 if auth.may_read(context, product) else 403
            finally:
                model.Session.remove()

    async def allowed(self, resource_id: str, user: str, fresh: bool = False) -> int:
        """``_allowed``, remembered per (product, user) for ACCESS_CACHE_SECONDS:
        a hundred anonymous followers of one product cost one check."""
        now = time.monotonic()
        cached = self.access.get((resource_id, user))
        if cached is not None and not fresh and now - cached[0] < ACCESS_CACHE_SECONDS:
            return cached[1]
        status = await asyncio.get_running_loop().run_in_executor(self.checker, self._allowed, resource_id, user)
        if len(self.access) > 10000:  # many users come and go: forget stale checks
            self.access = {pair: seen for pair, seen in self.access.items()
                           if time.monotonic() - seen[0] < ACCESS_CACHE_SECONDS}
        self.access[(resource_id, user)] = (time.monotonic(), status)
        return status

    async def rows_after(self, resource_id: str, last: int) -> list[tuple[int, bytes]]:
        rows = await asyncio.get_running_loop().run_in_executor(
            self.readers, store.events_after, resource_id, last, PAGE)
        return [(row["id"], _event(row)) for row in rows]

    async def newest(self, resource_id: str) -> int:
        return await asyncio.get_running_loop().run_in_executor(self.readers, store.events_before_now, resource_id)

    # ---------------------------------------------------------------- fan-out

    def wake(self, resource_id: str) -> None:
        product = self.products.get(resource_id)
        if product is None:
            return
        if product.reading is not None and not product.reading.done():
            product.again = True
            return
        product.reading = asyncio.get_running_loop().create_task(self._read(product))

    async def _read(self, product: Product) -> None:
        """Read the product's new rows once and write them to every live stream."""
        while True:
            product.again = False
            try:
                self.fanout_reads += 1
                rows = await self.rows_after(product.resource_id, product.last)
            except Exception as error:  # PostgreSQL restarting: the next wake-up tries again
                log.warning("reading %s: %s", product.resource_id, error)
                return
            if rows:
                product.last = rows[-1][0]
                for follower in list(product.followers):
                    if follower.live:
                        follower.send(rows)
            if len(rows) < PAGE and not product.again:
                return

    async def _listen(self) -> None:
        """LISTEN for committed pushes, reconnecting after a failure; each
        notification wakes its product's reader."""
        import psycopg2
        import psycopg2.extensions

        url = tk.config.get("ckan.datastore.write_url")
        loop = asyncio.get_running_loop()
        while True:
            connection = None
            try:
                connection = psycopg2.connect(url, connect_timeout=5, keepalives=1, keepalives_idle=10,
                                              keepalives_interval=5, keepalives_count=2)
                connection.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
                with connection.cursor() as cursor:
                    cursor.execute(f"LISTEN {store.NOTIFY_CHANNEL}")
                broken = loop.create_future()

                def readable():
                    try:
                        connection.poll()
                    except Exception as error:
                        if not broken.done():
                            broken.set_exception(error)
                        return
                    while connection.notifies:
                        self.notifications += 1
                        self.wake(connection.notifies.pop(0).payload)

                loop.add_reader(connection.fileno(), readable)
                self.listening = True
                # Pushes committed while we were not listening.
                for resource_id in list(self.products):
                    self.wake(resource_id)
                try:
                    await broken
                finally:
                    loop.remove_reader(connection.fileno())
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if self.listening:
                    log.warning("LISTEN %s lost (%s); polling until it is back", store.NOTIFY_CHANNEL, error)
            finally:
                self.listening = False
                if connection is not None:
                    try:
                        connection.close()
                    except Exception:
                        pass
            await asyncio.sleep(1)

    async def _poll(self) -> None:
        """Without LISTEN, look for new rows every stream_poll_seconds; with
        it, every HEARTBEAT_SECONDS all the same (a lost notification costs
        at most that)."""
        since = time.monotonic()
        while True:
            await asyncio.sleep(self.poll)
            if not self.listening or time.monotonic() - since >= HEARTBEAT_SECONDS:
                since = time.monotonic()
                for resource_id in list(self.products):
                    self.wake(resource_id)

    # ---------------------------------------------------------------- HTTP

    async def _answer(self, writer, status: str, body: dict, extra: bytes = b"") -> None:
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json; charset=utf-8\r\n"
                     f"Content-Length: {len(payload)}\r\nConnection: close\r\n".encode("ascii")
                     + _CORS + extra + b"\r\n" + payload)
        await writer.drain()

    async def _problem(self, writer, status: str, code: str, zh: str, en: str) -> None:
        await self._answer(writer, status, {"success": False, "error": {
            "code": code, "reason_zh": zh, "reason_en": en, "message": f"{zh} / {en}"}})

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, _space, rest = lines[0].partition(" ")
            target = rest.rpartition(" ")[0] or rest
            headers = {}
            for line in lines[1:]:
                name, colon, value = line.partition(":")
                if colon:
                    headers[name.strip().lower()] = value.strip()
            url = urllib.parse.urlsplit(target)
            query = urllib.parse.parse_qs(url.query)
            if method == "OPTIONS":
                writer.write(b"HTTP/1.1 204 No Content\r\n" + _CORS
                             + b"Access-Control-Max-Age: 600\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
            elif method != "GET":
                await self._problem(writer, "405 Method Not Allowed", "method", "只接受 GET 请求", "Only GET is served")
            elif url.path == "/health":
                await self._answer(writer, "200 OK", {
                    "status": "ok", "listening": self.listening, "products": len(self.products),
                    "streams": sum(len(p.followers) for p in self.products.values()),
                    "notifications": self.notifications, "fanout_reads": self.fanout_reads,
                    "catch_up_reads": self.catch_up_reads})
            elif url.path.startswith(_PREFIX) and url.path.endswith("/stream"):
                resource_id = urllib.parse.unquote(url.path[len(_PREFIX):-len("/stream")])
                last = headers.get("last-event-id") or (query.get("last_event_id") or [""])[0]
                await self.stream(reader, writer, resource_id, (query.get("ticket") or [""])[0], last)
            else:
                await self._problem(writer, "404 Not Found", "not-found", "没有这个地址", "No such address")
        except (ConnectionError, OSError):
            pass
        except Exception:
            log.exception("stream request failed")
        finally:
            writer.close()

    async def stream(self, reader, writer, resource_id: str, ticket: str, last_event_id: str) -> None:
        try:
            claim = tickets.check(self.secret, ticket, resource_id)
        except tickets.BadTicket as bad:
            await self._problem(writer, "403 Forbidden", bad.code, bad.zh, bad.en)
            return
        try:
            status = await self.allowed(resource_id, claim.user, fresh=True)
        except Exception:
            log.exception("checking access to %s", resource_id)
            await self._problem(writer, "503 Service Unavailable", "unavailable", "服务暂时不可用，请稍后重试",
                                "The service is unavailable; try again shortly")
            return
        if status == 404:
            await self._problem(writer, "404 Not Found", "not-found", "没有这个实时数据产品",
                                "No such real-time data product")
            return
        if status != 200:
            await self._problem(writer, "403 Forbidden", "not-authorized",
                                "没有权限订阅这个数据产品，有条件开放的产品请先申请",
                                "Not authorized to follow this product; apply for a conditional product")
            return
        product = self.products.get(resource_id)
        try:
            if product is None:
                product = Product(resource_id, await self.newest(resource_id))
                product = self.products.setdefault(resource_id, product)
            try:
                start = max(int(last_event_id), 0)
            except ValueError:
                start = product.last
        except Exception:
            await self._problem(writer, "503 Service Unavailable", "unavailable", "服务暂时不可用，请稍后重试",
                                "The service is unavailable; try again shortly")
            return
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
                     b"Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nConnection: close\r\n"
                     + _CORS + b"\r\nretry: 1000\n\n")
        follower = Follower(writer, claim.user, start)
        product.followers.add(follower)
        try:
            await self._follow(reader, writer, product, follower)
        finally:
            product.followers.discard(follower)
            if not product.followers and self.products.get(resource_id) is product:
                del self.products[resource_id]

    async def _follow(self, reader, writer, product: Product, follower: Follower) -> None:
        # Catch up from the history alone, then join the product's reader
        # at a row it has not passed (checked and set with no await between).
        while True:
            self.catch_up_reads += 1
            rows = await self.rows_after(product.resource_id, follower.last)
            follower.send(rows)
            await writer.drain()
            if follower.closed.is_set():
                return
            if len(rows) < PAGE and follower.last >= product.last:
                follower.live = True
                break
        if self.lasting <= 0:
            return
        gone = asyncio.get_running_loop().create_task(reader.read(1))
        gone.add_done_callback(lambda _task: follower.close())
        started = checked = time.monotonic()
        try:
            while not follower.closed.is_set():
                now = time.monotonic()
                if now - started >= self.lasting:
                    return
                wait = min(HEARTBEAT_SECONDS - (now - checked), self.lasting - (now - started))
                try:
                    await asyncio.wait_for(follower.closed.wait(), max(wait, 0.01))
                    return
                except asyncio.TimeoutError:
                    pass
                if time.monotonic() - checked >= HEARTBEAT_SECONDS:
                    checked = time.monotonic()
                    try:
                        status = await self.allowed(product.resource_id, follower.user)
                    except Exception:
                        status = 200  # the database is away; the next check decides
                    if status != 200:
                        return
                    writer.write(f": {dt.datetime.now(dt.timezone.utc).isoformat()}\n\n".encode("ascii"))
                    await writer.drain()
        finally:
            gone.cancel()

    async def run(self) -> None:
        server = await asyncio.start_server(self.handle, self.host, self.port, limit=16 * 1024, backlog=1024)
        background = [asyncio.create_task(self._listen()), asyncio.create_task(self._poll())]
        log.info("stream server on %s:%s", self.host, self.port)
        try:
            async with server:
                await server.serve_forever()
        finally:
            for task in background:
                task.cancel()
            self.readers.shutdown(wait=False, cancel_futures=True)
            self.checker.shutdown(wait=False, cancel_futures=True)


def serve(app, bind: str) -> None:
    """Run the stream server on ``bind`` (HOST:PORT) until stopped."""
    host, port = parse_bind(bind)
    store.ensure_history()
    try:
        asyncio.run(StreamServer(app, host, port).run())
    except KeyboardInterrupt:
        pass
