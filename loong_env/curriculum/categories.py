"""What a curriculum category is: a key function over datapoints, and sources that make items of a category.

A category is a string. By default it is `"<domain>/d<difficulty>"` (`"<domain>/d?"` when a datapoint has
no difficulty), so the arms of the bandit are (domain x difficulty); any function from a DataPoint to a
string works instead (a tag, a topic, a source file).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from loong_env.errors import ConfigError
from loong_env.types import DataPoint

CategoryKey = Callable[[DataPoint], str]
UNKNOWN_DIFFICULTY = "?"


def domain_difficulty(datapoint: DataPoint) -> str:
    """The default category key: `"<domain>/d<difficulty>"`, e.g. `"logic/d3"` (`"logic/d?"` if unrated)."""
    level = UNKNOWN_DIFFICULTY if datapoint.difficulty is None else str(datapoint.difficulty)
    return f"{datapoint.domain}/d{level}"


def split_domain_difficulty(category: str) -> tuple[str, int | None]:
    """The (domain, difficulty) a default-key category names; the inverse of `domain_difficulty`."""
    domain, sep, level = category.rpartition("/d")
    if not sep or not domain or not (level == UNKNOWN_DIFFICULTY or level.isdigit()):
        raise ConfigError(
            f"category {category!r} is not of the form '<domain>/d<difficulty>' (e.g. 'logic/d3')"
        )
    return domain, None if level == UNKNOWN_DIFFICULTY else int(level)


@runtime_checkable
class CategorySource(Protocol):
    """A source the curriculum can ask for more items of one category (e.g. generators by domain x level).

    `categories()` lists what it can make; `generate_for(category, n)` returns up to n new datapoints of
    that category (fewer, even none, when its attempts run out). Items it returns are filed under the
    curriculum's key of each item, so they should carry the domain and difficulty the category names.
    """

    def categories(self) -> list[str]: ...

    async def generate_for(self, category: str, n: int) -> list[DataPoint]: ...
