#!/usr/bin/python3
"""A stand-in for Workers Analytics Engine's SQL API, for the /_stats page's tests.

    stats_sql.py --port P --token T --log FILE

POST (any path) with `Authorization: Bearer T` and an SQL query as the body: answers 200 with
`{"meta": [...], "data": [...], "rows": N}` and fixed rows chosen by what the query asks (the
page's five questions: pulls per day per registry, the cache per day, Docker Hub pulls saved,
429s and errors per day, the most pulled repositories), numbers as strings as the API gives
them. Another token: 401. Each query is appended to --log as a JSON line (never the token).
Prints "ready" once listening.
"""
import argparse
import json
import time

import serving

DAYS = ["2026-12-%02d 00:00:00" % d for d in range(1, 8)]
REGISTRIES = ["docker.io", "team.registry.example", "k8s.registry.example"]


def rows_for(sql):
    if "GROUP BY day, registry" in sql:
        return [{"day": d, "registry": r, "n": str((i + 1) * (3 - j) * 10)}
                for i, d in enumerate(DAYS) for j, r in enumerate(REGISTRIES)]
    if "AS hits" in sql:
        return [{"day": d, "hits": str(40 + 5 * i), "cacheable": str(60 + 5 * i), "saved": str(2.5e9 * (i + 1))}
                for i, d in enumerate(DAYS)]
    if "AS limited" in sql:
        return [{"day": d, "limited": str(i % 3 * 4), "errors": str(i % 2)} for i, d in enumerate(DAYS)]
    if "LIMIT 20" in sql:
        return [{"registry": "docker.io", "repository": "library/repo-%02d" % i, "n": str(400 - 15 * i)}
                for i in range(20)]
    if "blob1 = 'docker.io'" in sql:
        return [{"n": "1234"}]
    return []


class Handler(serving.Handler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        sql = self.rfile.read(length).decode("utf-8", "replace")
        ok = self.headers.get("Authorization") == "Bearer " + self.server.token
        self.server.log.append({"time": time.time(), "path": self.path, "authorized": ok, "sql": sql})
        if not ok:
            return self.reply_json(401, {"errors": [{"code": 10000, "message": "Authentication error"}]})
        data = rows_for(sql)
        self.reply_json(200, {"meta": [{"name": k} for k in (data[0] if data else {})], "data": data, "rows": len(data)})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--log")
    a = ap.parse_args()
    serving.serve(Handler, "127.0.0.1", a.port, "ready", token=a.token, log=serving.JsonLog(a.log))


if __name__ == "__main__":
    main()
