"""The initial load reads each next page while the last one is written (``cli.load.read_ahead``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from cli.load import read_ahead


def test_pages_come_in_order_and_the_next_is_read_while_the_last_is_worked_on() -> None:
    read: list[int] = []
    second_read = threading.Event()

    def pages() -> Iterator[int]:
        for n in range(4):
            read.append(n)
            if n == 1:
                second_read.set()
            yield n

    got = []
    for page in read_ahead(pages()):
        if page == 0:
            assert second_read.wait(5), "page 1 was not read while page 0 was worked on"
        got.append(page)
    assert got == [0, 1, 2, 3]
    assert max(read) == 3


def test_an_error_reading_a_page_is_raised_where_that_page_would_be() -> None:
    def pages() -> Iterator[int]:
        yield 0
        raise ConnectionError("the ERP went away")

    got = []
    with pytest.raises(ConnectionError, match="went away"):
        for page in read_ahead(pages()):
            got.append(page)
    assert got == [0]


def test_a_reader_stopped_early_holds_at_most_depth_plus_two_pages_and_lets_the_thread_go() -> None:
    read: list[int] = []

    def pages() -> Iterator[int]:
        for n in range(100):
            read.append(n)
            yield n

    for page in read_ahead(pages(), depth=2):
        if page == 0:
            time.sleep(0.2)  # the thread reads ahead meanwhile, but only so far
            assert len(read) <= 4
            break
    time.sleep(1.0)
    assert len(read) <= 5
    assert not [t for t in threading.enumerate() if t.name == "load-read-ahead" and t.is_alive()]
