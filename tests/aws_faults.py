"""An HTTP proxy of the suite's own in front of the sandbox's moto server: forwards every AWS call, and breaks the
ones a test names, as AWS itself would fail them.

    fail_change_when(b"127.0.0.3")   ChangeResourceRecordSets whose body holds those bytes: an AWS error (400)
    fail_rds_action(b"ModifyDBParameterGroup")   that RDS API action: an AWS error (400), as RDS answers a group
                                     it cannot modify now
    pending = True                   every change answers PENDING (its own answer, GetChange's): INSYNC
                                     never comes, though moto made the change
"""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

AWS_ERROR = (b'<?xml version="1.0"?><ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
             b"<Error><Type>Sender</Type><Code>InvalidChangeBatch</Code><Message>injected by the test: the change "
             b"is refused</Message></Error><RequestId>test</RequestId></ErrorResponse>")


RDS_ERROR = (b'<?xml version="1.0"?><ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error>'
             b"<Type>Sender</Type><Code>InvalidDBParameterGroupState</Code><Message>injected by the test: the "
             b"parameter group cannot be modified now</Message></Error><RequestId>test</RequestId></ErrorResponse>")


class AwsFaults:
    def __init__(self, upstream: str):
        parsed = urllib.parse.urlsplit(upstream)
        self.host, self.port = parsed.hostname, parsed.port
        self.fail_on: bytes | None = None
        self.fail_action: bytes | None = None
        self.pending = False
        self.failed = 0  # calls answered with the injected error
        faults = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if faults.fail_on and "/rrset" in self.path and faults.fail_on in body:
                    faults.failed += 1
                    return self._answer(400, AWS_ERROR, {"Content-Type": "text/xml"})
                if faults.fail_action and b"Action=" + faults.fail_action + b"&" in body + b"&":
                    faults.failed += 1
                    return self._answer(400, RDS_ERROR, {"Content-Type": "text/xml"})
                upstream = http.client.HTTPConnection(faults.host, faults.port, timeout=30)
                try:  # http.client adds no header of its own but Content-Length (urllib would add a Content-Type)
                    upstream.request(self.command, self.path, body=body or None, headers=dict(self.headers.items()))
                    resp = upstream.getresponse()
                    status, data, headers = resp.status, resp.read(), dict(resp.getheaders())
                finally:
                    upstream.close()
                if faults.pending:  # the change's answer and GetChange's: as Route53 answers before it is done
                    data = data.replace(b"<Status>INSYNC</Status>", b"<Status>PENDING</Status>")
                self._answer(status, data, headers)

            def _answer(self, status: int, data: bytes, headers: dict) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True, name="aws-faults").start()

    def fail_change_when(self, pattern: bytes | None) -> None:
        self.fail_on = pattern

    def fail_rds_action(self, action: bytes | None) -> None:
        self.fail_action = action

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> AwsFaults:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
