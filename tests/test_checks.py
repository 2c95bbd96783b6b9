from __future__ import annotations

from keyfindings import Finding, KeyFindings, Paper, StudyType
from keyfindings.checks import align, check_findings, content_words, errors_only


def findings(**sections: list[Finding]) -> KeyFindings:
    base: dict[str, list[Finding]] = {
        "methodology": [],
        "results": [],
        "significance": [],
        "limitations": [],
    }
    base.update(sections)
    return KeyFindings(study_type=StudyType.RANDOMIZED_CONTROLLED_TRIAL, **base)


def codes(issues: list) -> list[str]:  # type: ignore[type-arg]
    return [i.code for i in issues]


def test_alignment_finds_the_supporting_sentence(rct: Paper) -> None:
    words = [content_words(s.text) for s in rct.sentences]
    result = align("Hypercalcaemia was not observed in any child.", words)
    assert result.evidence == [8] and result.coverage >= 0.5
    two = align(
        "The trial ran in 24 primary schools and infections occurred in 187 children.", words
    )
    assert set(two.evidence) == {3, 6}


def test_grounded_answer_passes_and_gets_evidence(rct: Paper) -> None:
    kf = findings(
        methodology=[Finding(text="A double-blind randomised trial in 24 primary schools.")],
        results=[
            Finding(text="Infections: 187 children (30.0%) vs 241 (38.6%); p = 0.002.", cited=[6])
        ],
        significance=[Finding(text="Vitamin D3 reduced respiratory infections in winter.")],
    )
    issues = check_findings(rct, kf)
    assert errors_only(issues) == [], issues
    assert kf.methodology[0].evidence == [3]
    assert 6 in kf.results[0].evidence


def test_invented_claim_is_ungrounded(review: Paper) -> None:
    kf = findings(
        methodology=[
            Finding(
                text="Researchers enrolled adult outpatients from clinics "
                "across Europe in a longitudinal registry."
            )
        ],
        significance=[
            Finding(
                text="Intervention trials are needed before probiotics "
                "can be recommended for depression."
            )
        ],
    )
    issues = errors_only(check_findings(review, kf))
    assert codes(issues) == ["ungrounded"]
    assert issues[0].section == "methodology"


def test_unsupported_number_is_an_error(rct: Paper) -> None:
    kf = findings(
        methodology=[Finding(text="A randomised trial of 1,300 children in 24 primary schools.")],
        results=[Finding(text="Infections occurred in 187 children (30.0%).")],
        significance=[Finding(text="Vitamin D3 reduced respiratory infections in winter.")],
    )
    issues = errors_only(check_findings(rct, kf))
    assert codes(issues) == ["unsupported_number"]
    assert "1300" in issues[0].message


def test_citations_checked_against_alignment(rct: Paper) -> None:
    kf = findings(
        methodology=[Finding(text="A randomised trial in 24 primary schools.", cited=[99])],
        results=[Finding(text="Hypercalcaemia was not observed.", cited=[1])],
        significance=[Finding(text="Vitamin D3 reduced respiratory infections in winter.")],
    )
    issues = check_findings(rct, kf)
    assert codes(errors_only(issues)) == ["bad_citation"]
    mismatch = [i for i in issues if i.code == "citation_mismatch"]
    assert mismatch and mismatch[0].severity == "warning"


def test_empty_section_the_abstract_covers(rct: Paper) -> None:
    kf = findings(
        methodology=[Finding(text="A randomised trial in 24 primary schools.")],
        significance=[Finding(text="Vitamin D3 reduced respiratory infections.")],
    )
    assert codes(errors_only(check_findings(rct, kf))) == ["empty_section"]


def test_empty_results_are_fine_for_a_review(review: Paper) -> None:
    kf = findings(
        methodology=[
            Finding(
                text="This review summarises evidence linking the gut microbiota to depression."
            )
        ]
    )
    assert errors_only(check_findings(review, kf)) == []


def test_lengths(rct: Paper) -> None:
    long_text = " ".join(["Vitamin D reduced infections in schoolchildren"] * 12)
    kf = findings(
        methodology=[Finding(text="We conducted a double-blind, placebo-controlled trial.")],
        significance=[Finding(text=long_text)],
        results=[Finding(text="Hypercalcaemia was not observed."), Finding(text="Infections.")],
    )
    issues = check_findings(rct, kf)
    assert codes(errors_only(issues)) == ["too_long"]
    assert [f.text for f in kf.results] == ["Hypercalcaemia was not observed."]  # stub dropped
    assert "filled" in codes(issues)


def test_a_field_s_only_finding_too_short_to_say_anything_gives_way_to_the_abstract(
    rct: Paper,
) -> None:
    kf = findings(
        methodology=[Finding(text="Randomised trial.")],
        results=[Finding(text="Hypercalcaemia was not observed.")],
        significance=[Finding(text="Daily vitamin D3 supplementation reduced infections.")],
    )
    issues = check_findings(rct, kf)
    assert errors_only(issues) == []
    assert kf.methodology[0].text.startswith("We conducted a double-blind")
    (filled,) = [i for i in issues if i.code == "filled"]
    assert "too short" in filled.message and filled.text == "Randomised trial."


def test_a_sentence_that_only_adds_a_number_is_evidence_too() -> None:
    from keyfindings.checks.alignment import align, content_words

    sentences = [
        "There are 71 previously untreated patients with primary lung cancer.",
        "Forty-five healthy individuals matching the lung cancer patients were recruited "
        "to take part in the study as a control group.",
    ]
    claim = "The study included 71 lung cancer patients and 45 healthy control subjects."
    assert align(claim, [content_words(s) for s in sentences]).evidence == [1, 2]


def test_all_empty_is_an_error(review: Paper) -> None:
    assert codes(check_findings(review, findings())) == ["empty_answer"]


def test_repeated_finding_is_an_error(rct: Paper) -> None:
    same = "Vitamin D3 reduced respiratory infections in winter."
    kf = findings(
        methodology=[Finding(text="A randomised trial in 24 primary schools.")],
        results=[Finding(text="Hypercalcaemia was not observed.")],
        significance=[Finding(text=same), Finding(text=same)],
    )
    issues = errors_only(check_findings(rct, kf))
    assert codes(issues) == ["repeated"] and issues[0].section == "significance"


def test_a_limitation_no_sentence_states_is_removed(rct: Paper) -> None:
    invented = "Vitamin D3 reduced respiratory infections in winter."
    stated = "The effect was modest and may not extend to children with adequate vitamin D."
    kf = findings(
        methodology=[Finding(text="A randomised trial in 24 primary schools.")],
        results=[Finding(text="Hypercalcaemia was not observed.")],
        significance=[Finding(text=invented)],
        limitations=[Finding(text=invented), Finding(text=stated)],
    )
    issues = check_findings(rct, kf)
    assert [f.text for f in kf.limitations] == [stated]
    [removed] = [i for i in issues if i.code == "removed_limitation"]
    assert removed.text == invented and removed.severity == "warning"
    assert errors_only(issues) == []


def test_sentences_that_say_a_section_is_empty_are_dropped() -> None:
    from keyfindings.schema import TextAnswer

    answer = TextAnswer(
        study_type="cohort",
        methodology="We followed 40 adults.",
        results="No adverse findings were reported in any group.",
        significance="It works.",
        limitations="The study did not report any limitations.",
    )
    findings = answer.to_findings()
    assert findings.limitations == []
    assert [f.text for f in findings.results] == ["No adverse findings were reported in any group."]
    for text in (
        "None.",
        "N/A",
        "No limitations stated in the abstract.",
        "Limitations were not stated.",
    ):
        assert (
            TextAnswer(
                study_type="other", methodology="", results="", significance="", limitations=text
            )
            .to_findings()
            .limitations
            == []
        )
