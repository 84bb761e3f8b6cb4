"""Fuzz the codec and ``Endpoint.receive_datagram`` with millions of inputs while real transfers
run through the same server endpoint.

Inputs are random bytes and mutations of datagrams recorded from a real simulated transfer
(``tests/fuzzing.py``: bit flips, byte sets, truncation, extension, splices, interesting
32-bit values, type, flag and length changes, and half the time the live connection's id
put in, as a blind attacker who guessed it would). Each input goes to the codec's decoders
and to a listening endpoint that carries a live 2 MB transfer, from the live peer's address
or from a random one. Every ``--round`` inputs the live transfer is run to its end and must
arrive byte-exact, the endpoint's tables and queues are checked against their bounds, and a
new transfer starts.

Run from the repository root::

    .venv/bin/python bench/fuzz.py                       # 2,000,000 inputs, seeded
    .venv/bin/python bench/fuzz.py --inputs 200000 --seed 3
    .venv/bin/python bench/fuzz.py --engine atheris --inputs 1000000   # coverage-guided

The atheris engine (``pip install atheris``, or ``pip install -e '.[fuzz]'``) feeds the same
target from libFuzzer's coverage-guided mutations, seeded with the recorded corpus, and stops
after ``--inputs``; arguments after ``--`` go to libFuzzer. Exit status 0 when nothing
raised, every bound held and every live transfer arrived intact; 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fuzzing import LiveTransfer, corpus, random_input, type_names  # noqa: E402
from tests.wire.decoders import check_decoders  # noqa: E402

CHECK_EVERY = 1000  # inputs between bound checks
ADVANCE_EVERY = 50  # inputs between steps of the live transfer


class Campaign:
    """Feeds inputs, steps and checks the live transfer, rotates it every ``round`` inputs."""

    def __init__(self, *, round_size: int, seed: int) -> None:
        self.round_size = round_size
        self.seed = seed
        self.live = LiveTransfer(seed=seed)
        self.inputs = 0
        self.rounds = 0
        self.intact = 0
        self.kinds: collections.Counter[str] = collections.Counter()
        self.dropped: collections.Counter[str] = collections.Counter()
        self.blocks_start = sys.getallocatedblocks()
        self.blocks_max = self.blocks_start
        self.started = time.monotonic()
        self._names = type_names()

    def one(self, data: bytes, from_peer: bool) -> None:
        check_decoders(data)
        self.live.feed(data, from_peer=from_peer)
        self.inputs += 1
        self.kinds[self._names.get(data[0], "other") if data else "empty"] += 1
        if self.inputs % ADVANCE_EVERY == 0:
            self.live.advance(0.004)
        if self.inputs % CHECK_EVERY == 0:
            self.live.check()
            self.blocks_max = max(self.blocks_max, sys.getallocatedblocks())
        if self.inputs % self.round_size == 0:
            self.end_round()

    def end_round(self) -> None:
        live = self.live
        ok = live.finish()
        self.rounds += 1
        self.intact += ok
        self.dropped.update(live.server.endpoint.stats.dropped)
        for conn in live.server.endpoint.connections.values():
            self.dropped.update(conn.stats.dropped)
        if not ok:
            print(f"round {self.rounds}: the live transfer did NOT arrive intact", file=sys.stderr)
        self.live = LiveTransfer(seed=self.seed + self.rounds)

    def report(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        return {
            "inputs": self.inputs,
            "seconds": round(elapsed, 1),
            "inputs_per_s": round(self.inputs / elapsed) if elapsed else None,
            "rounds": self.rounds,
            "rounds_intact": self.intact,
            "input_types": dict(self.kinds.most_common()),
            "dropped": dict(self.dropped.most_common(20)),
            "allocated_blocks_start": self.blocks_start,
            "allocated_blocks_max": self.blocks_max,
        }


def run_random(args: argparse.Namespace) -> int:
    campaign = Campaign(round_size=args.round, seed=args.seed)
    pool = corpus()
    rng = random.Random(args.seed)
    for _ in range(args.inputs):
        data, from_peer = random_input(rng, pool, campaign.live.cid)
        campaign.one(data, from_peer)
    if campaign.inputs % args.round:
        campaign.end_round()
    report = campaign.report()
    print(json.dumps(report, indent=2))
    return 0 if report["rounds_intact"] == report["rounds"] else 1


def run_atheris(args: argparse.Namespace, libfuzzer_args: list[str]) -> int:
    try:
        import atheris
    except ImportError:
        print("atheris is not installed: pip install atheris", file=sys.stderr)
        return 2
    campaign = Campaign(round_size=args.round, seed=args.seed)
    seeds = Path(tempfile.mkdtemp(prefix="rudp-fuzz-corpus-"))
    for i, datagram in enumerate(corpus()):
        (seeds / f"{i:04d}").write_bytes(b"\x00" + datagram)

    def test_one_input(data: bytes) -> None:
        if not data:
            return
        # First byte: where the datagram comes from, and whether the live cid goes in.
        mode, datagram = data[0], data[1:]
        if mode & 2 and len(datagram) >= 8:
            datagram = datagram[:4] + campaign.live.cid.to_bytes(4, "big") + datagram[8:]
        campaign.one(datagram, bool(mode & 1))
        if campaign.inputs >= args.inputs:
            # libFuzzer ends the process without running atexit handlers: report here.
            campaign.end_round()
            report = campaign.report()
            print(json.dumps(report, indent=2), flush=True)
            os._exit(0 if report["rounds_intact"] == report["rounds"] else 1)

    atheris.instrument_all()
    atheris.Setup([sys.argv[0], *libfuzzer_args, str(seeds)], test_one_input)
    atheris.Fuzz()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    libfuzzer_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, libfuzzer_args = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=2_000_000)
    parser.add_argument("--round", type=int, default=100_000, help="inputs per live transfer")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--engine", choices=("random", "atheris"), default="random")
    args = parser.parse_args(argv)
    if args.engine == "atheris":
        return run_atheris(args, libfuzzer_args)
    return run_random(args)


if __name__ == "__main__":
    sys.exit(main())
