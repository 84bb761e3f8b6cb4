"""Sizes, durations, percents, addresses and impairment flags as a person types them."""

from __future__ import annotations

import io

import pytest

from rudp.cli import protocol
from rudp.cli.main import build_parser
from rudp.cli.options import config_from, impairment_from
from rudp.cli.progress import PlainProgress, RichProgress, make_progress
from rudp.cli.receiver import safe_name
from rudp.cli.units import format_bytes, format_rate, parse_duration, parse_percent, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [("0", 0), ("4096", 4096), ("500k", 500_000), ("32MiB", 32 * 2**20), ("1G", 10**9),
     ("1.5KiB", 1536), ("2 mib", 2 * 2**20)],
)  # fmt: skip
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "x", "-1", "1iB", "0.3B", "1 KiBs"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_durations_percents_and_formats() -> None:
    assert parse_duration("20", default_unit="ms") == pytest.approx(0.02)
    assert parse_duration("1.5s", default_unit="ms") == 1.5
    assert parse_duration("20ms", default_unit="s") == pytest.approx(0.02)
    assert parse_percent("5") == 0.05 and parse_percent("0.5%") == 0.005
    for bad in ("101", "-1", "nan", "five"):
        with pytest.raises(ValueError):
            parse_percent(bad)
    assert format_bytes(512) == "512 B" and format_bytes(32 * 2**20) == "32.0 MiB"
    assert format_rate(1_000_000) == "8.0 Mbit/s (977 KiB/s)"


def test_send_arguments_become_an_impairment_and_a_config() -> None:
    args = build_parser().parse_args(
        ["send", "a", "b", "[::1]:9", "--loss", "5", "--delay", "10", "--reorder", "1%",
         "--seed", "3", "--idle-timeout", "6"]
    )  # fmt: skip
    assert args.files == ["a", "b"] and args.address == ("::1", 9)
    impairment = impairment_from(args)
    assert impairment is not None
    assert (impairment.loss, impairment.delay, impairment.reorder, impairment.seed) == (
        0.05,
        pytest.approx(0.01),
        0.01,
        3,
    )
    config = config_from(args)
    assert config.idle_timeout == 6 and config.keepalive_idle == 2


def test_no_impairment_flags_mean_a_perfect_network() -> None:
    assert impairment_from(build_parser().parse_args(["send", "a", "h:1"])) is None


def test_listen_address_forms() -> None:
    parse = build_parser().parse_args
    assert parse(["recv", "--listen", ":0"]).listen == (None, 0)
    assert parse(["recv", "--listen", "0.0.0.0:7000"]).listen == ("0.0.0.0", 7000)


@pytest.mark.parametrize("name", ["", ".", "..", ".hidden", "a/b", "a\\b", "x\n", "é" * 300])
def test_unsafe_names(name: str) -> None:
    assert not safe_name(name)


def test_safe_names() -> None:
    assert safe_name("report 2024.pdf") and safe_name("données.bin")


def test_protocol_rejects_malformed_messages() -> None:
    with pytest.raises(protocol.ProtocolViolation):
        protocol.parse_header({"type": "file", "name": "a", "size": -1, "sha256": "0" * 64})
    with pytest.raises(protocol.ProtocolViolation):
        protocol.parse_header({"type": "file", "name": "a", "size": 1, "sha256": "xyz"})
    with pytest.raises(protocol.ProtocolViolation):
        protocol.parse_reply({"type": "result", "ok": False, "code": "?"}, expect=("result",))
    header = protocol.parse_header(protocol.file_header("a", 3, "a" * 64))
    assert header == protocol.FileHeader("a", 3, "a" * 64)


def test_plain_progress_prints_once_per_interval() -> None:
    now = [0.0]
    out = io.StringIO()
    progress = PlainProgress(out, interval=1.0, clock=lambda: now[0])
    progress.start_file("f", 2048, {"segments_retransmitted": 5})
    progress.update(512, {"srtt": 0.02, "segments_retransmitted": 6})
    assert out.getvalue() == ""
    now[0] = 1.0
    progress.update(1024, {"srtt": 0.02, "segments_retransmitted": 7})
    progress.finish_file()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0] == (
        "f: 1.0 KiB / 2.0 KiB (50 %), 1.0 KiB/s, ETA 1.0 s, RTT 20 ms, retransmitted 2"
    )


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_rich_bar_with_every_field() -> None:
    screen = Terminal()
    progress = make_progress(json=False, stream=screen)
    assert isinstance(progress, RichProgress)
    progress.start_file("f.bin", 2 * 2**20, {"segments_retransmitted": 5})
    progress.update(2**20, {"srtt": 0.02, "segments_retransmitted": 9})
    progress.finish_file()
    progress.close()
    shown = screen.getvalue()
    for text in ("f.bin", "1.0/2.0 MiB", "ETA", "RTT 20 ms", "retx 4"):
        assert text in shown, (text, shown)


def test_json_and_pipes_get_no_bar() -> None:
    assert not isinstance(make_progress(json=True, stream=Terminal()), RichProgress | PlainProgress)
    assert isinstance(make_progress(json=False, stream=io.StringIO()), PlainProgress)


COMMON = ["--loss", "5", "--delay", "10ms", "--jitter", "2", "--reorder", "1", "--duplicate",
          "0.5", "--seed", "4", "--profile", "throughput", "-vv", "--json"]  # fmt: skip


@pytest.mark.parametrize(
    "argv",
    [
        ["send", "a", "127.0.0.1:9"],
        ["recv", "--listen", ":0"],
        ["perf", "server", "--listen", ":0"],
        ["perf", "client", "127.0.0.1:9"],
        ["demo"],
    ],
    ids=["send", "recv", "perf-server", "perf-client", "demo"],
)
def test_every_command_takes_the_impairment_profile_log_and_json_options(argv: list[str]) -> None:
    args = build_parser().parse_args([*argv, *COMMON])
    impairment = impairment_from(args)
    assert impairment is not None
    assert (impairment.loss, impairment.jitter, impairment.reorder, impairment.duplicate) == (
        0.05,
        pytest.approx(0.002),
        0.01,
        0.005,
    )
    assert impairment.delay == pytest.approx(0.01) and impairment.seed == 4
    assert (args.profile, args.verbose, args.json) == ("throughput", 2, True)
    assert config_from(args).congestion_control == "bbr"
