#!/usr/bin/env python3
"""A real SoupBinTCP client (PyPI nasdaq-protocols) sending one OUCH 4.2 order.

Usage: ouch_client.py HOST PORT TOKEN [--timeout SECONDS]

Logs in as DEMO01/demo (today's session, requested sequence number 1), sends
one OUCH 4.2 Enter Order (49 bytes, built here by hand) in an Unsequenced Data
packet: buy 10 t CEA at 74.63 yuan (price 746300), TIF 99999, firm 0001,
display Y, capacity A, ISO N, minimum quantity 0, cross N, customer R.
Then waits (at most --timeout, default 5 s; the login has the same limit) for
the Sequenced Data packet carrying the OUCH Accepted (type A, 66 bytes, token
at offset 9..23) of that token, prints its fields as one JSON line on stdout,
logs out and exits 0. Sequenced messages for other tokens (a replay of the
day from sequence 1) are skipped.

Exit codes: 0 accepted; 2 usage; 3 cannot connect, login refused or not
answered in time; 4 no Accepted in time, or the connection ended first;
5 the order was rejected (OUCH J for our token; the JSON line is printed with
"type": "J"). Everything the client sees is logged to stderr.

Note: nasdaq-protocols sends the requested sequence number left-justified
("1" then 19 spaces); Wireshark flags that (soupbintcp.req_seq_num.invalid),
our server parses it leniently (PROTOCOL §1).

Run it with the test virtual environment, made by scripts/test.sh:
    .venv-test/bin/python tests/python/ouch_client.py 127.0.0.1 7001 T1
"""

import argparse
import asyncio
import json
import struct
import sys

from nasdaq_protocols import common, soup

USER = "DEMO01"
PASSWORD = "demo"


def alpha(s: str, n: int) -> bytes:
    """An OUCH alpha field: ASCII, left-justified, space-padded."""
    b = s.encode("ascii")
    if len(b) > n:
        raise ValueError(f"{s!r} is longer than {n}")
    return b.ljust(n, b" ")


def enter_order(token: str) -> bytes:
    """OUCH 4.2 Enter Order 'O', 49 bytes, big-endian integers."""
    msg = (
        b"O"
        + alpha(token, 14)
        + b"B"  # buy/sell
        + struct.pack("!I", 10)  # shares (tonnes)
        + alpha("CEA", 8)  # stock
        + struct.pack("!I", 746300)  # price, 74.63 yuan
        + struct.pack("!I", 99999)  # time in force: day
        + alpha("0001", 4)  # firm
        + b"Y"  # display
        + b"A"  # capacity
        + b"N"  # intermarket sweep
        + struct.pack("!I", 0)  # minimum quantity
        + b"N"  # cross type
        + b"R"  # customer type
    )
    assert len(msg) == 49, len(msg)
    return msg


def text(b: bytes) -> str:
    return b.decode("ascii").rstrip(" ")


def char(b: int) -> str:
    return chr(b)


def decode_accepted(m: bytes) -> dict:
    """OUCH 4.2 Accepted 'A', 66 bytes."""
    if len(m) != 66:
        raise ValueError(f"Accepted is {len(m)} bytes, not 66: {m!r}")
    ts, = struct.unpack_from("!Q", m, 1)
    shares, = struct.unpack_from("!I", m, 24)
    price, tif = struct.unpack_from("!II", m, 36)
    order_ref, = struct.unpack_from("!Q", m, 49)
    min_qty, = struct.unpack_from("!I", m, 59)
    return {
        "type": "A",
        "timestamp": ts,
        "token": text(m[9:23]),
        "side": char(m[23]),
        "shares": shares,
        "stock": text(m[28:36]),
        "price": price,
        "tif": tif,
        "firm": text(m[44:48]),
        "display": char(m[48]),
        "order_ref": order_ref,
        "capacity": char(m[57]),
        "iso": char(m[58]),
        "min_qty": min_qty,
        "cross": char(m[63]),
        "state": char(m[64]),
        "bbo_weight": char(m[65]),
    }


def decode_rejected(m: bytes) -> dict:
    """OUCH 4.2 Rejected 'J', 24 bytes."""
    ts, = struct.unpack_from("!Q", m, 1)
    return {"type": "J", "timestamp": ts, "token": text(m[9:23]), "reason": char(m[23])}


def log(*args) -> None:
    print("ouch_client:", *args, file=sys.stderr, flush=True)


async def run(host: str, port: int, token: str, timeout: float) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        # No on_msg_coro: messages queue up for receive_msg(). connect_async
        # waits for the login reply without a limit of its own.
        session = await asyncio.wait_for(
            soup.connect_async(
                (host, port),
                USER,
                PASSWORD,
                session_id="",
                sequence=1,
                client_heartbeat_interval=1,
                server_heartbeat_interval=15,
                connect_timeout=timeout,
            ),
            timeout,
        )
    except (OSError, ConnectionError, asyncio.TimeoutError, common.EndOfQueue) as exc:
        if loop.time() >= deadline:
            log(f"no login reply from {host}:{port} within {timeout} s")
        else:
            log(f"cannot log in to {host}:{port} as {USER}: {exc!r}")
        return 3
    log(f"logged in: session {session.session_id.session!r}, next sequence {session.sequence + 1}")

    order = enter_order(token)
    deadline = loop.time() + timeout
    session.send_unseq_data(order)
    log(f"sent Enter Order {token!r}: {order.hex()}")

    code = 4
    try:
        while True:
            left = deadline - loop.time()
            if left <= 0:
                log(f"no Accepted for {token!r} within {timeout} s")
                break
            # Poll: cancelling receive_msg() (as asyncio.wait_for does on a
            # timeout) makes nasdaq-protocols raise EndOfQueue, which would
            # be indistinguishable from the server closing the connection.
            try:
                msg = session.receive_msg_nowait()
            except common.EndOfQueue:
                log(f"connection closed by the server before an Accepted for {token!r}")
                break
            if msg is None:
                await asyncio.sleep(0.005)
                continue
            if not isinstance(msg, soup.SequencedData):
                log(f"received {msg!r}")
                if isinstance(msg, soup.EndOfSession):
                    break
                continue
            data = bytes(msg.data)
            log(f"received sequenced #{session.sequence}: {data[:1]!r} {len(data)} bytes")
            if data[:1] == b"A" and len(data) == 66 and text(data[9:23]) == token:
                print(json.dumps(decode_accepted(data)), flush=True)
                code = 0
                break
            if data[:1] == b"J" and len(data) == 24 and text(data[9:23]) == token:
                print(json.dumps(decode_rejected(data)), flush=True)
                log(f"order {token!r} rejected, reason {chr(data[23])!r}")
                code = 5
                break
    finally:
        if not session.is_closed():
            session.logout()
            # Let the logout request reach the socket before the loop ends.
            for _ in range(100):
                if session.is_closed():
                    break
                await asyncio.sleep(0.01)
    return code


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("token")
    p.add_argument("--timeout", type=float, default=5.0)
    a = p.parse_args()  # exits 2 on a usage error
    if not a.token or len(a.token) > 14:
        log("token must be 1..14 characters")
        return 2
    return asyncio.run(run(a.host, a.port, a.token, a.timeout))


if __name__ == "__main__":
    sys.exit(main())
