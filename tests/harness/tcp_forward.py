#!/usr/bin/python3
"""A TCP relay to one target, for a test to take an upstream away: when it exits, connections
to its port are refused, as for a registry that is down.

    tcp_forward.py --listen PORT --target HOST:PORT

Prints "ready" once listening.
"""
import argparse
import socket
import threading

import serving


def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--target", required=True)
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    srv = serving.listener("127.0.0.1", a.listen)
    print("ready", flush=True)
    while True:
        client, _ = srv.accept()
        try:
            upstream = socket.create_connection((host, int(port)))
        except OSError:
            client.close()
            continue
        for x, y in ((client, upstream), (upstream, client)):
            threading.Thread(target=pipe, args=(x, y), daemon=True).start()


if __name__ == "__main__":
    main()
