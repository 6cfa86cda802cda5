"""docs/migrating.md holds the key and defaults tables the code translates recipes with."""

import re
from pathlib import Path

from arctic_like.config.arctic_training import coverage, defaults_table, key_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "migrating.md"


def section(name: str) -> str:
    match = re.search(rf"<!-- {name} -->\n(.*?)\n<!-- /{name} -->", DOC.read_text(), re.S)
    assert match, f"docs/migrating.md has no {name} markers"
    return match.group(1)


def test_key_table_is_the_codes():
    assert section("key-table") == key_table(), (
        "run: python -m arctic_like.config.arctic_training --write-docs"
    )


def test_defaults_table_is_the_codes():
    assert section("defaults-table") == defaults_table()


def test_counts_in_the_text_are_the_codes():
    counts = coverage()
    text = " ".join(DOC.read_text().split())
    assert (
        f"{sum(counts.values())} keys, of which {counts['same']} mean the same here, {counts['mapped']} are "
        f"mapped, {counts['fallback']} fall back with a warning, {counts['no effect']} have no effect on "
        f"results and {counts['refused']} are refused"
    ) in text
