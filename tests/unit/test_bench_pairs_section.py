"""``python -m bench.pairs --untimed`` keeps the timed table of the section the page has."""

from __future__ import annotations

from bench import pairs

PAGE = f"""# Performance

{pairs.SECTION}

old untimed table

**Timed, against the ceiling** (`throughput`): ...

| pair | ceiling |
|---|---|
| shopify -> acumatica | 600 points/min |

## Ideas not implemented
"""


def test_the_timed_part_is_kept_to_the_section_end() -> None:
    assert pairs.kept_timed(PAGE) == [
        "",
        "**Timed, against the ceiling** (`throughput`): ...",
        "",
        "| pair | ceiling |",
        "|---|---|",
        "| shopify -> acumatica | 600 points/min |",
    ]


def test_a_page_without_the_section_or_its_timed_part_keeps_nothing() -> None:
    assert pairs.kept_timed("# Performance\n") == []
    assert pairs.kept_timed(f"{pairs.SECTION}\n\nonly untimed\n\n## Next\n") == []
