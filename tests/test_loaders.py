from __future__ import annotations

import json
from pathlib import Path

import pytest

from keyfindings import AbstractError, InputError, LoaderError, Paper, iter_papers, load_papers
from tests.conftest import FIXTURES


def test_pubmed_xml_structured_abstract_and_metadata() -> None:
    items = list(iter_papers(FIXTURES / "pubmed_set.xml"))
    paper = items[0]
    assert isinstance(paper, Paper)
    assert paper.id == "pmid-90000001"
    assert paper.doi == "10.5555/jep.2024.001"
    assert paper.year == 2024
    assert paper.journal == "Journal of Example Paediatrics"
    assert paper.authors == ["Ana Pereira", "Tom Okafor", "Example Schools Trial Group"]
    assert paper.keywords == ["schoolchildren", "Vitamin D", "Respiratory Tract Infections"]
    assert paper.abstract.startswith("BACKGROUND: Respiratory infections")
    assert "vitamin D3 daily (n = 624)" in paper.abstract
    assert "95% CI 0.66-0.91" in paper.abstract  # en dash entity normalised
    labels = [s.label for s in paper.sentences]
    assert labels[0] == "BACKGROUND" and labels[-1] == "CONCLUSIONS"
    assert len(paper.sentences) == 10
    assert {"1248", "0.78", "0.002", "0.66", "0.91"} <= paper.numbers


def test_pubmed_xml_markup_in_title_and_abstract() -> None:
    paper = list(iter_papers(FIXTURES / "pubmed_set.xml"))[1]
    assert isinstance(paper, Paper)
    assert paper.title == "Growth of E. coli at 10^6 cells/mL under <1% oxygen"
    assert paper.year == 2022
    assert "hypoxia (<1% O2) for 48 h" in paper.abstract
    assert "106" not in paper.numbers
    assert [s.text for s in paper.sentences][2] == (
        "Expression of 12 stress genes rose, as shown in Fig. 2 and by Smith et al."
    )


def test_pubmed_article_without_abstract_is_reported_not_fatal() -> None:
    items = list(iter_papers(FIXTURES / "pubmed_set.xml"))
    assert isinstance(items[2], AbstractError)
    assert "PMID 90000003" in str(items[2]) and "empty" in str(items[2])


def test_xml_entity_expansion_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xml"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;">]><PubmedArticleSet>&b;</PubmedArticleSet>'
    )
    with pytest.raises(LoaderError, match="not safe"):
        list(iter_papers(bomb))


def test_xml_external_entity_is_refused(tmp_path: Path) -> None:
    xxe = tmp_path / "xxe.xml"
    xxe.write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        "<PubmedArticleSet><x>&e;</x></PubmedArticleSet>"
    )
    # "not safe" is defusedxml's refusal: the standard parser would fail differently (or read
    # the file), so this also fails if the loader stopped using defusedxml.
    with pytest.raises(LoaderError, match="not safe"):
        list(iter_papers(xxe))


def test_not_pubmed_xml(tmp_path: Path) -> None:
    other = tmp_path / "other.xml"
    other.write_text("<root><a>1</a></root>")
    with pytest.raises(LoaderError, match="no PubmedArticle"):
        list(iter_papers(other))


def test_jsonl_reports_bad_lines_and_keeps_going(tmp_path: Path) -> None:
    rct = json.loads((FIXTURES / "rct.json").read_text())
    path = tmp_path / "in.jsonl"
    path.write_text(
        json.dumps(rct)
        + "\n\n{broken\n"
        + json.dumps({"abstract": "too short"})
        + "\n"
        + json.dumps(["not", "an", "object"])
        + "\n"
    )
    items = list(iter_papers(path))
    assert isinstance(items[0], Paper)
    assert isinstance(items[1], LoaderError) and ":3:" in str(items[1])
    assert isinstance(items[2], AbstractError) and "too short" in str(items[2])
    assert isinstance(items[3], LoaderError) and "expected a JSON object" in str(items[3])


def test_json_list_and_papers_key(tmp_path: Path) -> None:
    rct = json.loads((FIXTURES / "rct.json").read_text())
    (tmp_path / "a.json").write_text(json.dumps({"papers": [rct]}))
    (tmp_path / "b.json").write_text(json.dumps([rct, rct]))
    assert len(load_papers(tmp_path)) == 3


def test_csv_with_mesh_and_semicolon_lists(tmp_path: Path) -> None:
    rct = json.loads((FIXTURES / "rct.json").read_text())
    path = tmp_path / "in.csv"
    abstract = rct["abstract"].replace('"', '""')
    path.write_text(
        "PMID,Title,Abstract,Authors,Year,MeSH\n"
        f'123,"A, title","{abstract}","A One; B Two",2021,"X; Y"\n'
    )
    [paper] = load_papers(path)
    assert paper.id == "pmid-123" and paper.title == "A, title"
    assert paper.authors == ["A One", "B Two"] and paper.keywords == ["X", "Y"]


def test_csv_without_abstract_column(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("title,body\nx,y\n")
    with pytest.raises(LoaderError, match="abstract"):
        list(iter_papers(path))


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match="no such file"):
        list(iter_papers(tmp_path / "nope.jsonl"))
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(LoaderError, match="unknown input format"):
        list(iter_papers(tmp_path / "x.txt"))


def test_paper_ids_are_stable() -> None:
    text = "word " * 20
    assert Paper(abstract=text, doi="10.1/ABC").id == "doi-10.1/abc"
    first, second = Paper(abstract=text, title="t"), Paper(abstract=text + "  ", title="t")
    assert first.id == second.id and first.id.startswith("sha256-")


def test_bad_year_and_too_long_abstract() -> None:
    with pytest.raises(InputError, match="year"):
        Paper.from_dict({"abstract": "word " * 20, "year": "someday"})
    with pytest.raises(AbstractError, match="too long"):
        Paper.from_dict({"abstract": "word " * 5000})
