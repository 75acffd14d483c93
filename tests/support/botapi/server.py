"""The HTTP side: the aiohttp app on 127.0.0.1, routing to the method table, Telegram's envelopes.

`/bot<token>/<method>` answers ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code",
"description"[, "parameters": {"retry_after"}]}``; `/file/bot<token>/<path>` serves uploads
back. A bug in a handler is answered 500 and kept in `internal_errors` for the test to see.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from typing import Any

from aiohttp import web

from tests.support.botapi import (  # noqa: F401 (imported, each registers its methods)
    callbacks,
    chats,
    groups,
    messages,
    profile,
    updates,
)
from tests.support.botapi.calls import METHODS
from tests.support.botapi.checks import MAX_UPLOAD
from tests.support.botapi.errors import ApiError, bad
from tests.support.botapi.flood import FloodControl, Limits
from tests.support.botapi.world import ApiCall, World

__all__ = ["BotApiServer"]

logger = logging.getLogger(__name__)


class BotApiServer(World):
    """The server. `await start()` / `await stop()` or `async with BotApiServer() as server`."""

    _runner: web.AppRunner | None = None
    base_url = ""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_UPLOAD + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        logger.debug("loopback Bot API server on %s", self.base_url)

    async def stop(self) -> None:
        self.queue.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> BotApiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ configuration

    @property
    def limits(self) -> Limits:
        return self.flood.limits

    @limits.setter
    def limits(self, limits: Limits) -> None:
        """Replace the limits (buckets start full again; the random refusals are reseeded)."""
        self.flood = FloodControl(limits, self.clock)

    def configure(self, **changes: Any) -> Limits:
        """Change some limits, e.g. `server.configure(flood_fraction=0.3, per_chat_rate=50)`."""
        self.limits = replace(self.limits, **changes)
        return self.limits

    @property
    def too_many_requests(self) -> int:
        """How many 429s the server has returned."""
        return self.stats["429"]

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.Response:
        received_at = time.monotonic()
        method = request.match_info["method"]
        params: dict[str, Any] = {}
        status, description = 200, None
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            handler = METHODS.get(method.lower())
            if handler is None:
                raise ApiError(404, "Not Found")
            params = await self._read_params(request)
            params["_received_at"] = received_at
            result = await handler(self, params)
            body: dict[str, Any] = {"ok": True, "result": result}
        except ApiError as error:
            status, description = error.status, error.description
            body = {"ok": False, "error_code": error.status, "description": error.description}
            if error.retry_after is not None:
                body["parameters"] = {"retry_after": error.retry_after}
            if error.migrate_to_chat_id is not None:
                body["parameters"] = {"migrate_to_chat_id": error.migrate_to_chat_id}
        except Exception as error:  # a bug in this server: answer 500, keep it for the test
            logger.exception("loopback Bot API server failed on %s", method)
            self.internal_errors.append(f"{method}: {error!r}")
            status, description = 500, f"Internal Server Error: {error!r}"
            body = {"ok": False, "error_code": 500, "description": description}
        self.stats[method] += 1
        if status != 200:
            self.stats[str(status)] += 1
        if method.lower() != "getupdates":
            self.calls.append(
                ApiCall(
                    method,
                    {k: v for k, v in params.items() if isinstance(v, str)},
                    status,
                    description,
                    received_at,
                )
            )
        self.mark_changed()
        return web.json_response(body, status=status)

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method != "POST" or not request.can_read_body:
            return params
        if request.content_type == "application/json":
            try:
                data = await request.json()
            except ValueError as error:
                raise bad("can't parse JSON body") from error
            if not isinstance(data, dict):
                raise bad("JSON body must be an object")
            for key, value in data.items():
                params[key] = value if isinstance(value, str) else json.dumps(value)
            return params
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                params[key] = (value.filename, value.content_type, value.file.read())
            else:
                params[key] = str(value)
        return params

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            raise web.HTTPUnauthorized()
        path = request.match_info["path"]
        for stored in self.files.values():
            if stored.file_path == path:
                return web.Response(body=stored.data, content_type="application/octet-stream")
        raise web.HTTPNotFound()
