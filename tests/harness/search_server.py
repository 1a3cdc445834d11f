#!/usr/bin/python3
"""A stand-in for Docker Hub's search service (index.docker.io's /v1/search), for the tests.

    search_server.py --port 5014 --log FILE

GET /v1/search?q=&n=&page= answers as Docker Hub does: {"num_pages", "num_results",
"results": [{"name", "description", "star_count", "is_official", "is_automated",
"is_trusted"}], "page_size", "query", "page"}, from a small catalogue of its own (matched on
name and description, the best first), with X-RateLimit-* headers, and a cookie and a header
of its own that a proxy should not pass on. The query "ratelimited" answers 429 with
Retry-After, "cutshort" a body that ends before its Content-Length. Anything else is a 404.
Every request is appended to --log as one JSON line (path, query, whether Authorization or
Cookie came, the user agent), before any answer.
"""
import argparse
import time

import serving

CATALOGUE = [
    ("nginx", "Official build of Nginx.", 20813, True),
    ("nginxinc/nginx-unprivileged", "Unprivileged NGINX Dockerfiles", 160, False),
    ("bitnami/nginx", "Bitnami container image for NGINX", 199, False),
    ("nginx/nginx-ingress", "NGINX and NGINX Plus Ingress Controllers for Kubernetes", 99, False),
    ("nginx/unit", "This repository is retired, use the Docker official images", 65, False),
    ("busybox", "Busybox base image.", 3300, True),
    ("alpine", "A minimal Docker image based on Alpine Linux with a package index", 11000, True),
    ("postgres", "The PostgreSQL object-relational database system <b>not bold</b>", 14000, True),
    ("grafana/grafana", "The official Grafana docker container", 3200, False),
    ("example/quote\"s", "A name with characters a page must escape: <script>alert(1)</script>", 1, False),
]


class Handler(serving.Handler):
    server_version = "test-search/1.0"

    def record(self, parsed, query):
        self.server.log.append({
            "time": time.time(),
            "method": self.command,
            "path": parsed.path,
            "query": query,
            "authorization": "Authorization" in self.headers,
            "cookie": "Cookie" in self.headers,
            "user_agent": self.headers.get("User-Agent"),
        })

    def do_GET(self):
        parsed, query = self.target(blank_values=True)
        self.record(parsed, query)
        if parsed.path != "/v1/search":
            return self.reply_json(404, {"message": "not found"})
        q = (query.get("q") or [""])[0]
        n = int((query.get("n") or ["25"])[0])
        page = int((query.get("page") or ["1"])[0])
        limits = [("X-RateLimit-Limit", "180"), ("X-RateLimit-Remaining", "179"),
                  ("X-RateLimit-Reset", "1700000000"), ("Set-Cookie", "search_session=s3cr3t; Path=/"),
                  ("X-Search-Backend", "stand-in")]
        if q == "ratelimited":
            return self.reply_json(429, {"message": "Too Many Requests"},
                             [("Retry-After", "42"), ("X-RateLimit-Remaining", "0")])
        if q == "cutshort":
            self.reply_json(200, {"results": []}, limits, length=4096)
            self.close_connection = True
            return
        words = q.lower().split()
        hits = [c for c in CATALOGUE
                if all(w in c[0].lower() or w in c[1].lower() for w in words)]
        hits.sort(key=lambda c: (not c[0].lower().startswith(q.lower()), -c[2]))
        pages = max(1, -(-len(hits) // n))
        shown = hits[(page - 1) * n: page * n]
        self.reply_json(200, {
            "num_pages": pages,
            "num_results": len(hits),
            "results": [{"name": name, "description": desc, "star_count": stars,
                         "is_official": official, "is_automated": False, "is_trusted": False}
                        for name, desc, stars, official in shown],
            "page_size": n,
            "query": q,
            "page": page,
        }, limits)

    do_HEAD = do_GET


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5014)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    serving.serve(Handler, args.host, args.port, "search stand-in on %s:%d" % (args.host, args.port),
                  log=serving.JsonLog(args.log))


if __name__ == "__main__":
    main()
