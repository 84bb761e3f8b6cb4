"""Many runs of a case, and their summaries: what ``bench.wan`` and ``bench.suite`` share.

A *case* is one peer on one link; it runs ``runs`` times (each in fresh processes, and on the
WAN link with a fresh forwarder) and is summarised by medians with min and max. Runs of the peers
of one link are interleaved (peer A run 1, peer B run 1, ..., peer A run 2...), so a noisy moment
on the shared host hits every peer instead of one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from bench import peers
from bench.runner import BenchError, LinkSession, LinkSpec, bulk_run, rr_run, summarize

__all__ = [
    "bulk_cases",
    "bulk_summary",
    "format_bulk_table",
    "format_rr_table",
    "rr_cases",
    "rr_summary",
]


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _interleaved(
    session: LinkSession,
    link: LinkSpec,
    peer_names: Sequence[str],
    runs: int,
    one: Callable[[str, int], dict[str, Any]],
    describe: Callable[[dict[str, Any]], str],
) -> dict[str, dict[str, Any]]:
    session.use(link)
    out: dict[str, dict[str, Any]] = {
        p: {"peer": p, "link": link.as_dict(), "runs": [], "failures": []} for p in peer_names
    }
    for i in range(runs):
        for peer in peer_names:
            label = f"{link.name} {peer} run {i + 1}/{runs}"
            try:
                result = one(peer, i)
            except BenchError as exc:
                out[peer]["failures"].append(str(exc))
                _log(f"{label}: FAILED: {str(exc).splitlines()[0]}")
                continue
            out[peer]["runs"].append(result)
            _log(f"{label}: {describe(result)}")
    return out


def bulk_summary(case: dict[str, Any]) -> dict[str, Any]:
    runs = case["runs"]

    def pick(name: str) -> dict[str, float] | None:
        return summarize([r.get(name) for r in runs])

    return {
        "goodput_mb_s": pick("goodput_mb_s"),
        "wall_s": pick("wall_s"),
        "bytes": pick("bytes"),
        "sender_cpu_s": pick("sender_cpu_s"),
        "receiver_cpu_s": pick("receiver_cpu_s"),
        "retx_per_lost_byte": pick("retx_per_lost_byte"),
        "queue_drops": pick("queue_drops"),
        "capped_runs": sum(1 for r in runs if r.get("capped")),
        "limited_runs": sum(1 for r in runs if r.get("link_limited")),
        "forwarder_cpu_share": summarize([r.get("link_stats", {}).get("cpu_share") for r in runs]),
    }


def _describe_bulk(r: dict[str, Any]) -> str:
    text = (
        f"{r['goodput_mb_s']:.2f} MB/s, {r['bytes'] / 2**20:.1f} MiB in {r['wall_s']:.2f} s, "
        f"CPU snd {r['sender_cpu_s']:.2f} s rcv {r['receiver_cpu_s']:.2f} s"
    )
    if r.get("capped"):
        text += " (time cap)"
    if r.get("queue_drops") is not None:
        text += f", queue drops {r['queue_drops']}"
    if r.get("retx_per_lost_byte") is not None:
        text += f", retx/lost {r['retx_per_lost_byte']:.2f}"
    if r.get("link_limited"):
        text += f", LINK LIMITED: {'; '.join(r['link_limited'])}"
    return text


def bulk_cases(
    session: LinkSession,
    link: LinkSpec,
    peer_names: Sequence[str],
    *,
    runs: int,
    total: int,
    max_seconds: float,
    loop: str = "uvloop",
    profile_dir: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Every peer on ``link``, ``runs`` times each; per peer its runs and summary."""

    def one(peer: str, i: int) -> dict[str, Any]:
        return bulk_run(
            session, peer, total, max_seconds, loop=loop, profile_dir=profile_dir, tag=f"-{i}"
        )

    out = _interleaved(session, link, peer_names, runs, one, _describe_bulk)
    for case in out.values():
        case["summary"] = bulk_summary(case)
        case["settings"] = peers.settings(peers.parse_peer(case["peer"]))
    return out


def rr_summary(case: dict[str, Any]) -> dict[str, Any]:
    runs = case["runs"]
    keys = ("p50", "p90", "p99", "p99.9", "max", "mean")
    out: dict[str, Any] = {k: summarize([r["summary"].get(k) for r in runs]) for k in keys}
    out["client_cpu_s"] = summarize([r["client_cpu_s"] for r in runs])
    out["server_cpu_s"] = summarize([r["server_cpu_s"] for r in runs])
    out["limited_runs"] = sum(1 for r in runs if r.get("link_limited"))
    return out


def rr_cases(
    session: LinkSession,
    link: LinkSpec,
    peer_names: Sequence[str],
    *,
    runs: int,
    rounds: int,
    size: int,
    loop: str = "uvloop",
) -> dict[str, dict[str, Any]]:
    def one(peer: str, i: int) -> dict[str, Any]:
        return rr_run(session, peer, rounds, size, loop=loop)

    def describe(r: dict[str, Any]) -> str:
        s = r["summary"]
        text = f"p50 {s['p50']:.1f} ms, p99 {s['p99']:.1f} ms, max {s['max']:.1f} ms"
        if r.get("link_limited"):
            text += f", LINK LIMITED: {'; '.join(r['link_limited'])}"
        return text

    out = _interleaved(session, link, peer_names, runs, one, describe)
    for case in out.values():
        case["summary"] = rr_summary(case)
        case["settings"] = peers.settings(peers.parse_peer(case["peer"]))
    return out


# --- text tables --------------------------------------------------------------------------------


def _m(stat: dict[str, float] | None, spec: str = ".2f") -> str:
    return "-" if not stat else f"{stat['median']:{spec}}"


def _range(stat: dict[str, float] | None, spec: str = ".2f") -> str:
    return "-" if not stat else f"{stat['min']:{spec}}-{stat['max']:{spec}}"


def _ratio(value: dict[str, float] | None, base: dict[str, float] | None) -> str:
    if not value or not base or not base["median"]:
        return "-"
    return f"{value['median'] / base['median']:.2f}"


def bulk_rows(cases: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Rows: peer, MB/s median, min-max, ratio to tcp:cubic and tcp:bbr, CPU s per side,
    retransmitted bytes per lost byte, queue drops, notes."""
    base_cubic = cases.get("tcp:cubic", {}).get("summary", {}).get("goodput_mb_s")
    base_bbr = cases.get("tcp:bbr", {}).get("summary", {}).get("goodput_mb_s")
    rows = []
    for peer, case in cases.items():
        s = case.get("summary", {})
        good = s.get("goodput_mb_s")
        notes = []
        if s.get("capped_runs"):
            notes.append(f"{s['capped_runs']} time-capped ({_m(s.get('bytes'), '.0f')} B)")
        if s.get("limited_runs"):
            notes.append(f"{s['limited_runs']} link-limited")
        if case.get("failures"):
            notes.append(f"{len(case['failures'])} failed")
        rows.append(
            [
                peer,
                _m(good),
                _range(good),
                _ratio(good, base_cubic),
                _ratio(good, base_bbr),
                _m(s.get("sender_cpu_s")),
                _m(s.get("receiver_cpu_s")),
                _m(s.get("retx_per_lost_byte")),
                _m(s.get("queue_drops"), ".0f"),
                "; ".join(notes),
            ]
        )
    return rows


BULK_HEADER = [
    "peer",
    "MB/s",
    "min-max",
    "/cubic",
    "/bbr",
    "snd CPU s",
    "rcv CPU s",
    "retx/lost B",
    "queue drops",
    "notes",
]


def rr_rows(cases: dict[str, dict[str, Any]]) -> list[list[str]]:
    base = cases.get("tcp:cubic", {}).get("summary", {}).get("p99")
    rows = []
    for peer, case in cases.items():
        s = case.get("summary", {})
        notes = []
        if s.get("limited_runs"):
            notes.append(f"{s['limited_runs']} link-limited")
        if case.get("failures"):
            notes.append(f"{len(case['failures'])} failed")
        rows.append(
            [
                peer,
                _m(s.get("p50"), ".1f"),
                _m(s.get("p99"), ".1f"),
                _range(s.get("p99"), ".1f"),
                _m(s.get("max"), ".1f"),
                _m(s.get("mean"), ".1f"),
                _ratio(s.get("p99"), base),
                _m(s.get("client_cpu_s")),
                "; ".join(notes),
            ]
        )
    return rows


RR_HEADER = [
    "peer",
    "p50 ms",
    "p99 ms",
    "p99 min-max",
    "max ms",
    "mean ms",
    "p99 /cubic",
    "client CPU s",
    "notes",
]


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def format_bulk_table(cases: dict[str, dict[str, Any]]) -> str:
    return text_table(BULK_HEADER, bulk_rows(cases))


def format_rr_table(cases: dict[str, dict[str, Any]]) -> str:
    return text_table(RR_HEADER, rr_rows(cases))
