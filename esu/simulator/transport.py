"""A requests transport that hands calls to a WSGI app in the same process.

In simulator mode the simulator is mounted in the app itself. Calling it over a socket would deadlock a
single-threaded server (the callback request waits for a Graph call that the same server must answer),
so the Graph client's session sends those calls straight to the WSGI app instead.
"""

from __future__ import annotations

from io import BytesIO

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.response import HTTPResponse
from werkzeug.test import EnvironBuilder, run_wsgi_app


class WSGIAdapter(BaseAdapter):
    def __init__(self, wsgi_app):
        super().__init__()
        self.wsgi_app = wsgi_app

    def send(self, request: requests.PreparedRequest, stream=False, timeout=None, verify=True, cert=None,
             proxies=None) -> requests.Response:
        builder = EnvironBuilder(
            path=request.path_url.split("?", 1)[0],
            query_string=request.path_url.split("?", 1)[1] if "?" in request.path_url else "",
            method=request.method,
            headers=dict(request.headers),
            data=request.body or b"",
            base_url="http://meta-simulator.invalid/",
        )
        try:
            environ = builder.get_environ()
        finally:
            builder.close()
        app_iter, status, headers = run_wsgi_app(self.wsgi_app, environ, buffered=True)
        try:
            body = b"".join(app_iter)
        finally:
            if hasattr(app_iter, "close"):
                app_iter.close()

        response = requests.Response()
        response.status_code = int(status.split(" ", 1)[0])
        response.reason = status.split(" ", 1)[1] if " " in status else ""
        response.headers = CaseInsensitiveDict(headers.items())
        response.raw = HTTPResponse(body=BytesIO(body), status=response.status_code, preload_content=False)
        response._content = body
        response.encoding = requests.utils.get_encoding_from_headers(response.headers)
        response.url = request.url
        response.request = request
        response.connection = self
        return response

    def close(self) -> None:
        pass
