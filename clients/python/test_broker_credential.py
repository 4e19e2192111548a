"""Tests of broker_credential.py, standard library only (python3 -m unittest, in clients/python).

ScriptedBrokerTest drives a scripted stand-in (http.server on 127.0.0.1): cache, single flight, the
scope rule, retry on 503, bad answers. RealBrokerTest runs when BROKER_TEST_URL is set (the
repository's test/clients/python.test.ts sets it to an embedded host with a connected connection).
"""

import base64
import json
import os
import threading
import time
import unittest
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from broker_credential import BrokerCredential, BrokerError

KEY = "fk-secret-function-key-0123456789"
OWN = "https://graph.microsoft.com/User.Read https://graph.microsoft.com/Mail.Read"
_serial = [0]


def token_body(lifetime=3600, scope=OWN):
    _serial[0] += 1
    return {"access_token": f"tok-{_serial[0]}-{time.time_ns()}", "token_type": "Bearer",
            "expires_in": lifetime, "expires_on": int(time.time()) + lifetime, "scope": scope}


class Fake:
    def __init__(self):
        self.requests = []
        self.handler = lambda req, n: (200, {"Content-Type": "application/json"}, json.dumps(token_body()))
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urlparse(self.path)
                req = {"query": {k: v[0] for k, v in parse_qs(url.query).items()}, "headers": {k.lower(): v for k, v in self.headers.items()}}
                fake.requests.append(req)
                answer = fake.handler(req, len(fake.requests))
                if answer is None:
                    return
                if callable(answer):
                    return answer(self)
                status, headers, body = answer
                data = body.encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class ScriptedBrokerTest(unittest.TestCase):
    def setUp(self):
        self.fake = Fake()

    def tearDown(self):
        self.fake.close()

    def credential(self, **kw):
        return BrokerCredential(self.fake.url, "mail", function_key=KEY, **kw)

    def failure(self, fn):
        with self.assertRaises(BrokerError) as ctx:
            fn()
        self.assertNotIn(KEY, str(ctx.exception))
        self.assertNotIn("tok-", str(ctx.exception))
        return ctx.exception

    def test_key_cache_and_own_scopes(self):
        cred = self.credential()
        first = cred.get_token()
        self.assertEqual(len(self.fake.requests), 1)
        req = self.fake.requests[0]
        self.assertEqual(req["headers"].get("x-functions-key"), KEY)
        self.assertEqual(req["query"]["connection"], "mail")
        self.assertNotIn("scope", req["query"])
        for scopes in (("https://graph.microsoft.com/User.Read",), ("User.Read", "mail.read"), ("https://graph.microsoft.com/.default",)):
            self.assertEqual(cred.get_token(*scopes).token, first.token)
        self.assertEqual(len(self.fake.requests), 1)
        self.assertGreater(first.expires_on, time.time() + 3500)

    def test_short_lived_token_not_cached(self):
        self.fake.handler = lambda req, n: (200, {"Content-Type": "application/json"}, json.dumps(token_body(lifetime=299)))
        cred = self.credential()
        self.assertNotEqual(cred.get_token().token, cred.get_token().token)

    def test_other_scopes_and_single_flight(self):
        def slow(req, n):
            time.sleep(0.1)
            return 200, {"Content-Type": "application/json"}, json.dumps(token_body(scope=req["query"].get("scope", OWN)))
        self.fake.handler = slow
        cred = self.credential()
        imap = "https://outlook.office.com/IMAP.AccessAsUser.All"
        results = []
        threads = [threading.Thread(target=lambda: results.append(cred.get_token(imap).token)) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(set(results)), 1)
        self.assertEqual([r["query"].get("scope") for r in self.fake.requests], [None, imap])

    def test_retry_after_then_token(self):
        self.fake.handler = lambda req, n: (
            (503, {"Content-Type": "application/problem+json", "Retry-After": "1"}, json.dumps({"code": "upstream_unavailable", "status": 503}))
            if n == 1 else (200, {"Content-Type": "application/json"}, json.dumps(token_body())))
        started = time.monotonic()
        self.assertTrue(self.credential(max_wait=5).get_token().token.startswith("tok-"))
        self.assertGreaterEqual(time.monotonic() - started, 0.95)
        self.assertEqual(len(self.fake.requests), 2)

    def test_retry_bounded(self):
        self.fake.handler = lambda req, n: (503, {"Content-Type": "application/problem+json", "Retry-After": "30"},
                                            json.dumps({"code": "upstream_unavailable", "status": 503, "remedy": {"kind": "wait", "text": "Nothing to do."}}))
        err = self.failure(lambda: self.credential(max_wait=2).get_token())
        self.assertEqual((err.code, err.status, err.retry_after), ("upstream_unavailable", 503, 30))
        self.assertEqual(err.remedy, {"kind": "wait", "text": "Nothing to do."})
        self.assertEqual(len(self.fake.requests), 1)

    def test_problem(self):
        self.fake.handler = lambda req, n: (409, {"Content-Type": "application/problem+json"}, json.dumps({
            "code": "consent_required", "status": 409, "detail": "Never connected.", "consentUrl": "/api/start?connection=mail",
            "remedy": {"kind": "reconnect", "text": "Ana connects it again."}}))
        err = self.failure(lambda: self.credential().get_token())
        self.assertEqual((err.code, err.status, err.consent_url), ("consent_required", 409, "/api/start?connection=mail"))
        self.assertEqual(err.remedy["kind"], "reconnect")

    def test_bad_answers(self):
        cases = [
            (503, "application/problem+json", '{"code":"upstream_unavailable","status":503}', "upstream_unavailable"),
            (502, "text/html", "<html>Bad gateway</html>", "invalid_response"),
            (200, "text/html", "<html>login</html>", "invalid_response"),
            (200, "application/json", '{"access_tok', "invalid_response"),
            (200, "application/json", '{"token_type":"Bearer"}', "invalid_response"),
            (500, "text/plain", "", "invalid_response"),
            (401, "text/plain", "", "unauthorized"),
        ]
        for status, ctype, body, code in cases:
            with self.subTest(status=status, body=body):
                self.fake.requests.clear()
                self.fake.handler = lambda req, n, s=status, c=ctype, b=body: (s, {"Content-Type": c}, b)
                err = self.failure(lambda: self.credential().get_token())
                self.assertEqual((err.code, err.status), (code, status))
                self.assertEqual(len(self.fake.requests), 1)

    def test_truncated_and_silent(self):
        def truncated(h):
            body = json.dumps(token_body()).encode()
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body) + 100))
            h.end_headers()
            h.wfile.write(body[:40])
            h.wfile.flush()
            h.close_connection = True
        self.fake.handler = lambda req, n: truncated
        self.assertEqual(self.failure(lambda: self.credential().get_token()).code, "invalid_response")

        self.fake.handler = lambda req, n: time.sleep(3)
        started = time.monotonic()
        self.assertEqual(self.failure(lambda: self.credential(attempt_timeout=0.3).get_token()).code, "broker_timeout")
        self.assertLess(time.monotonic() - started, 2.5)

    def test_unreachable(self):
        err = self.failure(lambda: BrokerCredential("http://127.0.0.1:1", "mail", function_key=KEY).get_token())
        self.assertEqual(err.code, "broker_unreachable")

    def test_api_credential(self):
        class Api:
            asked = []

            def get_token(self, *scopes, **kw):
                self.asked.append(scopes)
                return type("T", (), {"token": "api-token-0123456789", "expires_on": int(time.time()) + 3600})()
        api = Api()
        BrokerCredential(self.fake.url + "/api/", "mail", credential=api, api_scope="api://broker/.default").get_token()
        self.assertEqual(api.asked, [("api://broker/.default",)])
        self.assertEqual(self.fake.requests[0]["headers"].get("authorization"), "Bearer api-token-0123456789")
        self.assertNotIn("x-functions-key", self.fake.requests[0]["headers"])
        with self.assertRaises(ValueError):
            BrokerCredential(self.fake.url, "mail", credential=api)


@unittest.skipUnless(os.environ.get("BROKER_TEST_URL"), "BROKER_TEST_URL not set (test/clients/python.test.ts sets it)")
class RealBrokerTest(unittest.TestCase):
    def test_token_reads_me_and_xoauth2_names_the_account(self):
        # docs/clients.md, "Python"
        credential = BrokerCredential(os.environ["BROKER_TEST_URL"], os.environ["BROKER_TEST_CONNECTION"],
                                      function_key=os.environ["BROKER_TEST_KEY"])
        token = credential.get_token("https://graph.microsoft.com/.default")
        me = urllib.request.Request(os.environ["BROKER_TEST_GRAPH_ME"], headers={"Authorization": f"Bearer {token.token}"})
        with urllib.request.urlopen(me, timeout=10) as response:
            self.assertEqual(json.load(response)["userPrincipalName"], os.environ["BROKER_TEST_ACCOUNT"])
        sasl = base64.b64decode(credential.xoauth2()).decode()
        self.assertEqual(sasl, f"user={os.environ['BROKER_TEST_ACCOUNT']}\x01auth=Bearer {token.token}\x01\x01")
        with self.assertRaises(BrokerError) as ctx:
            credential.get_token("https://c.example.com/z")
        self.assertEqual((ctx.exception.code, ctx.exception.status), ("scope_not_allowed", 403))


if __name__ == "__main__":
    unittest.main()
