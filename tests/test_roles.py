"""Sentence roles, and the placement checks built on them."""

from __future__ import annotations

from keyfindings import Finding, KeyFindings, Paper, StudyType
from keyfindings.checks import check_findings, errors_only
from keyfindings.role_tagger import shipped_model
from keyfindings.roles import Role, role_of_label, roles_named, sentence_roles

UNLABELLED = Paper(
    id="u1",
    abstract=(
        "Falls are common in older adults and costly to health systems. "
        "We aimed to test whether a home exercise programme prevents falls. "
        "We randomly assigned 300 adults aged 70 or older to exercise or usual care. "
        "Falls were recorded for 12 months by monthly calendars. "
        "The fall rate was 0.8 per person-year with exercise and 1.3 with usual care "
        "(rate ratio 0.62; 95% CI 0.47-0.81; p < 0.001). "
        "Adverse events were rare in both groups (3% vs 2%). "
        "A home exercise programme reduced falls in older adults. "
        "The study was limited by its single-centre design and short follow-up."
    ),
)


def test_labels_decide_where_the_abstract_is_structured(rct: Paper) -> None:
    roles = sentence_roles(rct)
    assert [r.role for r in roles[:3]] == [Role.BACKGROUND, Role.BACKGROUND, Role.METHODS]
    assert all(r.certain for r in roles[:9])  # the last is a limitation by a soft cue
    assert roles[5].role == Role.RESULTS and roles[5].source == "label"
    assert roles[-1].role == Role.LIMITATION  # "may not extend to…" within CONCLUSIONS
    assert role_of_label("PATIENTS AND METHODS") == Role.METHODS
    assert role_of_label("MAIN RESULTS") == Role.RESULTS
    assert role_of_label("METHODS AND RESULTS") == Role.RESULTS  # the first part named wins
    assert roles_named("METHODS AND RESULTS") == {Role.METHODS, Role.RESULTS}


def test_the_model_reads_an_unlabelled_abstract_in_order() -> None:
    roles = [r.role for r in sentence_roles(UNLABELLED)]
    assert roles[0] in (Role.BACKGROUND, Role.OBJECTIVE)
    assert roles[2] == Role.METHODS
    assert roles[4] == Role.RESULTS
    assert roles[6] == Role.CONCLUSIONS
    assert roles[7] == Role.LIMITATION
    meta = shipped_model().meta
    assert meta["heldout"]["accuracy"] > meta["heldout_position_only"]["accuracy"]


def kf(**sections: list[str]) -> KeyFindings:
    base = {
        name: [Finding(text=t) for t in sections.get(name, [])]
        for name in ("methodology", "results", "significance", "limitations")
    }
    return KeyFindings(study_type=StudyType.RANDOMIZED_CONTROLLED_TRIAL, **base)


def test_a_background_sentence_under_results_is_an_error(rct: Paper) -> None:
    findings = kf(
        methodology=["A double-blind randomised trial in 24 primary schools."],
        results=["Respiratory infections are a leading cause of school absence in winter."],
        significance=["Daily vitamin D3 supplementation reduced respiratory infections."],
    )
    [issue] = errors_only(check_findings(rct, findings))
    assert issue.code == "wrong_section" and issue.section == "results"
    assert "S1 is background" in issue.message and "S6" in issue.message


def test_a_methods_sentence_under_results_moves_and_a_results_sentence_stands_in(
    rct: Paper,
) -> None:
    findings = kf(
        methodology=["A double-blind randomised trial in 24 primary schools."],
        results=[
            "The primary outcome was the number of laboratory-confirmed respiratory "
            "infections per child."
        ],
        significance=["Daily vitamin D3 supplementation reduced respiratory infections."],
    )
    issues = check_findings(rct, findings)
    assert findings.methodology[1].text.startswith("The primary outcome")
    assert findings.results[0].evidence == [6]  # the first results sentence with numbers
    assert errors_only(issues) == []


def test_a_finding_moves_to_the_field_its_evidence_certainly_belongs_to(rct: Paper) -> None:
    findings = kf(
        methodology=["A double-blind randomised trial in 24 primary schools."],
        results=[
            "Infections occurred in 187 children (30.0%) and 241 children (38.6%).",
            "Daily vitamin D3 supplementation reduced respiratory infections in schoolchildren.",
        ],
        significance=[],
    )
    issues = check_findings(rct, findings)
    assert [f.text[:5] for f in findings.significance] == ["Daily"]
    assert len(findings.results) == 1
    assert [i.code for i in issues if i.code == "moved"] == ["moved"]
    assert errors_only(issues) == []


def test_fragments_and_study_type_are_mended_and_said(rct: Paper) -> None:
    findings = kf(
        methodology=["double-blind trial of vitamin D in many schools"],
        results=["Hypercalcaemia was not observed."],
        significance=["Daily vitamin D3 supplementation reduced respiratory infections."],
    )
    findings.study_type = StudyType.COHORT
    issues = check_findings(rct, findings)
    assert errors_only(issues) == []
    assert findings.methodology[0].text == "Double-blind trial of vitamin D in many schools"
    assert findings.study_type == StudyType.RANDOMIZED_CONTROLLED_TRIAL
    assert {i.code for i in issues} >= {"completed", "study_type"}


def test_a_fields_only_finding_moves_and_the_abstracts_own_sentence_stands_in(
    rct: Paper,
) -> None:
    findings = kf(
        methodology=["A double-blind randomised trial in 24 primary schools."],
        results=["Hypercalcaemia was not observed."],
        significance=["School absence fell by 1.4 days per child (95% CI 0.6-2.2)."],
    )
    issues = check_findings(rct, findings)
    assert [f.text[:12] for f in findings.results] == ["Hypercalcaem", "School absen"]
    assert findings.significance[0].text.startswith("Daily vitamin D3 supplementation")
    assert findings.significance[0].evidence == [9]
    assert sorted(i.code for i in issues if i.code in ("moved", "filled")) == ["filled", "moved"]
    assert errors_only(issues) == []


def test_a_lower_case_piece_of_a_sentence_becomes_the_sentence(rct: Paper) -> None:
    findings = kf(
        methodology=["double-blind, placebo-controlled randomised trial in 24 primary schools."],
        results=["Hypercalcaemia was not observed."],
        significance=["Daily vitamin D3 supplementation reduced respiratory infections."],
    )
    issues = check_findings(rct, findings)
    assert findings.methodology[0].text.startswith("We conducted a double-blind")
    assert [i.code for i in issues if i.code == "completed"] == ["completed"]
    assert errors_only(issues) == []


def test_a_sentence_that_reports_a_finding_is_never_methods() -> None:
    paper = Paper(
        id="u2",
        abstract=(
            "Depression and somatic symptoms often occur together in community adults. "
            "We followed 1,200 adults for 7 years and measured symptoms every 2 years. "
            "Gender-stratified multiple regression analyses revealed that baseline depression "
            "scores were the best predictors of later somatic symptoms in both sexes. "
            "Of 83 patients examined by cystoscopy, 26 were found to have a tumour. "
            "Differences were considered significant at p < 0.05 and were analysed by t tests. "
            "Depression predicts somatic symptoms."
        ),
    )
    roles = sentence_roles(paper)
    assert roles[2].role == Role.RESULTS and roles[2].certain
    assert roles[3].role == Role.RESULTS
    assert roles[4].source != "cue"  # a method that mentions significance keeps its tag
