"""Turn ``bench/results/*.json`` into ``docs/benchmarks.md`` (tables) and PNG plots.

``python -m bench.report [--results DIR] [--doc FILE] [--img DIR] [--readme FILE]``; ``make
bench`` runs it after ``bench.suite``. It also rewrites the README's headline table (the emulated
WAN link's goodput), the lines between :data:`README_START` and :data:`README_END`, so the README
quotes the same results files. Plots use matplotlib's Agg backend (no display): goodput against
loss per link and RTT, request/response latency percentiles, and the cost per connection. A
scenario whose file is missing or was skipped is listed as not run, with the reason.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["README_END", "README_START", "build", "headline", "main", "update_readme"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
IMG = ROOT / "docs" / "img"
README = ROOT / "README.md"
README_START = "<!-- bench.report: emulated WAN goodput -->"
README_END = "<!-- /bench.report -->"
ORDER = ("bulk-loopback", "bulk-veth", "bulk-wan", "share", "latency", "scale", "profile")


def _load(results: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for name in ORDER:
        path = results / f"{name}.json"
        if path.exists():
            out[name] = json.loads(path.read_text())
    return out


def _m(stat: dict[str, float] | None, spec: str = ".2f") -> str:
    return "-" if not stat else f"{stat['median']:{spec}}"


def _mr(stat: dict[str, float] | None, spec: str = ".2f") -> str:
    if not stat:
        return "-"
    if stat.get("n", 1) == 1 or stat["min"] == stat["max"]:
        return f"{stat['median']:{spec}}"
    return f"{stat['median']:{spec}} ({stat['min']:{spec}}-{stat['max']:{spec}})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def _ratio(a: dict[str, float] | None, b: dict[str, float] | None) -> str:
    if not a or not b or not b.get("median"):
        return "-"
    return f"{a['median'] / b['median']:.2f}"


def _peer_order(cases: list[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for case in cases:
        for peer in case["peers"]:
            if peer not in seen:
                seen.append(peer)
    return seen


def _bulk_notes(summary: dict[str, Any], failures: list[str]) -> str:
    notes = []
    if summary.get("capped_runs"):
        notes.append("capped")
    if summary.get("limited_runs"):
        notes.append("link-limited")
    if failures:
        notes.append(f"{len(failures)} failed")
    return f" [{', '.join(notes)}]" if notes else ""


def _run_dates(record: dict[str, Any]) -> list[str]:
    """When the runs a results file holds took place (UTC), oldest first, each once: the
    runs merged into it, else its own."""
    dates = [r.get("host", {}).get("date_utc", "?") for r in record.get("merged_from", [])]
    return list(dict.fromkeys(dates or [record.get("host", {}).get("date_utc", "?")]))


def _goodput_rows(
    cases: list[dict[str, Any]], cell: Callable[[dict[str, Any]], str]
) -> list[list[str]]:
    """A row per peer, a ``cell`` per case ("-" where the peer did not run)."""
    rows = []
    for peer in _peer_order(cases):
        row = [f"`{peer}`"]
        for case in cases:
            pc = case["peers"].get(peer)
            row.append(cell(pc) if pc else "-")
        rows.append(row)
    return rows


def _bulk_section(title: str, record: dict[str, Any], groups: list[tuple[str, Any]]) -> list[str]:
    """A goodput matrix (peers x links), the ratio to kernel CUBIC and BBR, and details."""
    out = [f"### {title}", ""]
    for label, cases in groups:
        if not cases:
            continue
        peer_names = _peer_order(cases)
        header = ["peer", *[f"{_short(c['link'])}" for c in cases]]
        rows = _goodput_rows(
            cases,
            lambda pc: (
                _mr(pc["summary"].get("goodput_mb_s"))
                + _bulk_notes(pc["summary"], pc.get("failures", []))
            ),
        )
        if label:
            out.append(f"**{label}**: goodput in MB/s (10^6 B/s), median (min-max) of the runs")
        else:
            out.append("Goodput in MB/s (10^6 B/s), median (min-max) of the runs")
        out.append("")
        out += _table(header, rows)
        ratio_rows = []
        for peer in peer_names:
            row = [f"`{peer}`"]
            for case in cases:
                pc = case["peers"].get(peer, {}).get("summary", {}).get("goodput_mb_s")
                cubic = case["peers"].get("tcp:cubic", {}).get("summary", {}).get("goodput_mb_s")
                bbr = case["peers"].get("tcp:bbr", {}).get("summary", {}).get("goodput_mb_s")
                row.append(f"{_ratio(pc, cubic)} / {_ratio(pc, bbr)}")
            ratio_rows.append(row)
        out.append("Ratio of median goodput to kernel TCP CUBIC / BBR on the same link:")
        out.append("")
        out += _table(header, ratio_rows)
        detail_rows = []
        for case in cases:
            for peer in peer_names:
                pc = case["peers"].get(peer)
                if not pc:
                    continue
                s = pc["summary"]
                detail_rows.append(
                    [
                        _short(case["link"]),
                        f"`{peer}`",
                        _m(s.get("bytes"), ".0f"),
                        _m(s.get("wall_s")),
                        _m(s.get("sender_cpu_s")),
                        _m(s.get("receiver_cpu_s")),
                        _m(s.get("retx_per_lost_byte")),
                        _m(s.get("queue_drops"), ".0f"),
                        _m(s.get("forwarder_cpu_share")),
                        f"{len(pc['runs'])}/{len(pc['runs']) + len(pc.get('failures', []))}",
                    ]
                )
        out.append("<details><summary>Per case: bytes moved, time, CPU, retransmissions</summary>")
        out.append("")
        out += _table(
            [
                "link",
                "peer",
                "bytes",
                "wall s",
                "snd CPU s",
                "rcv CPU s",
                "retx B / lost B",
                "queue drops",
                "forwarder CPU",
                "runs ok",
            ],
            detail_rows,
        )
        out += ["</details>", ""]
    out.append(f"Elapsed: {record.get('elapsed_s', 0):.0f} s.")
    out.append("")
    return out


def _short(link: dict[str, Any]) -> str:
    kind = link["kind"]
    if kind == "loopback":
        return "loopback"
    if kind == "veth":
        return f"veth {link['loss_pct']:g}%"
    return f"{link['rtt_ms']:g} ms {link['loss_pct']:g}%"


def _wan_groups(record: dict[str, Any]) -> list[tuple[str, Any]]:
    by_rtt: dict[float, list[dict[str, Any]]] = {}
    for case in record.get("cases", []):
        by_rtt.setdefault(case["link"]["rtt_ms"], []).append(case)
    return [
        (f"RTT {rtt:g} ms, {cases[0]['link']['rate_mbit']:g} Mbit/s, 1-BDP queue", cases)
        for rtt, cases in sorted(by_rtt.items())
    ]


def _plot_goodput(records: dict[str, dict[str, Any]], img: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: list[tuple[str, list[dict[str, Any]]]] = []
    if "bulk-veth" in records and records["bulk-veth"].get("cases"):
        groups.append(("veth, no added delay", records["bulk-veth"]["cases"]))
    if "bulk-wan" in records:
        for label, cases in _wan_groups(records["bulk-wan"]):
            groups.append((label, cases))
    if not groups:
        return []
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4.5), squeeze=False)
    for ax, (label, cases) in zip(axes[0], groups, strict=True):
        for peer in _peer_order(cases):
            xs, ys, lo, hi = [], [], [], []
            for case in cases:
                s = case["peers"].get(peer, {}).get("summary", {}).get("goodput_mb_s")
                if s:
                    xs.append(case["link"]["loss_pct"])
                    ys.append(s["median"])
                    lo.append(s["median"] - s["min"])
                    hi.append(s["max"] - s["median"])
            if xs:
                style = "-" if peer.startswith("rudp") else "--"
                ax.errorbar(xs, ys, yerr=[lo, hi], label=peer, linestyle=style, marker="o", ms=3)
        ax.set_title(label)
        ax.set_xlabel("random loss each way (%)")
        ax.set_ylabel("goodput (MB/s)")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = img / "bench-goodput-vs-loss.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [f"![goodput against loss](img/{path.name})", ""]


def _plot_latency(record: dict[str, Any], img: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = record.get("cases", [])
    if not cases:
        return []
    fig, axes = plt.subplots(1, len(cases), figsize=(5 * len(cases), 4.2), squeeze=False)
    for ax, case in zip(axes[0], cases, strict=True):
        names = list(case["peers"])
        for i, key in enumerate(("p50", "p99", "max")):
            values = [
                (case["peers"][p]["summary"].get(key) or {}).get("median", 0.0) for p in names
            ]
            ax.bar([x + 0.27 * (i - 1) for x in range(len(names))], values, 0.27, label=key)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=45, ha="right", fontsize=7)
        ax.set_title(f"RTT {case['link']['rtt_ms']:g} ms, loss {case['link']['loss_pct']:g}%")
        ax.set_ylabel("round-trip time (ms)")
        ax.set_yscale("log")
        ax.grid(True, axis="y", which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path = img / "bench-latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [f"![request/response latency](img/{path.name})", ""]


def _plot_scale(record: dict[str, Any], img: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = [c for c in record.get("cases", []) if c["summary"].get("cpu_us_per_connection_s")]
    if not cases:
        return []
    labels = [f"{c['peer']}\nx{c['connections']}" for c in cases]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.bar(labels, [c["summary"]["cpu_us_per_connection_s"]["median"] for c in cases])
    a.set_ylabel("server CPU us per second per connection")
    b.bar(labels, [c["summary"]["rss_per_connection_bytes"]["median"] / 1024 for c in cases])
    b.set_ylabel("server RSS per connection (KiB)")
    for ax in (a, b):
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    path = img / "bench-per-connection.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [f"![cost per connection](img/{path.name})", ""]


def _latency_section(record: dict[str, Any]) -> list[str]:
    out = [
        "### Request/response latency",
        "",
        f"{record.get('size', 1024)} B request, {record.get('size', 1024)} B reply, one at a "
        f"time, {record.get('rounds')} rounds per run (after 20 warm-up rounds); round-trip "
        "times in ms, median (min-max) over the runs of each run's percentile.",
        "",
    ]
    for case in record.get("cases", []):
        out.append(f"**{_short(case['link'])} loss each way**")
        out.append("")
        base = case["peers"].get("tcp:cubic", {}).get("summary", {}).get("p99")
        rows = []
        for peer, pc in case["peers"].items():
            s = pc["summary"]
            notes = []
            if s.get("limited_runs"):
                notes.append("link-limited")
            if pc.get("failures"):
                notes.append(f"{len(pc['failures'])} failed")
            rows.append(
                [
                    f"`{peer}`",
                    _mr(s.get("p50"), ".1f"),
                    _mr(s.get("p99"), ".1f"),
                    _mr(s.get("max"), ".1f"),
                    _m(s.get("mean"), ".1f"),
                    _ratio(s.get("p99"), base),
                    _m(s.get("client_cpu_s")),
                    ", ".join(notes),
                ]
            )
        out += _table(
            ["peer", "p50", "p99", "max", "mean", "p99 / CUBIC", "client CPU s", "notes"], rows
        )
    return out


def _scale_section(record: dict[str, Any]) -> list[str]:
    out = [
        "### Many connections",
        "",
        "One server process; N client connections (at most 1,000 per client process, 100 "
        "handshakes in flight per process) on 127.0.0.1, each sending a 64 B message every "
        f"second. CPU share is the server's CPU over a {record.get('steady_s', 10):g} s steady "
        "window once all N are connected (1.0 = one core); RSS per connection is the server's "
        "resident memory with all N open minus before, over N. Handshakes/s is N over the time "
        "from the server's first accept to its N-th, so it includes the clients' own speed. "
        "The clients run on the same host: msg/s received below N means the server fell "
        "behind and the kernel dropped datagrams at its socket (`kernel_drops` in the JSON).",
        "",
    ]
    rows = []
    tcp = {
        c["connections"]: c["summary"] for c in record.get("cases", []) if c["peer"] == "tcp:cubic"
    }
    for c in record.get("cases", []):
        s = c["summary"]
        base = tcp.get(c["connections"], {})
        rows.append(
            [
                f"`{c['peer']}`",
                f"{c['connections']:,}"
                + (
                    f" ({s['accepted']['median']:,.0f} connected)"
                    if s.get("accepted") and s["accepted"]["median"] < c["connections"]
                    else ""
                ),
                _mr(s.get("handshakes_per_s"), ".0f"),
                _mr(s.get("cpu_share"), ".3f"),
                _m(s.get("cpu_us_per_connection_s"), ".1f"),
                _ratio(s.get("cpu_share"), base.get("cpu_share")),
                _m({"median": s["rss_per_connection_bytes"]["median"] / 1024}, ".1f")
                if s.get("rss_per_connection_bytes")
                else "-",
                _m(s.get("messages_per_s"), ".0f"),
                f"{len(c['runs'])}/{len(c['runs']) + len(c.get('failures', []))}",
            ]
        )
    out += _table(
        [
            "peer",
            "connections",
            "handshakes/s",
            "server CPU share",
            "CPU us/s per conn",
            "CPU / TCP",
            "RSS KiB/conn",
            "msg/s received",
            "runs ok",
        ],
        rows,
    )
    return out


def _share_section(record: dict[str, Any]) -> list[str]:
    out = [
        "### Two flows on one link",
        "",
        "Both flows start together and send for the same time on the emulated 100 Mbit/s link "
        "(no random loss, 1-BDP queue); each flow's goodput and share of the two, median "
        "(min-max) over the runs.",
        "",
    ]
    rows = []
    for case in record.get("cases", []):
        for peer, s in case["summary"].items():
            rows.append(
                [
                    _short(case["link"]),
                    f"`{peer}`",
                    _mr(s.get("goodput_mb_s")),
                    _mr(s.get("share")),
                ]
            )
    out += _table(["link", "peer", "MB/s", "share"], rows)
    return out


def _profile_section(record: dict[str, Any]) -> list[str]:
    out = [
        "### Where rudp's CPU goes",
        "",
        "cProfile of the `rudp:throughput` sender and receiver children (the profiler roughly "
        "doubles their CPU; goodput under it is lower than in the tables), top functions by "
        "own time:",
        "",
    ]
    for case in record.get("cases", []):
        out.append(
            f"**{case['link']}**: {case['goodput_mb_s']:.1f} MB/s under the profiler, CPU sender "
            f"{case['sender_cpu_s']:.2f} s, receiver {case['receiver_cpu_s']:.2f} s over "
            f"{case['wall_s']:.2f} s"
        )
        out.append("")
        for role in ("sender", "receiver"):
            data = case.get(role)
            if not data:
                continue
            rows = [
                [
                    f"{100 * r['tottime'] / data['profiled_s']:.1f}%",
                    f"{r['ncalls']}",
                    f"`{r['function']}`",
                ]
                for r in data["top"][:8]
            ]
            out.append(f"{role} ({data['profiled_s']:.2f} s profiled):")
            out.append("")
            out += _table(["own time", "calls", "function"], rows)
    return out


def _settings_section(records: dict[str, dict[str, Any]]) -> list[str]:
    """Each peer's settings as its newest run recorded them (a profile's values change)."""
    settings: dict[str, Any] = {}
    for record in sorted(records.values(), key=lambda r: max(_run_dates(r))):
        for case in record.get("cases", []):
            for peer, pc in (case.get("peers") or {}).items():
                if isinstance(pc, dict) and "settings" in pc:
                    settings[peer] = pc["settings"]
    if not settings:
        return []
    out = ["### Peer settings", ""]
    for peer, value in settings.items():
        out.append(f"- `{peer}`: `{json.dumps(value, default=str)}`")
    return [*out, ""]


INTRO = """# Benchmarks

Generated by `make bench` (`python -m bench.suite`, then `python -m bench.report`) from
`bench/results/*.json`; do not edit by hand. Every peer crosses the same link, each side in its
own process; medians of the runs with min-max, CPU seconds per side, ratios to kernel TCP. A
scenario re-run for some peers keeps the others' earlier figures: the dates below say which
runs a file holds. How each link and peer is built: `bench/README.md`.

Links:

- **loopback**: 127.0.0.1.
- **veth**: two network namespaces joined by a veth pair (MTU 1500, segmentation offload off so
  every packet is a wire packet), random loss from an nftables `numgen random` rule on arrival in
  each namespace: the same share of TCP and UDP packets each way. No added delay.
- **emulated WAN**: two namespaces joined by TUN devices and a userspace forwarder
  (`bench/netlab/forwarder.py`): 100 Mbit/s bottleneck each way with a drop-tail queue of one
  bandwidth-delay product, half the RTT as one-way delay each way, random loss each way after
  the bottleneck. A run in which the forwarder may have limited the result (CPU above 85 %, more
  than 1 % of packets more than 1 ms late, or packets the kernel dropped before the forwarder
  read them) is marked *link-limited*.

Bulk transfers move 64 MiB, or stop writing after a time cap (its rows say *capped*): goodput is
then the bytes moved over the time until the receiver saw the end of the stream. **retx B / lost
B** is what the sender retransmitted per byte the link dropped in the data direction (1.0: each
lost byte resent once; more is spurious or repeated retransmission; KCP's figure is its PUSH
payload sent beyond what the application queued). **queue drops** are packets the bottleneck
queue dropped in the data direction: congestion the sender caused itself.
"""


def headline(results: Path) -> str:
    """The README's table: median goodput on the emulated WAN link, peers x RTT and loss."""
    record = _load(results).get("bulk-wan")
    if not record or not record.get("cases"):
        return "(no emulated-link results: run `make bench`)\n"
    cases = sorted(record["cases"], key=lambda c: (c["link"]["rtt_ms"], c["link"]["loss_pct"]))
    rows = _goodput_rows(
        cases,
        lambda pc: (
            _m(pc["summary"].get("goodput_mb_s"))
            + ("*" if pc["summary"].get("capped_runs") else "")
        ),
    )
    date = record.get("host", {}).get("date_utc", "?")
    earlier = [d for d in _run_dates(record) if d != date]
    merged = (
        f"; peers not re-run then come from the runs of {', '.join(earlier)} UTC" if earlier else ""
    )
    lines = _table(["peer", *[_short(c["link"]) for c in cases]], rows)
    lines.append(
        f"\\* at least one run hit the time cap (moved less than 64 MiB). From "
        f"`bench/results/bulk-wan.json` (run {date} UTC{merged}) by `python -m bench.report`."
    )
    return "\n".join(lines) + "\n"


def update_readme(readme: Path, table: str) -> bool:
    """Put ``table`` between the README's markers; False (file untouched) without them."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    new = text[: start + len(README_START)] + "\n" + table + text[end:]
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return True


def build(results: Path, doc: Path, img: Path) -> str:
    records = _load(results)
    img.mkdir(parents=True, exist_ok=True)
    lines = [INTRO]
    host = next((r["host"] for r in records.values() if "host" in r), None)
    if host:
        lines.append(
            f"Host: {host['cpus']} CPUs, Linux {host['kernel']}, Python {host['python']}, default "
            f"TCP congestion control `{host['tcp_default_congestion_control']}` (every TCP "
            "socket here sets its own with `TCP_CONGESTION`)."
        )
        lines.append("")
        lines.append("When each scenario ran (UTC; re-runs of some peers are merged in):")
        lines.append("")
        for name, record in records.items():
            lines.append(f"- `{name}`: {', '.join(_run_dates(record))}")
        lines.append("")
    not_run = []
    for name in ORDER:
        record = records.get(name)
        if record is None:
            not_run.append(f"- `{name}`: not run (no `{name}.json` in the results)")
        elif "skipped" in record:
            not_run.append(f"- `{name}`: skipped: {record['skipped']}")
        elif "failed" in record:
            not_run.append(f"- `{name}`: failed: {record['failed']}")
    if not_run:
        lines += ["Scenarios missing from these results:", "", *not_run, ""]
    lines += ["## Results", ""]
    plots = _plot_goodput(records, img)
    if "bulk-loopback" in records and records["bulk-loopback"].get("cases"):
        rec = records["bulk-loopback"]
        lines += _bulk_section("Bulk goodput, loopback", rec, [("", rec["cases"])])
    if "bulk-veth" in records and records["bulk-veth"].get("cases"):
        rec = records["bulk-veth"]
        lines += _bulk_section("Bulk goodput, veth with random loss", rec, [("", rec["cases"])])
    if "bulk-wan" in records and records["bulk-wan"].get("cases"):
        rec = records["bulk-wan"]
        lines += _bulk_section("Bulk goodput, emulated WAN link", rec, _wan_groups(rec))
    lines += plots
    if "share" in records and records["share"].get("cases"):
        lines += _share_section(records["share"])
    if "latency" in records and records["latency"].get("cases"):
        lines += _latency_section(records["latency"])
        lines += _plot_latency(records["latency"], img)
    if "scale" in records and records["scale"].get("cases"):
        lines += _scale_section(records["scale"])
        lines += _plot_scale(records["scale"], img)
    if "profile" in records and records["profile"].get("cases"):
        lines += _profile_section(records["profile"])
    lines += _settings_section(records)
    text = "\n".join(lines).rstrip() + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text, encoding="utf-8")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--doc", default=str(DOC))
    parser.add_argument("--img", default=str(IMG))
    parser.add_argument("--readme", default=str(README), help="'' leaves the README alone")
    args = parser.parse_args(argv)
    build(Path(args.results), Path(args.doc), Path(args.img))
    print(f"wrote {args.doc} and plots in {args.img}")
    if args.readme:
        if update_readme(Path(args.readme), headline(Path(args.results))):
            print(f"updated the headline table in {args.readme}")
        else:
            print(f"{args.readme} has no {README_START} marker: left alone")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
