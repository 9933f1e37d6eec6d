"""The tags of an export's jobs: what ``Tags.of(scope).add`` applies, merged with ``tags=``.

Both constructs are ``ITaggableV2``: CDK's tag aspect sets tags on their ``TagManager`` as on any
taggable resource. The tags reach the jobs through a lazy value, read at synth after every aspect
ran, so a ``Tags.of(app).add(...)`` written after the construct counts too. ``tags=`` wins on a
clash. A tag from the aspect that Personalize would refuse (an ``aws:`` key, a character outside
its set, a key or value too long) is left off that export's jobs with the warning
``personalize-export:TagNotApplied`` (the bucket and every other resource still get it): one bad
app-wide tag must not fail every export. More than 200 tags in all fail the synth.

Tagging needs ``personalize:TagResource``: granted at construction when ``tags=`` is given, and
otherwise by an aspect that runs after CDK's tag aspects, only when some tag came from them. With
no tag anywhere the template is the same as without this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jsii
from aws_cdk import (
    Annotations,
    AspectPriority,
    Aspects,
    IAnyProducer,
    IAspect,
    IResolveContext,
    Lazy,
    TagManager,
    TagType,
)
from constructs import Construct, IConstruct

from personalize_export import validation

TAG_NOT_APPLIED = "personalize-export:TagNotApplied"
# After CDK's tag aspects (MUTATING or DEFAULT, by feature flag), before read-only ones.
GRANT_PRIORITY = (AspectPriority.DEFAULT + AspectPriority.READONLY) // 2


class ExportTags:
    """One export's tags: its tag manager (filled by CDK's tag aspect) and its ``tags=``."""

    def __init__(self, owner: Construct, given: Mapping[str, str] | None, resource_type: str):
        self.manager = TagManager(TagType.KEY_VALUE, resource_type)
        self.owner = owner
        self._given = dict(given or {})

    def merged(self) -> dict[str, str]:
        """The tags the jobs get: the applicable aspect tags, then ``tags=`` over them."""
        from_aspects = {
            key: value
            for key, value in self.manager.tag_values().items()
            if key not in self._given and not _refusal(key, value)
        }
        return {**from_aspects, **self._given}

    def rendered(self, key_name: str, value_name: str) -> Any:
        """The merged tags as [{key_name: k, value_name: v}], sorted by key; omitted when none."""

        def tag_list() -> list[dict[str, str]]:
            return [
                {key_name: key, value_name: value} for key, value in sorted(self.merged().items())
            ]

        return Lazy.uncached_any(_Producer(tag_list), omit_empty_array=True)

    def when_tagged_by_aspects(self, grant: Callable[[], None], *, at: IConstruct) -> None:
        """Once CDK's tag aspects ran: warn about every tag left off; call `grant` when some
        aspect tag reaches the jobs and ``tags=`` did not already make the owner grant it.

        at: a construct under the owner; the check runs on its default child, a leaf (an aspect
        visits every construct below where it is added, each visit a call from Node into
        Python). CDK applies aspects top-down, so the owner is tagged by then.
        """
        leaf = at.node.default_child or at
        Aspects.of(leaf).add(_AfterTags(self, grant), priority=GRANT_PRIORITY)

    def settle(self, grant: Callable[[], None]) -> None:
        for key, value in sorted(self.manager.tag_values().items()):
            refusal = _refusal(key, value) if key not in self._given else None
            if refusal:
                Annotations.of(self.owner).add_warning_v2(
                    TAG_NOT_APPLIED,
                    f"the tag {key!r} applied with Tags.of(...) is not set on the export jobs: "
                    f"{refusal}",
                )
        merged = self.merged()
        if len(merged) > validation.TAGS_MAX:
            Annotations.of(self.owner).add_error(
                f"{self.owner.node.path}: tags (with those from Tags.of) has {len(merged)} "
                f"entries; an export job takes at most {validation.TAGS_MAX}"
            )
        if merged and not self._given:
            grant()


def _refusal(key: str, value: str) -> str | None:
    problems = validation.check_tags({key: value})
    return "; ".join(problems) if problems else None


@jsii.implements(IAnyProducer)
class _Producer:
    def __init__(self, produce: Callable[[], object]) -> None:
        self._produce = produce

    def produce(self, context: IResolveContext) -> object:
        return self._produce()


@jsii.implements(IAspect)
class _AfterTags:
    """Added to a leaf: the one construct it visits is that leaf (jsii hands a construct created
    on the Node side to Python as a new object each time, so identity can't tell)."""

    def __init__(self, tags: ExportTags, grant: Callable[[], None]) -> None:
        self._tags = tags
        self._grant = grant
        self._done = False

    def visit(self, node: IConstruct) -> None:
        if self._done:
            return
        self._done = True
        self._tags.settle(self._grant)
