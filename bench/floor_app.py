"""The service benchmark's floor: bare Starlette endpoints on the uvicorn settings of ``lkps serve``.

``POST /mint`` only mints the agent token ``register`` mints (same minter, same claims) and answers the same
JSON shape; ``POST /constant`` answers a constant JSON body. Run: ``python -m bench.floor_app --port N``
with ``LIVEKIT_API_KEY``/``LIVEKIT_API_SECRET``/``LIVEKIT_URL`` set.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lkps.app import server_config
from lkps.speedups.tokens import PreparedTokenMinter

AGENT_APP_ID = "0f6a3c1e-7d7b-4a8e-9a59-1c2d3e4f5a6b"
TOKEN_TTL = 3600


def create_app(api_key: str, api_secret: str, livekit_url: str) -> Starlette:
    minter = PreparedTokenMinter(api_key, api_secret)
    constant = {"livekit_token": "x" * 300, "livekit_url": livekit_url, "expires_in": TOKEN_TTL}

    async def mint(request: Request) -> Response:
        identity = f"agent-{AGENT_APP_ID}-{uuid.uuid4()}"
        token = minter.agent_token(identity=identity, name=AGENT_APP_ID, now=int(time.time()), ttl=TOKEN_TTL)
        return JSONResponse({"livekit_token": token, "livekit_url": livekit_url, "expires_in": TOKEN_TTL})

    async def constant_body(request: Request) -> Response:
        return JSONResponse(constant)

    return Starlette(
        routes=[
            Route("/mint", mint, methods=["POST"]),
            Route("/constant", constant_body, methods=["POST"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--corked", action="store_true", help="serve on lkps's corked HTTP protocol instead of uvicorn's own"
    )
    args = parser.parse_args()
    app = create_app(
        os.environ["LIVEKIT_API_KEY"], os.environ["LIVEKIT_API_SECRET"], os.environ["LIVEKIT_URL"]
    )
    # lkps serve's uvicorn.Config, except that the floor issue 4 defines runs on uvicorn's own HTTP protocol;
    # with --corked on lkps's too (speedup http), so that the two differ only in what the endpoint does
    config = server_config(app, args.host, args.port, {"http"} if args.corked else ())
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
