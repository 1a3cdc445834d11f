#!/usr/bin/python3
"""A small Docker-Hub-like token server for the end-to-end tests.

GET  /token?service=S&scope=T:NAME:ACTIONS[&scope=...]&account=...&client_id=...&offline_token=true
     optional `Authorization: Basic ...`
POST /token  (application/x-www-form-urlencoded, containerd's OAuth2)
     grant_type=password&username=U&password=P&service=S&scope=...&client_id=...
     grant_type=refresh_token&refresh_token=R&service=S&scope=...&client_id=...

Answers {"token", "access_token", "expires_in": 300, "issued_at"} (+ "refresh_token").
The token is an ES256 JWT that CNCF distribution 2.8 accepts: claims iss, sub, aud, iat,
nbf, exp, jti, access; header kid = libtrust fingerprint of the signing key.

Each registry of the harness has an issuer of its own (its key, issuer name, service name and
users), as every real registry has: a token of one is refused by the others. Names under a
--private prefix are private: anonymous clients get no access to them.

Every request is appended to --log as one JSON line (never the Authorization value nor a
password).  Runs with Debian's /usr/bin/python3 (python3-jwt, python3-cryptography).
"""
import argparse
import base64
import datetime
import hashlib
import secrets
import sys
import threading
import time
import urllib.parse

import jwt
from cryptography.hazmat.primitives import serialization

import serving

KNOWN_ACTIONS = ("pull", "push", "delete", "*")
ANONYMOUS_ACTIONS = ("pull",)
EXPIRES_IN = 300


def libtrust_kid(public_key) -> str:
    """libtrust key ID: base32(sha256(SubjectPublicKeyInfo DER)[:30]), groups of 4 joined by ':'."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i : i + 4] for i in range(0, len(b32), 4))


def parse_scopes(values):
    """Each value may hold several space-separated scopes `type:name:actions`."""
    out = []
    for value in values:
        for item in value.split():
            if item.count(":") < 2:
                continue  # malformed: ignored, as Docker Hub does
            typ, rest = item.split(":", 1)
            name, actions = rest.rsplit(":", 1)
            out.append((typ, name, [a for a in actions.split(",") if a]))
    return out


class State:
    def __init__(self, args):
        with open(args.key, "rb") as f:
            self.key_pem = f.read()
        self.private_key = serialization.load_pem_private_key(self.key_pem, password=None)
        self.kid = libtrust_kid(self.private_key.public_key())
        self.issuer = args.issuer
        self.service = args.service
        self.private = tuple(args.private_prefix or ())
        self.users = {}
        if args.users:
            with open(args.users) as f:
                for line in f:
                    line = line.strip()
                    if line and not line.startswith("#") and ":" in line:
                        u, p = line.split(":", 1)
                        self.users[u] = p
        self.log = serving.JsonLog(args.log, sort_keys=True).append
        self.refresh_tokens = {}  # token -> username
        self.refresh_lock = threading.Lock()

    def check_user(self, user, password):
        return user in self.users and secrets.compare_digest(self.users[user], password or "")

    def new_refresh_token(self, user):
        tok = secrets.token_urlsafe(24)
        with self.refresh_lock:
            self.refresh_tokens[tok] = user
        return tok

    def user_for_refresh_token(self, tok):
        with self.refresh_lock:
            return self.refresh_tokens.get(tok)

    def issue(self, user, scopes):
        allowed = KNOWN_ACTIONS if user else ANONYMOUS_ACTIONS
        access = []
        for typ, name, actions in scopes:
            private = typ == "repository" and name.startswith(self.private) if self.private else False
            granted = [a for a in actions if a in allowed and (user or not private)]
            # merge duplicates of the same resource
            for entry in access:
                if entry["type"] == typ and entry["name"] == name:
                    entry["actions"] += [a for a in granted if a not in entry["actions"]]
                    break
            else:
                access.append({"type": typ, "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": self.service,
            "iat": now,
            "nbf": now - 10,
            "exp": now + EXPIRES_IN,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        token = jwt.encode(claims, self.key_pem, algorithm="ES256", headers={"kid": self.kid})
        if isinstance(token, bytes):  # PyJWT < 2
            token = token.decode()
        issued_at = (
            datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
            .isoformat()
            .replace("+00:00", "Z")
        )
        return token, issued_at, access


class Handler(serving.Handler):
    server_version = "test-token-issuer/1.0"

    @property
    def st(self) -> State:
        return self.server.state

    def basic_credentials(self):
        h = self.headers.get("Authorization")
        if not h or not h.lower().startswith("basic "):
            return None
        try:
            raw = base64.b64decode(h.split(None, 1)[1].strip(), validate=False).decode("utf-8")
        except Exception:
            return ("", None)
        if ":" not in raw:
            return (raw, "")
        u, p = raw.split(":", 1)
        return (u, p)

    def unauthorized(self, entry):
        entry["status"] = 401
        self.st.log(entry)
        self.reply_json(
            401,
            {"errors": [{"code": "UNAUTHORIZED", "message": "invalid username or password"}]},
            [("Www-Authenticate", 'Basic realm="%s"' % self.st.issuer)],
        )

    def bad_request(self, entry, code, message):
        entry["status"] = 400
        entry["error"] = message
        self.st.log(entry)
        self.reply_json(400, {"errors": [{"code": code, "message": message}]})

    def token(self, entry, user, scopes, refresh_token):
        """200 with a token for `user` (None: anonymous) of what it may have of `scopes`, and
        `refresh_token` if any; the request logged with what it got."""
        token, issued_at, access = self.st.issue(user, scopes)
        resp = {
            "token": token,
            "access_token": token,
            "expires_in": EXPIRES_IN,
            "issued_at": issued_at,
        }
        if refresh_token:
            resp["refresh_token"] = refresh_token
        entry.update(status=200, user=user or "", access=access)
        self.st.log(entry)
        self.reply_json(200, resp)

    def base_entry(self, parsed):
        return {
            "time": time.time(),
            "method": self.command,
            "path": parsed.path,
            "query": urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
            "authorization": "Authorization" in self.headers,
            "authorization_scheme": (self.headers.get("Authorization") or " ").split(" ", 1)[0]
            or None,
            "host": self.headers.get("Host"),
            "user_agent": self.headers.get("User-Agent"),
        }

    def do_GET(self):
        parsed = urllib.parse.urlsplit(self.path)
        entry = self.base_entry(parsed)
        if parsed.path != "/token":
            entry["status"] = 404
            self.st.log(entry)
            self.reply_json(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]})
            return
        q = entry["query"]
        service = (q.get("service") or [""])[0]
        if service != self.st.service:
            return self.bad_request(entry, "INVALID_REQUEST", "unknown service %r" % service)
        user = None
        creds = self.basic_credentials()
        if creds is not None:
            if not self.st.check_user(creds[0], creds[1]):
                entry["user"] = creds[0]
                return self.unauthorized(entry)
            user = creds[0]
        refresh = user and (q.get("offline_token") or [""])[0].lower() == "true"
        self.token(entry, user, parse_scopes(q.get("scope", [])),
                   self.st.new_refresh_token(user) if refresh else None)

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        parsed = urllib.parse.urlsplit(self.path)
        entry = self.base_entry(parsed)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        entry["content_type"] = self.headers.get("Content-Type")
        entry["form"] = {k: v for k, v in form.items() if k != "password"}
        entry["form_has_password"] = "password" in form
        if parsed.path != "/token":
            entry["status"] = 404
            self.st.log(entry)
            self.reply_json(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]})
            return

        def f(name):
            return (form.get(name) or [""])[0]

        service = f("service")
        if service != self.st.service:
            return self.bad_request(entry, "INVALID_REQUEST", "unknown service %r" % service)
        grant = f("grant_type")
        if grant == "password":
            user = f("username")
            if not self.st.check_user(user, f("password")):
                entry["user"] = user
                return self.unauthorized(entry)
        elif grant == "refresh_token":
            user = self.st.user_for_refresh_token(f("refresh_token"))
            if not user:
                return self.unauthorized(entry)
        else:
            return self.bad_request(entry, "UNSUPPORTED", "unsupported grant_type %r" % grant)
        refresh = None
        if grant == "password" or f("access_type") == "offline" or f("offline_token") == "true":
            refresh = self.st.new_refresh_token(user)
        elif grant == "refresh_token":
            refresh = f("refresh_token")
        self.token(entry, user, parse_scopes(form.get("scope", [])), refresh)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5002)
    ap.add_argument("--key", required=True, help="ES256 private key (PEM)")
    ap.add_argument("--cert", help="certificate of the key (only checked to match)")
    ap.add_argument("--issuer", default="test-issuer")
    ap.add_argument("--service", default="test-registry")
    ap.add_argument("--users", help="file of user:password lines")
    ap.add_argument("--private-prefix", action="append",
                    help="repository names under this prefix refuse anonymous clients")
    ap.add_argument("--log", help="append one JSON line per request here")
    args = ap.parse_args()
    state = State(args)
    if args.cert:
        from cryptography import x509

        with open(args.cert, "rb") as fh:
            cert = x509.load_pem_x509_certificate(fh.read())
        if libtrust_kid(cert.public_key()) != state.kid:
            sys.exit("token_issuer: --cert does not match --key")
    serving.serve(Handler, args.host, args.port,
                  "token issuer on %s:%d kid=%s" % (args.host, args.port, state.kid), state=state)


if __name__ == "__main__":
    main()
