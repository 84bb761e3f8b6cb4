"""Open a TUN device that lives in another network namespace.

The WAN forwarder is one process holding one TUN device in each of two namespaces. A TUN file
descriptor stays bound to its device, in the device's namespace, whatever namespace the process
moves to afterwards; so the forwarder enters each namespace in turn (``setns``, through ctypes:
``os.setns`` is Python 3.12+), attaches to the persistent device made there by
``bench.netlab.lab`` and comes back to the namespace it started in.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct

__all__ = ["NETNS_DIR", "open_tun_in_netns"]

NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000  # linux/sched.h
TUNSETIFF = 0x400454CA  # linux/if_tun.h _IOW('T', 202, int)
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000  # no 4-byte packet-information header before each packet

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns: {os.strerror(code)}")


def _attach(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        ifreq = struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI)
        fcntl.ioctl(fd, TUNSETIFF, ifreq)
    except OSError as exc:
        os.close(fd)
        if exc.errno == errno.EBUSY:
            raise OSError(exc.errno, f"TUN device {name} is already attached") from None
        raise
    return fd


def open_tun_in_netns(netns: str, name: str) -> int:
    """A non-blocking fd of TUN device ``name`` in namespace ``netns`` (one packet per read)."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(os.path.join(NETNS_DIR, netns), os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target)
        try:
            return _attach(name)
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)
