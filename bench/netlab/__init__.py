"""Links for the benchmarks: network namespaces joined by a veth pair (nftables loss, tbf rate)
or by a userspace WAN emulator between two TUN devices (delay, jitter, loss, bursts, reordering,
rate limit with a bounded drop-tail queue). ``model`` is the pure packet model, ``lab`` makes and
removes the namespaces, ``forwarder`` is the emulator process."""
