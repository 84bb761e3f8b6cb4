"""docs/benchmarks.md is generated from results files: tables, ratios and plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import report


def _stat(value: float, lo: float | None = None, hi: float | None = None) -> dict[str, float]:
    return {"median": value, "min": lo if lo is not None else value, "max": hi or value, "n": 3}


def _bulk_case(link: dict[str, object], goodputs: dict[str, float]) -> dict[str, object]:
    peers = {}
    for peer, good in goodputs.items():
        peers[peer] = {
            "peer": peer,
            "runs": [{}, {}, {}],
            "failures": [],
            "settings": {"transport": peer},
            "summary": {
                "goodput_mb_s": _stat(good, good * 0.9, good * 1.1),
                "bytes": _stat(64 * 2**20),
                "wall_s": _stat(64 * 2**20 / good / 1e6),
                "sender_cpu_s": _stat(1.0),
                "receiver_cpu_s": _stat(1.5),
                "retx_per_lost_byte": _stat(1.2),
                "queue_drops": _stat(100),
                "capped_runs": 0,
                "limited_runs": 1 if peer == "kcp:fast" else 0,
            },
        }
    return {"link": link, "peers": peers}


def test_build_writes_tables_ratios_and_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="plots need the 'bench' extra (matplotlib)")
    results = tmp_path / "results"
    results.mkdir()
    host = {
        "cpus": 2,
        "kernel": "6.18",
        "python": "3.11.7",
        "tcp_default_congestion_control": "bbr",
        "date_utc": "2026-12-03 10:00:00",
    }
    wan = [
        _bulk_case(
            {
                "kind": "wan",
                "name": f"wan-{loss}",
                "rtt_ms": 20.0,
                "loss_pct": loss,
                "rate_mbit": 100.0,
            },
            {
                "tcp:cubic": 10.0 / (1 + 10 * loss),
                "tcp:bbr": 11.0,
                "rudp:throughput": 9.9,
                "kcp:fast": 5.0,
            },
        )
        for loss in (0.0, 1.0, 5.0)
    ]
    (results / "bulk-wan.json").write_text(json.dumps({"host": host, "cases": wan, "elapsed_s": 9}))
    (results / "bulk-veth.json").write_text(json.dumps({"host": host, "skipped": "no root here"}))
    doc = tmp_path / "benchmarks.md"
    text = report.build(results, doc, tmp_path / "img")
    assert doc.read_text() == text
    assert "RTT 20 ms, 100 Mbit/s, 1-BDP queue" in text
    assert "| `rudp:throughput` | 9.90 (8.91-10.89) |" in text
    assert "0.99 / 0.90" in text  # rudp over CUBIC (10.0) and BBR (11.0) at 0 % loss
    assert "link-limited" in text
    assert "`bulk-veth`: skipped: no root here" in text
    assert "`latency`: not run" in text
    assert (tmp_path / "img" / "bench-goodput-vs-loss.png").stat().st_size > 1000


def test_headline_goes_between_the_readme_markers(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    wan = [
        _bulk_case(
            {"kind": "wan", "name": "w", "rtt_ms": rtt, "loss_pct": 1.0, "rate_mbit": 100.0},
            {"tcp:bbr": 11.0, "rudp:throughput": 9.5},
        )
        for rtt in (100.0, 20.0)
    ]
    wan[0]["peers"]["tcp:bbr"]["summary"]["capped_runs"] = 1  # type: ignore[index]
    host = {"date_utc": "2026-12-03 10:00:00"}
    (results / "bulk-wan.json").write_text(json.dumps({"host": host, "cases": wan}))
    table = report.headline(results)
    assert "| peer | 20 ms 1% | 100 ms 1% |" in table  # sorted by RTT
    assert "| `tcp:bbr` | 11.00 | 11.00* |" in table
    assert "run 2026-12-03 10:00:00 UTC" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nold\n{report.README_END}\nrest\n")
    assert report.update_readme(readme, table)
    assert readme.read_text() == f"intro\n{report.README_START}\n{table}{report.README_END}\nrest\n"
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n")
    assert not report.update_readme(plain, table)
    assert plain.read_text() == "no markers\n"


def test_the_readme_quotes_the_committed_results() -> None:
    """The README's headline table is what ``bench.report`` makes of ``bench/results``."""
    text = report.README.read_text(encoding="utf-8")
    start = text.index(report.README_START) + len(report.README_START) + 1
    end = text.index(report.README_END)
    assert text[start:end] == report.headline(report.RESULTS)
