#!/usr/bin/env python3
"""A tiny fake SoupBinTCP 3.0 / OUCH 4.2 server, a test aid for ouch_client.py.

Usage: fake_server.py [--port N] [--mode accept|reject|silent|close|deny|mute] [--connections N]

Listens on 127.0.0.1 (port 0 = any free port), prints "PORT <n>" on stdout
once listening, then serves --connections clients (default 1) one after the
other and exits. Written from PROTOCOL §2 to §4 with plain sockets, deliberately not
with nasdaq-protocols, so that it checks the client rather than mirrors it:

- the first packet must be a Login Request (length field 47); user DEMO01,
  password demo; --mode deny answers Login Rejected 'A' instead, --mode
  mute does not answer (for 7 s);
- Login Accepted: session CX20261124, next sequence number 1 (numeric
  fields right-justified, as our server sends them);
- each Enter Order 'O' (49 bytes) inside Unsequenced Data gets a Sequenced
  Data Accepted 'A' (66 bytes) echoing its fields (mode accept), a Rejected
  'J' reason 'X' (mode reject), nothing (mode silent), or the connection
  is closed (mode close);
- a Server Heartbeat every second of silence; Logout Request ends the
  connection. Malformed input is reported on stderr and exits 1.
"""

import argparse
import socket
import struct
import sys
import time

SESSION = b"CX20261124"


def log(*args) -> None:
    print("fake_server:", *args, file=sys.stderr, flush=True)


def packet(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack("!H", len(payload) + 1) + kind + payload


class Conn:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""
        self.last_sent = time.monotonic()
        self.last_recv = time.monotonic()
        self.next_seq = 1
        self.order_ref = 100

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.last_sent = time.monotonic()

    def read_packet(self):
        """Next (type, payload), None on EOF; heartbeats when idle."""
        while True:
            if len(self.buf) >= 2:
                n, = struct.unpack_from("!H", self.buf)
                if n == 0:
                    raise ValueError("zero length field")
                if len(self.buf) >= 2 + n:
                    kind, payload = self.buf[2:3], self.buf[3:2 + n]
                    self.buf = self.buf[2 + n:]
                    return kind, payload
            now = time.monotonic()
            if now - self.last_sent >= 1.0:
                self.send(packet(b"H"))
            if now - self.last_recv >= 15.0:
                raise ValueError("15 s without anything from the client")
            self.sock.settimeout(max(0.01, 1.0 - (now - self.last_sent)))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                return None
            self.buf += chunk
            self.last_recv = time.monotonic()


def accepted(order: bytes, order_ref: int) -> bytes:
    """Accepted 'A' (66 bytes) for an Enter Order 'O' (49 bytes)."""
    ts = 34_200_000_000_123  # 09:30:00.000000123
    token, side = order[1:15], order[15:16]
    shares, stock, price, tif, firm = order[16:20], order[20:28], order[28:32], order[32:36], order[36:40]
    display, capacity, iso, min_qty, cross = order[40:41], order[41:42], order[42:43], order[43:47], order[47:48]
    msg = (b"A" + struct.pack("!Q", ts) + token + side + shares + stock + price + tif + firm + display
           + struct.pack("!Q", order_ref) + capacity + iso + min_qty + cross + b"L" + b" ")
    assert len(msg) == 66, len(msg)
    return msg


def rejected(order: bytes, reason: bytes) -> bytes:
    msg = b"J" + struct.pack("!Q", 34_200_000_000_456) + order[1:15] + reason
    assert len(msg) == 24
    return msg


def serve(sock: socket.socket, mode: str) -> None:
    c = Conn(sock)
    sock.settimeout(5.0)
    first = c.read_packet()
    if first is None:
        log("client closed before logging in")
        return
    kind, payload = first
    if kind != b"L" or len(payload) != 46:
        raise ValueError(f"first packet is {kind!r} with {len(payload)} bytes, not a 47-byte Login Request")
    user, password = payload[0:6].decode().strip(), payload[6:16].decode().strip()
    session, seq = payload[16:26].decode().strip(), payload[26:46].decode()
    log(f"login user={user!r} session={session!r} requested sequence={seq!r}")
    if mode == "mute":
        log("not answering the login")
        time.sleep(7)
        return
    if mode == "deny" or (user, password) != ("DEMO01", "demo"):
        c.send(packet(b"J", b"A"))
        return
    requested = int(seq.strip() or "0")
    if requested != 1:
        raise ValueError(f"requested sequence {seq!r}, expected 1")
    c.send(packet(b"A", SESSION + str(c.next_seq).rjust(20).encode()))
    while True:
        got = c.read_packet()
        if got is None:
            log("client closed")
            return
        kind, payload = got
        if kind == b"R":
            continue
        if kind == b"O":
            log("logout")
            return
        if kind != b"U":
            raise ValueError(f"unexpected packet {kind!r} {payload!r}")
        if payload[:1] != b"O" or len(payload) != 49:
            raise ValueError(f"unsequenced data is not a 49-byte Enter Order: {payload!r}")
        log(f"enter order {payload!r}")
        if mode == "accept":
            c.order_ref += 1
            c.send(packet(b"S", accepted(payload, c.order_ref)))
        elif mode == "reject":
            c.send(packet(b"S", rejected(payload, b"X")))
        elif mode == "close":
            log("closing without a reply")
            return
        c.next_seq += 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--mode", choices=["accept", "reject", "silent", "close", "deny", "mute"], default="accept")
    p.add_argument("--connections", type=int, default=1)
    a = p.parse_args()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", a.port))
        srv.listen(1)
        srv.settimeout(30.0)
        print(f"PORT {srv.getsockname()[1]}", flush=True)
        for _ in range(a.connections):
            conn, peer = srv.accept()
            log(f"connection from {peer}")
            with conn:
                try:
                    serve(conn, a.mode)
                except (ValueError, UnicodeDecodeError) as exc:
                    log(f"protocol error: {exc}")
                    return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
