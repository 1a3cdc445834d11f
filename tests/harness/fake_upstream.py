#!/usr/bin/python3
"""A deliberately odd registry, for what CNCF distribution never sends.

    fake_upstream.py --port P --mode quirky|broken|bare [--log FILE]

quirky: a valid but unusual Bearer challenge (lower-case scheme and names, spaces around '=',
        token and quoted values, escapes, params in another order) pointing at its own token
        issuer (--realm, --service); a request is let in only with a token that issuer signed
        for that service (--cert), as a real registry checks; manifests answer with rate-limit
        headers; /v2/loop/... redirects forever; /v2/deny/... answers 401 with scope and
        error="insufficient_scope".
broken: 401 with an unterminated quoted string in WWW-Authenticate.
bare:   401 with no WWW-Authenticate at all.
Each request is appended to --log as one JSON line (method, path, query, has Authorization).
"""
import argparse
import json

import jwt
from cryptography import x509

import serving

DIGEST = "sha256:" + "ab" * 32
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": DIGEST, "size": 2}, "layers": []}).encode()


class Handler(serving.Handler):
    def record(self):
        u, query = self.target()
        self.server.log.append({"method": self.command, "path": u.path, "query": query,
                                "authorization": "Authorization" in self.headers})

    def unauthorized(self, challenge):
        body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
        headers = [("Content-Type", "application/json")]
        if challenge is not None:
            headers.append(("WWW-Authenticate", challenge))
        self.reply(401, headers, body)

    def token_ok(self):
        """A Bearer token its issuer signed for its service (any scope will do here)."""
        auth = self.headers.get("Authorization") or ""
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        try:
            jwt.decode(token.strip(), self.server.public_key, algorithms=["ES256"],
                       audience=self.server.cfg.service)
            return True
        except jwt.PyJWTError:
            return False

    def do_GET(self):
        self.record()
        mode = self.server.cfg.mode
        path = self.target()[0].path
        if mode == "broken":
            return self.unauthorized('Bearer realm="http://auth.example.test:5002/token,service="x')
        if mode == "bare":
            return self.unauthorized(None)
        # quirky
        realm, service = self.server.cfg.realm, self.server.cfg.service
        if path.startswith("/v2/loop/"):
            return self.reply(302, [("Location", path)])
        if path.startswith("/v2/deny/"):
            return self.unauthorized(
                'Bearer realm="%s",service="%s",scope="repository:deny/app:pull,push",'
                'error="insufficient_scope"' % (realm, service))
        if not self.token_ok():
            return self.unauthorized(
                'bearer  service = %s , scope="repository:quirk/app:pull" ,  '
                'REALM="%s", note="a \\"quoted\\" \\\\ value"' % (service, realm))
        if path.startswith("/v2/quirk/app/manifests/"):
            return self.reply(200, [
                ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
                ("Docker-Content-Digest", DIGEST),
                ("ETag", '"%s"' % DIGEST),
                ("RateLimit-Limit", "100;w=21600"),
                ("RateLimit-Remaining", "99;w=21600"),
                ("Docker-RateLimit-Source", "127.0.0.1"),
            ], MANIFEST)
        if path == "/v2/":
            return self.reply(200, [("Content-Type", "application/json")], b"{}")
        self.reply(404, [("Content-Type", "application/json")],
                   b'{"errors":[{"code":"NAME_UNKNOWN","message":"unknown"}]}')

    do_HEAD = do_GET


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=["quirky", "broken", "bare"], required=True)
    ap.add_argument("--realm", help="its token issuer's realm (quirky)")
    ap.add_argument("--service", help="the service name its tokens are for (quirky)")
    ap.add_argument("--cert", help="its token issuer's certificate (quirky)")
    ap.add_argument("--log")
    cfg = ap.parse_args()
    if cfg.mode == "quirky" and not (cfg.realm and cfg.service and cfg.cert):
        ap.error("quirky needs --realm, --service and --cert")
    public_key = None
    if cfg.cert:
        with open(cfg.cert, "rb") as f:
            public_key = x509.load_pem_x509_certificate(f.read()).public_key()
    serving.serve(Handler, "127.0.0.1", cfg.port, cfg=cfg, public_key=public_key,
                  log=serving.JsonLog(cfg.log))


if __name__ == "__main__":
    main()
