"""Meaning, not only words: a finding must agree with the sentences that support it.

Grounding proves a finding's words occur in the abstract; these rules catch the changes that keep
the words and flip the meaning — a number moved to another measure or group, a direction turned
round, a "not" added or dropped, a hedge turned into certainty, two groups traded, a subgroup's
result stated for everyone. Each rule binds a marker (number, direction word, negation, hedge) to
the content words around it and compares like with like; where the words give no ground to
compare, the rule stays silent rather than guess.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from difflib import SequenceMatcher

from keyfindings.checks.alignment import STOPWORDS
from keyfindings.checks.context import Claim, Problem, SentenceView
from keyfindings.checks.lexicon import (
    CAUSAL_PARTICLE,
    CERTAINTY,
    COMPARATIVE,
    GENERIC_SCOPE,
    HEDGE,
    NEGATION,
    NOT_NEGATION_AFTER,
    NOT_NEGATION_BEFORE,
    Axis,
    directions,
)
from keyfindings.checks.tokens import Token, window
from keyfindings.numbers import word_numbers
from keyfindings.roles import Role
from keyfindings.schema import IssueCode

_ASSOCIATION = ("associ", "link", "relat", "correl")
_ASKING = frozenset({Role.OBJECTIVE, Role.METHODS, Role.BACKGROUND})
_EITHER = frozenset({"or", "and", "to", "nor", "vs", "versus"})
_CONTRAST = frozenset({"while", "whereas", "but", "unlike"})
_SCOPE_OPENERS = frozenset({"in", "among", "for", "within", "amongst"})
# A finding that shares this much with one sentence is a copy of it, and is held to its details.
_COPY = 0.8


def _word(tokens: list[Token], i: int) -> str:
    return tokens[i].text if 0 <= i < len(tokens) and tokens[i].kind == "word" else ""


def _is_negation(tokens: list[Token], i: int) -> bool:
    word = _word(tokens, i)
    if not word or not NEGATION.match(word):
        return False
    if _word(tokens, i + 1) in NOT_NEGATION_AFTER.get(word, ()):
        return False
    return not (word == "not" and _word(tokens, i - 1) in NOT_NEGATION_BEFORE)


def _is_certain(tokens: list[Token], i: int) -> bool:
    word = _word(tokens, i)
    if not word or not CERTAINTY.match(word):
        return False
    particle = CAUSAL_PARTICLE.get(word)
    return particle is None or _word(tokens, i + 1) == particle


def _is_hedge(tokens: list[Token], i: int) -> bool:
    word = _word(tokens, i)
    return bool(word) and bool(HEDGE.match(word))


def _stems(tokens: list[Token], indices: Iterable[int]) -> set[str]:
    return {tokens[j].stem for j in indices}


def _measure(tokens: list[Token], i: int, axes: set[Axis]) -> tuple[str, str, set[str]]:
    """What a direction word at ``i`` speaks about: the content word just before it (the
    measure of "HbA1c fell"), the one just after it (of "a high success rate"), and all within
    three words (words moving along the same axes left out: they are what a flip changes)."""
    around = [
        j for j in window(tokens, i, 3, 3) if not axes & {a for a, _ in directions(tokens[j].text)}
    ]
    before = next((tokens[j].stem for j in around if j < i), "")
    after = next((tokens[j].stem for j in around if j > i), "")
    return before, after, {tokens[j].stem for j in around}


def _overlap(a: tuple[str, str, set[str]], b: tuple[str, str, set[str]]) -> int:
    """How surely two direction words speak of the same measure: the word before binds most."""
    before = bool(a[0]) and a[0] == b[0]
    after = bool(a[1]) and a[1] == b[1]
    return 3 * before + 2 * after + len(a[2] & b[2])


def _quote(tokens: list[Token], i: int, before: int = 3, after: int = 3) -> str:
    lo, hi = max(0, i - before), min(len(tokens), i + after + 1)
    return " ".join(t.text for t in tokens[lo:hi] if t.kind != "sep")


def _scope(tokens: list[Token], i: int) -> set[str]:
    """What a negation at ``i`` denies: the words after it, else (in "… were not") before."""
    for before, after in ((0, 4), (3, 0)):
        words = {
            tokens[j].stem for j in window(tokens, i, before, after) if tokens[j].kind == "word"
        }
        if words:
            return words
    return set()


def _negated_near(tokens: list[Token], words: set[str]) -> bool:
    """Does a negation in ``tokens`` speak about any of ``words``?"""
    return any(_is_negation(tokens, j) and _scope(tokens, j) & words for j in range(len(tokens)))


def _count(tokens: list[Token], test: Callable[[list[Token], int], bool]) -> int:
    return sum(test(tokens, i) for i in range(len(tokens)))


# ---- negation -----------------------------------------------------------------------------


def negation(claim: Claim) -> list[Problem]:
    """A "not" the evidence lacks, or a "not" of the evidence the finding drops."""
    source = claim.primary
    if source is None:
        return []
    for i in range(len(claim.tokens)):
        if not _is_negation(claim.tokens, i):
            continue
        scope = _scope(claim.tokens, i)
        if scope & source.stems and not _negated_near(source.tokens, scope):
            return [
                Problem(
                    IssueCode.CONTRADICTS,
                    f'it says "{_quote(claim.tokens, i, 1)}", but S{source.number} states this '
                    "without a negation; do not negate what the abstract affirms",
                )
            ]
    for j in range(len(source.tokens)):
        if _is_negation(source.tokens, j) and _drops(claim, source.tokens, j):
            return [
                Problem(
                    IssueCode.CONTRADICTS,
                    f'S{source.number} says "{_quote(source.tokens, j, 1, 4)}"; the finding '
                    "drops that negation and so says the opposite",
                )
            ]
    return _negation_count(claim, source)


def _drops(claim: Claim, tokens: list[Token], j: int) -> bool:
    """Does the finding say what the negation at ``j`` denies, without denying it?"""
    scope = _scope(tokens, j)
    shared = scope & claim.stems
    if not scope or len(shared) < min(2, len(scope)):
        return False
    # What the negation is said of must be in the finding too, or this is another clause.
    subject = _stems(tokens, window(tokens, j, 1, 0))
    if subject and not subject & claim.stems:
        return False
    return not _negated_near(claim.tokens, shared)


def _negation_count(claim: Claim, source: SentenceView) -> list[Problem]:
    """A copy of a sentence negates as often as the sentence ("not no adverse events")."""
    if not claim.covers(source, _COPY):
        return []
    ours, theirs = _count(claim.tokens, _is_negation), _count(source.tokens, _is_negation)
    # A finding that joins sentences may carry the others' negations too.
    available = sum(_count(s.tokens, _is_negation) for s in claim.evidence)
    whole = source.stems <= claim.stems  # every word kept: only a negation went
    if ours > max(theirs, available) or (whole and ours < theirs):
        return [
            Problem(
                IssueCode.CONTRADICTS,
                f"it negates {ours} time(s) where S{source.number} negates {theirs} time(s); "
                "keep every negation the abstract states, and add none",
            )
        ]
    return []


# ---- direction ----------------------------------------------------------------------------


def _both_ways(tokens: list[Token], i: int, moves: frozenset[tuple[Axis, int]]) -> bool:
    """Is the word one end of a pair that names both directions ("high- or low-risk",
    "increase or decrease")? Such a pair states no direction."""
    opposite = {(axis, -sign) for axis, sign in moves}
    for j in (i - 2, i + 2):
        joined = 0 <= j < len(tokens) and _word(tokens, (i + j) // 2) in _EITHER
        if joined and directions(_word(tokens, j)) & opposite:
            return True
    return False


def polarity(claim: Claim) -> list[Problem]:
    """Each direction word of the finding must match the evidence's for the same measure."""
    found = [
        (s, j, directions(t.text))
        for s in claim.evidence
        for j, t in enumerate(s.tokens)
        if t.kind == "word" and directions(t.text)
    ]
    for i, token in enumerate(claim.tokens):
        moves = directions(token.text) if token.kind == "word" else frozenset()
        if not moves or _both_ways(claim.tokens, i, moves):
            continue
        if not found:
            cited = ", ".join(f"S{s.number}" for s in claim.evidence)
            return (
                [
                    Problem(
                        IssueCode.UNSTATED_DIRECTION,
                        f'it says "{_quote(claim.tokens, i, 2, 2)}", but {cited} state no '
                        "increase, decrease or difference; do not add a direction",
                    )
                ]
                if claim.evidence
                else []
            )
        axes = {axis for axis, _ in moves}
        measure = _measure(claim.tokens, i, axes)
        scored = [
            (_overlap(measure, _measure(s.tokens, j, axes)), theirs, s, j)
            for s, j, theirs in found
            if axes & {axis for axis, _ in theirs}
        ]
        if not scored:
            continue
        best = max(score for score, *_ in scored)
        top = [entry for entry in scored if entry[0] == best]
        if any(moves & theirs for _, theirs, *_ in top):
            continue
        _, _, s, j = top[0]
        return [
            Problem(
                IssueCode.CONTRADICTS,
                f'it says "{_quote(claim.tokens, i, 2, 2)}", but S{s.number} says '
                f'"{_quote(s.tokens, j, 2, 2)}": the direction is reversed',
            )
        ]
    return []


# ---- certainty ----------------------------------------------------------------------------


def _asks(view: SentenceView) -> bool:
    return view.role is not None and view.role.role in _ASKING


def certainty(claim: Claim) -> list[Problem]:
    """A finding may be as certain as its evidence, or less; never more."""
    # The sentence the finding restates: an objective's "relationship between" elsewhere in the
    # evidence is the question asked, not a hedge on this finding.
    source = claim.primary
    # Certainty is a property of claims: a methods line or an objective ("to test the hypothesis
    # that", "the relationship between") asks, it does not hedge.
    if source is None or claim.section == "methodology" or _asks(source):
        return []
    hedges = [(source, j) for j in range(len(source.tokens)) if _is_hedge(source.tokens, j)]
    return _certainty_added(claim, hedges) or _hedge_dropped(claim, hedges)


def _certainty_added(claim: Claim, hedges: list[tuple[SentenceView, int]]) -> list[Problem]:
    stated = {
        s.tokens[j].text[:4]
        for s in claim.evidence
        for j in range(len(s.tokens))
        if _is_certain(s.tokens, j)
    }
    for i in range(len(claim.tokens)):
        if not _is_certain(claim.tokens, i) or claim.tokens[i].text[:4] in stated:
            continue
        word = _quote(claim.tokens, i, 0, 1)
        if not hedges:
            return [
                Problem(
                    IssueCode.CERTAINTY_ADDED,
                    f'"{word}" is not in the evidence; check it is no stronger than the abstract',
                    "warning",
                )
            ]
        s, j = hedges[0]
        return [
            Problem(
                IssueCode.OVERSTATED,
                f'"{word}" is more certain than S{s.number}, which says '
                f'"{_quote(s.tokens, j, 1, 2)}"; keep the abstract\'s hedge',
            )
        ]
    return []


def _hedge_dropped(claim: Claim, hedges: list[tuple[SentenceView, int]]) -> list[Problem]:
    """A hedge of the evidence whose words the finding repeats without any hedge near them."""
    ours = [i for i in range(len(claim.tokens)) if _is_hedge(claim.tokens, i)]
    for s, j in hedges:
        before = 2 if s.tokens[j].text.startswith(_ASSOCIATION) else 0
        scope = {
            s.tokens[k].stem for k in window(s.tokens, j, before, 3) if s.tokens[k].kind == "word"
        }
        shared = scope & claim.stems
        if not scope or len(shared) < min(2, len(scope)):
            continue
        if any(_stems(claim.tokens, window(claim.tokens, i, 3, 4)) & shared for i in ours):
            continue
        return [
            Problem(
                IssueCode.OVERSTATED,
                f'S{s.number} hedges this ("{_quote(s.tokens, j, 1, 3)}"); the finding '
                "states it as certain; keep the hedge",
            )
        ]
    return []


# ---- numbers in their places ----------------------------------------------------------------


def _neighbours(tokens: list[Token], i: int) -> tuple[str, str]:
    """The word or symbol on each side of a number (a number beside it reads as "#")."""

    def near(step: int) -> str:
        j = i + step
        while 0 <= j < len(tokens) and tokens[j].kind == "sep":
            j += step
        if not 0 <= j < len(tokens):
            return ""
        return "#" if tokens[j].kind == "num" else tokens[j].text

    return near(-1), near(1)


def _fit(a: tuple[str, str], b: tuple[str, str]) -> int:
    return sum(x not in ("", "#") and x == y for x, y in zip(a, b, strict=True))


def _first_out_of_order(values: list[str], view: SentenceView) -> tuple[str, str] | None:
    """The first pair of ``values`` that ``view`` states in the other order, if any."""
    stated = [t.text for t in view.tokens if t.kind == "num"]
    pos = -1
    for k, value in enumerate(values):
        nxt = next((p for p in range(pos + 1, len(stated)) if stated[p] == value), None)
        if nxt is None:
            return (values[k - 1], value) if k else None
        pos = nxt
    return None


def number_binding(claim: Claim) -> list[Problem]:
    """Numbers stay in their own sentence, order, measure and group."""
    numbers = [(i, t.text) for i, t in enumerate(claim.tokens) if t.kind == "num"]
    source = claim.primary
    if not numbers or source is None:
        return []
    return (
        _foreign_numbers(claim, source, numbers)
        or _number_order(claim, numbers)
        or _rebound_numbers(claim, numbers)
    )


def _foreign_numbers(
    claim: Claim, source: SentenceView, numbers: list[tuple[int, str]]
) -> list[Problem]:
    """A number from outside the evidence, or, in a copy of one sentence, from another one."""
    stated = frozenset().union(*(s.numbers for s in claim.evidence))
    copy = claim.covers(source, _COPY)
    for i, value in numbers:
        if value not in claim.paper_numbers or value in source.numbers:
            continue
        if value in stated and not copy:
            continue
        homes = [s for s in claim.sentences if value in s.numbers]
        if any(_brought_along(claim.tokens, i, s) for s in homes):
            continue  # taken with its own words from another sentence ("71 lung cancer patients")
        home = f"S{homes[0].number}" if homes else ""
        return [
            Problem(
                IssueCode.MISPLACED_NUMBER,
                f"{value} comes from {home}, but the claim restates S{source.number}; "
                "keep each number with the measure it belongs to",
            )
        ]
    return []


def _brought_along(tokens: list[Token], i: int, home: SentenceView) -> bool:
    """Does the number at ``i`` keep, in the finding, a word it has beside it in ``home``?"""
    ours = _neighbours(tokens, i)
    for j, t in enumerate(home.tokens):
        if t.kind == "num" and t.text == tokens[i].text:
            theirs = _neighbours(home.tokens, j)
            if any(a == b and _telling(a) for a, b in zip(ours, theirs, strict=True)):
                return True
    return False


def _telling(word: str) -> bool:
    """A word that names something ("patients", "carriers"), not "of" or "and"."""
    return word.isalpha() and len(word) > 2 and word not in STOPWORDS


def _number_order(claim: Claim, numbers: list[tuple[int, str]]) -> list[Problem]:
    for s in claim.evidence:
        ours = [v for _, v in numbers if any(t.text == v for t in s.tokens if t.kind == "num")]
        if len(set(ours)) < 2:
            continue
        swapped = _first_out_of_order(ours, s)
        if swapped and not all(_keeps_place(claim, s, numbers, v) for v in swapped):
            return [
                Problem(
                    IssueCode.MISPLACED_NUMBER,
                    f"it gives {swapped[0]} before {swapped[1]}, but S{s.number} states them in "
                    "the other order; keep each number with its own measure and group",
                )
            ]
    return []


def _keeps_place(
    claim: Claim, view: SentenceView, numbers: list[tuple[int, str]], value: str
) -> bool:
    """Did the number move with its phrase — two words each side unchanged ("from March 2007
    to January", put at the end of the sentence, is the same statement)?"""
    ours = [_context(claim.tokens, i) for i, v in numbers if v == value]
    theirs = [_context(view.tokens, j) for j, t in enumerate(view.tokens) if t.text == value]
    return any(_agree(a, b) for a in ours for b in theirs)


def _context(tokens: list[Token], i: int, width: int = 2) -> tuple[list[str], list[str]]:
    words = [(k, t.text) for k, t in enumerate(tokens) if t.kind != "sep"]
    at = next(n for n, (k, _) in enumerate(words) if k == i)
    left = [w for _, w in words[max(0, at - width) : at]]
    right = [w for _, w in words[at + 1 : at + 1 + width]]
    return left[::-1], right


def _agree(a: tuple[list[str], list[str]], b: tuple[list[str], list[str]]) -> bool:
    """Same words on both sides, as far as both texts have words there."""
    return all(
        x[: min(len(x), len(y))] == y[: min(len(x), len(y))] for x, y in zip(a, b, strict=True)
    )


def _rebound_numbers(claim: Claim, numbers: list[tuple[int, str]]) -> list[Problem]:
    """A number standing between the words that, in the evidence, surround another number."""
    places = [
        (s, t.text, _neighbours(s.tokens, j))
        for s in claim.evidence
        for j, t in enumerate(s.tokens)
        if t.kind == "num"
    ]
    for i, value in numbers:
        ours = _neighbours(claim.tokens, i)
        own = max((_fit(ours, p) for _, v, p in places if v == value), default=None)
        if own is None:
            continue
        rivals = [(_fit(ours, p), s, v) for s, v, p in places if v != value]
        fit, s, other = max(rivals, key=lambda r: r[0], default=(0, None, ""))
        if s is not None and fit == 2 and own < 2:
            return [
                Problem(
                    IssueCode.MISPLACED_NUMBER,
                    f"{value} stands where S{s.number} has {other}; keep each number "
                    "with its own measure and group",
                )
            ]
    return []


# ---- exchanged groups ---------------------------------------------------------------------


def _names(tokens: list[Token]) -> tuple[str, ...]:
    return tuple(
        sorted(t.stem for t in tokens if (t.content and t.kind == "word") or t.text == "non")
    )


def swaps(claim: Claim) -> list[Problem]:
    """Two groups (arms, sexes, drugs) traded places around what was said of each.

    The finding is aligned word by word with the sentence it restates. Words that left one
    place and arrived at another moved; a move across "than"/"versus"/"compared", or two
    stretches that took each other's places with a number between them, changes who the result
    is about. A list reordered ("age and sex") or a passive turned active ("pain was reduced by
    walking" → "walking reduced pain") moves words across neither, and is left alone.
    """
    source = claim.primary
    if source is None or not claim.covers(source, _COPY):
        return []
    theirs = [t for t in source.tokens if t.kind != "sep"]
    ours = [t for t in claim.tokens if t.kind != "sep"]
    ops = SequenceMatcher(
        None, [t.text for t in theirs], [t.text for t in ours], autojunk=False
    ).get_opcodes()
    removed = {
        i1: (_names(theirs[i1:i2]), i2)
        for tag, i1, i2, _, _ in ops
        if tag != "equal" and tag != "insert"
    }
    added = {i1: _names(ours[j1:j2]) for tag, i1, _, j1, j2 in ops if tag in ("replace", "insert")}
    kept = {k for tag, i1, i2, _, _ in ops if tag == "equal" for k in range(i1, i2)}
    respectively = any(t.text == "respectively" for t in theirs)
    for start, (names, end) in removed.items():
        for at, landed in added.items():
            if not names or names != landed or at == start:
                continue
            # Two stretches that took each other's places ("men … women" → "women … men"), or
            # one stretch moving across a few words (the other group) — not across a whole
            # clause ("in women" moved to the front) — with a comparison or a number between.
            exchanged = bool(added.get(start)) and removed.get(at, ((), 0))[0] == added[start]
            # Only words both texts keep count as crossed: a stretch reworded on the way
            # ("prospectively collected" → "prospective collection of") crosses nothing.
            crossed = [theirs[k] for k in range(min(start, at), max(end, at)) if k in kept]
            passed = [t for t in crossed if t.content and t.kind == "word" and not _compares(t)]
            short = len(passed) <= 2
            # Exchanged names (not whole clauses) also matter across "while", or in a list
            # that "respectively" ties to its numbers.
            moved = theirs[start:end]
            names_only = len(names) <= 2 and not any(directions(t.text) for t in moved)
            contrasted = (
                exchanged
                and names_only
                and (respectively or any(t.text in _CONTRAST for t in crossed))
            )
            # A number carried across a name now belongs to the other group.
            carried = short and bool(passed) and any(t.kind == "num" for t in moved)
            if (exchanged or short) and (_across(crossed) or contrasted or carried):
                return [
                    Problem(
                        IssueCode.SWAPPED,
                        f'it moves "{" ".join(t.text for t in moved)}" to another place than '
                        f"S{source.number} gives it, so a result changes group; keep each result "
                        "with its own group",
                    )
                ]
    return []


def _compares(token: Token) -> bool:
    return token.kind == "word" and bool(COMPARATIVE.match(token.text))


def _across(crossed: list[Token]) -> bool:
    return any(t.kind == "num" or _compares(t) for t in crossed)


# ---- subgroup stated for everyone ---------------------------------------------------------


def _qualifier(view: SentenceView) -> tuple[set[str], str]:
    """The opening "In women aged 65 or more," / "Among smokers," of a sentence: its
    distinctive words, and the phrase."""
    tokens = view.tokens
    if not tokens or tokens[0].text not in _SCOPE_OPENERS:
        return set(), ""
    end = next((k for k, t in enumerate(tokens[:20]) if t.text == ","), None)
    if end is None:
        return set(), ""
    phrase = [
        u
        for u in tokens[1:end]
        if u.kind == "num"
        or word_numbers(u.text)  # "For two patients,"
        or (u.content and not GENERIC_SCOPE.match(u.text))
    ]
    return {u.stem for u in phrase}, " ".join(t.text for t in tokens[:end])


def _states(tokens: list[Token], qualifier: set[str]) -> bool:
    """Does the text name the subgroup: most of its words soon after "in"/"among"/"for"?"""
    need = max(1, len(qualifier) // 2)
    return any(
        t.text in _SCOPE_OPENERS
        and len(qualifier & {u.stem for u in tokens[i + 1 : i + 13]}) >= need
        for i, t in enumerate(tokens)
    )


def scope(claim: Claim) -> list[Problem]:
    """A result the abstract gives for a subgroup must not be stated for everyone."""
    source = claim.primary
    if source is None:
        return []
    qualifier, phrase = _qualifier(source)
    rest = source.stems - qualifier
    if not qualifier or not rest or _states(claim.tokens, qualifier):
        return []
    if len(rest & claim.stems) < 0.6 * len(rest):
        return []
    return [
        Problem(
            IssueCode.SCOPE_DROPPED,
            f'S{source.number} says this only "{phrase}"; say whom the result is about',
        )
    ]


RULES = (number_binding, polarity, negation, certainty, swaps, scope)
