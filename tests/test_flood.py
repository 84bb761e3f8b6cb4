"""An INIT flood from another process, from sources spread across 127.0.0.0/8, while real
clients connect and transfer: the server keeps no state per INIT and the clients get in.

The flood runs for FLOOD_SECONDS as fast as the flooding process can send (a pool of 256
sockets bound to random 127.x.y.z addresses and ports, one replaced every 64 datagrams, each
INIT with random ids). The server runs on this test's event loop, so its tables can be read
directly; the flooder and 200 real echo clients are subprocesses. The figures are printed
(``pytest -s``); ``bench/flood.py`` runs the same scenario with more options.
"""

from __future__ import annotations

import json
import sys

import pytest

from rudp import Config
from tests.flood_scenario import run_flood

FLOOD_SECONDS = 10.0
CLIENTS = 200  # 20 per second during the flood: 99 % allows 2 failures
PREFIXES = 1024  # a small limiter table, so that it is full early and its growth is over


@pytest.mark.skipif(sys.platform != "linux", reason="binding 127.x.y.z needs Linux loopback")
async def test_init_flood_from_spread_sources_leaves_no_state_and_real_clients_get_in() -> None:
    config = Config(stateless_reply_prefixes=PREFIXES)
    result = await run_flood(config, seconds=FLOOD_SECONDS, clients=CLIENTS)
    real = result.clients
    assert real is not None
    print("\nINIT flood:", json.dumps(result.summary()))
    # The real clients: at least 99 % of the handshakes, and every transfer byte-exact.
    assert real["connected"] >= 0.99 * CLIENTS, real
    assert real["intact"] == real["connected"], real
    # No state per INIT: every connection came from a real client's echo ...
    assert result.final_stats["echoes_accepted"] == real["connected"]
    assert result.inits >= 50_000  # (a flood, even on a loaded machine)
    assert max(s["connections"] for s in result.samples) <= 16 + 8  # concurrency + lingering
    assert all(s["prefixes"] <= PREFIXES for s in result.samples)
    # ... and once the limiter's table is full, memory stays flat while INITs keep coming.
    full = next(s for s in result.samples if s["prefixes"] == PREFIXES)
    last = result.samples[-1]
    assert last["inits"] - full["inits"] >= 20_000, (full, last)
    assert last["blocks"] - full["blocks"] < 2_000, (full, last)
    assert last["rss"] - full["rss"] < 8 * 1024 * 1024, (full, last)
    # A server connection outlives the clients only waiting for the ACK of its FIN (the
    # flood's kernel drops took it and the client process is gone), never with data unsent.
    assert set(result.lingering) <= {"LAST_ACK"}, result.lingering
    # Before validation the flood drew at most 3x its bytes (80-byte COOKIEs, 28-byte INITs).
    assert result.amplification <= 3.0
