"""Generators by curriculum category: the curriculum asks for more of a category instead of starving.

    gens = CategoryGenerators.by_difficulty(seeds, lambda s: FewShotGenerator(s, client, keep_for(s)))
    sampler = CurriculumSampler(gens)      # categories "<domain>/d<level>", items made on demand

`by_difficulty` makes one generator per (domain, difficulty) present in the seeds, shown only the seeds of
that domain and level, so what it writes imitates that level; its items are labelled with the level
(metadata `difficulty_from: "demonstrations"`), since a generated problem has no rating of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from loong_env.curriculum.categories import domain_difficulty, split_domain_difficulty
from loong_env.errors import ConfigError, UnknownNameError
from loong_env.generators.base import BaseGenerator, CandidateGenerator
from loong_env.types import DataPoint


class CategoryGenerators:
    """A CategorySource made of one generator per category.

    Args:
        generators: category -> the generator that makes items of it.
        attempts_per_item: an LLM generator gets at most this many attempts per requested item, so a
            category the model cannot write for ends with fewer items instead of looping forever.
    """

    def __init__(self, generators: Mapping[str, BaseGenerator], *, attempts_per_item: int = 4) -> None:
        if not generators:
            raise ConfigError("CategoryGenerators needs at least one category -> generator")
        self.generators = dict(generators)
        self.attempts_per_item = attempts_per_item

    @classmethod
    def by_difficulty(
        cls,
        seeds: Sequence[DataPoint],
        make: Callable[[list[DataPoint]], BaseGenerator],
        **kwargs: int,
    ) -> CategoryGenerators:
        """One generator per "<domain>/d<level>" of `seeds`, made by `make(seeds of that category)`."""
        groups: dict[str, list[DataPoint]] = {}
        for dp in seeds:
            groups.setdefault(domain_difficulty(dp), []).append(dp)
        return cls({category: make(items) for category, items in sorted(groups.items())}, **kwargs)

    def categories(self) -> list[str]:
        """The categories it can make items of."""
        return sorted(self.generators)

    async def generate_for(self, category: str, n: int) -> list[DataPoint]:
        """Up to n new items of `category` (fewer when its generator's attempts run out)."""
        generator = self.generators.get(category)
        if generator is None:
            raise UnknownNameError("category", category, self.generators)
        if isinstance(generator, CandidateGenerator):
            made = await generator.generate(n, max_attempts=n * self.attempts_per_item)
        else:
            made = await generator.generate(n)
        return [_label(dp, category) for dp in made]

    async def close(self) -> None:
        """Close every generator (their background tasks, if any)."""
        for generator in self.generators.values():
            await generator.close()


def _label(dp: DataPoint, category: str) -> DataPoint:
    """Give an unrated item the level its category names (categories of the default key only)."""
    if dp.difficulty is not None:
        return dp
    try:
        domain, level = split_domain_difficulty(category)
    except ConfigError:
        return dp
    if level is None or domain != dp.domain:
        return dp
    metadata = {**dp.metadata, "difficulty_from": "demonstrations"}
    return dp.model_copy(update={"difficulty": level, "metadata": metadata})
