"""The drill's HTTP client gives up on a connect that gets no answer (a web node the LB still
sends new flows to just after it went down) after its short connect timeout and retries, while
a node that answered keeps the whole attempt timeout to send its page. Loopback only: a listener
whose accept queue is full drops new SYNs, as a powered-off backend never answers them."""

import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import client  # noqa: E402


class ConnectTimeout(unittest.TestCase):
    def setUp(self):
        self.saved = client.CONNECT_TIMEOUT
        client.CONNECT_TIMEOUT = 0.5
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.held = []

    def tearDown(self):
        client.CONNECT_TIMEOUT = self.saved
        for s in self.held:
            s.close()
        self.listener.close()

    def test_an_unanswered_connect_fails_after_the_connect_timeout(self):
        # Fill the accept queue (nobody accepts): the kernel then drops further SYNs.
        for _ in range(4):
            s = socket.socket()
            s.settimeout(0.3)
            try:
                s.connect(("127.0.0.1", self.port))
            except OSError:
                s.close()
                break
            self.held.append(s)
        else:
            self.skipTest("the kernel kept accepting handshakes: no dropped SYN to test with")
        conn = client.Connection("127.0.0.1", self.port, timeout=20)
        t0 = time.time()
        with self.assertRaises(OSError):
            conn.connect()
        self.assertLess(time.time() - t0, 3, "the connect waited for the attempt timeout, not the connect timeout")

    def test_a_slow_answer_keeps_the_attempt_timeout(self):
        conn = client.Connection("127.0.0.1", self.port, timeout=2)
        conn.connect()
        self.held.append(conn.sock)
        t0 = time.time()
        with self.assertRaises(OSError):
            conn.sock.recv(1)
        self.assertGreater(time.time() - t0, 1.5, "the read used the connect timeout")


class Fetch(unittest.TestCase):
    """client.fetch, what a drill check uses to compare the LB's answer with each node's: any status
    is an answer (a 404 too), with the body cut to the limit."""

    def setUp(self):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                code, body = (200, b"x" * 100) if self.path == "/big" else (404, b"not here")
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = "http://127.0.0.1:%d" % self.server.server_address[1]

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()

    def test_status_and_body_whatever_the_status(self):
        self.assertEqual(client.fetch(self.base + "/big", limit=10), {"status": 200, "body": "x" * 10})
        self.assertEqual(client.fetch(self.base + "/nope"), {"status": 404, "body": "not here"})

    def test_no_answer_is_an_error_not_a_status(self):
        port = self.server.server_address[1]
        self.tearDown()
        with self.assertRaises(OSError):
            client.fetch("http://127.0.0.1:%d/" % port)
        self.setUp()


if __name__ == "__main__":
    unittest.main()
