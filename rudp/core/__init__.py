"""The sans-I/O engine: pure state machines fed with datagrams, user calls and ``now``."""
