"""bench.suite's merge of a partial re-run into an earlier result file."""

from __future__ import annotations

from bench.suite import merge_records


def test_merge_replaces_rerun_peers_and_keeps_the_rest() -> None:
    old = {
        "host": {"date_utc": "then"},
        "plan": {"runs": 3},
        "cases": [
            {"link": {"name": "a"}, "peers": {"kcp:fast": {"v": 1}, "rudp:fair": {"v": 1}}},
            {"link": {"name": "b"}, "peers": {"kcp:fast": {"v": 1}}},
        ],
    }
    new = {
        "host": {"date_utc": "now"},
        "plan": {"runs": 3},
        "cases": [
            {"link": {"name": "a"}, "peers": {"rudp:fair": {"v": 2}}},
            {"link": {"name": "c"}, "peers": {"rudp:fair": {"v": 2}}},
        ],
    }
    merged = merge_records(old, new)
    assert [c["link"]["name"] for c in merged["cases"]] == ["a", "b", "c"]
    assert merged["cases"][0]["peers"] == {"kcp:fast": {"v": 1}, "rudp:fair": {"v": 2}}
    assert merged["cases"][1]["peers"] == {"kcp:fast": {"v": 1}}
    assert [h["host"]["date_utc"] for h in merged["merged_from"]] == ["then", "now"]
    assert merge_records({"skipped": "no root"}, new) == new


def test_merge_keeps_scale_cases_by_peer_and_size_and_profile_cases_by_link() -> None:
    old = {
        "cases": [
            {"peer": "tcp:cubic", "connections": 1000, "runs": [1]},
            {"peer": "rudp:fair", "connections": 1000, "runs": [1]},
            {"peer": "rudp:fair", "connections": 10000, "runs": [1]},
            {"link": "loopback", "sender": {"v": 1}},
        ]
    }
    new = {
        "cases": [
            {"peer": "rudp:fair", "connections": 10000, "runs": [2]},
            {"link": "loopback", "sender": {"v": 2}},
        ]
    }
    merged = merge_records(old, new)["cases"]
    assert [(c.get("peer"), c.get("connections"), c.get("runs")) for c in merged[:3]] == [
        ("tcp:cubic", 1000, [1]),
        ("rudp:fair", 1000, [1]),
        ("rudp:fair", 10000, [2]),
    ]
    assert merged[3] == {"link": "loopback", "sender": {"v": 2}}
    assert len(merged) == 4
