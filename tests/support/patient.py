"""An HTTP client for a test's own reads and writes of a system erpsync's workers are using: a 429
is waited out and the request sent again, as a person at the keyboard would. QuickBooks' sim counts a
company's requests together (10 a second), so a test reading the books right after a drain can meet
the ceiling the workers just used up; erpsync's own requests are held under it by the shared gate."""

from __future__ import annotations

import time

import httpx


class _Patient(httpx.HTTPTransport):
    def __init__(self, tries: int, wait_s: float) -> None:
        super().__init__()
        self.tries, self.wait_s = tries, wait_s

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for _ in range(self.tries - 1):
            response = super().handle_request(request)
            if response.status_code != 429:
                return response
            response.close()
            time.sleep(self.wait_s)
        return super().handle_request(request)


def patient_http(timeout: float = 30.0, tries: int = 6, wait_s: float = 1.5) -> httpx.Client:
    """A client that sends a request refused with 429 again after ``wait_s``, ``tries`` times in all."""
    return httpx.Client(timeout=timeout, transport=_Patient(tries, wait_s))
