"""A TCP proxy in front of PostgreSQL (or any TCP server: the broker, SMTP) that a test can cut
and restore, to play an outage.

Processes under test connect to the proxy's loopback port; it forwards to the real server
(a TCP address, or the Unix socket the embedded PostgreSQL listens on). `cut()` closes every
forwarded connection and refuses new ones until `restore()`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

from tests.system.topology import free_port


class DatabaseProxy:
    def __init__(self, settings_dict: Mapping[str, Any]) -> None:
        host = settings_dict.get("HOST") or "localhost"
        port = int(settings_dict.get("PORT") or 5432)
        self._unix_path = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else None
        self._tcp = None if self._unix_path else (host, port)
        self.port = free_port()
        self._open = True
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @classmethod
    def to(cls, host: str, port: int) -> DatabaseProxy:
        """A proxy to any TCP server, e.g. Redis or an SMTP sink."""
        return cls({"HOST": host, "PORT": port})

    def url(self, settings_dict: Mapping[str, Any], *, application_name: str) -> str:
        user = settings_dict.get("USER") or "postgres"
        password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
        return (f"postgres://{user}{password}@127.0.0.1:{self.port}/{settings_dict['NAME']}"
                f"?application_name={application_name}")

    def start(self) -> DatabaseProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def cut(self) -> None:
        self._open = False
        self._loop.call_soon_threadsafe(self._close_all)

    def restore(self) -> None:
        self._open = True

    def stop(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._accept, "127.0.0.1", self.port))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()

    def _close_all(self) -> None:
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _accept(self, client_reader, client_writer) -> None:
        if not self._open:
            client_writer.close()
            return
        if self._unix_path:
            server_reader, server_writer = await asyncio.open_unix_connection(self._unix_path)
        else:
            server_reader, server_writer = await asyncio.open_connection(*self._tcp)
        self._writers.update({client_writer, server_writer})
        await asyncio.gather(self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer))

    async def _pipe(self, reader, writer) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            self._writers.discard(writer)
