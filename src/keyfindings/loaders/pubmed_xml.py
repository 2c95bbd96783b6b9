"""PubMed XML (``PubmedArticleSet``, as PubMed exports it) → papers, streamed and parsed safely.

defusedxml refuses entity expansion and external entities (billion laughs, XXE); the file is read
with ``iterparse`` and each article cleared after use, so memory stays flat on large exports.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from keyfindings.errors import InputError, LoaderError
from keyfindings.paper import Paper


def _text(elem: Element | None) -> str:
    """All text inside ``elem``; superscripts become ``^n`` so 10<sup>6</sup> is not 106."""
    if elem is None:
        return ""
    parts = [elem.text or ""]
    for child in elem:
        inner = _text(child)
        parts.append(f"^{inner}" if child.tag == "sup" else inner)
        parts.append(child.tail or "")
    return "".join(parts)


def _abstract(article: Element) -> str:
    parts = []
    for node in article.iterfind("./Abstract/AbstractText"):
        body = _text(node).strip()
        label = (node.get("Label") or "").strip()
        if label and label.upper() not in {"UNLABELLED", "UNASSIGNED"}:
            parts.append(f"{label.upper()}: {body}")
        elif body:
            parts.append(body)
    return " ".join(parts)


def _authors(article: Element) -> list[str]:
    names = []
    for author in article.iterfind("./AuthorList/Author"):
        collective = author.findtext("CollectiveName")
        if collective:
            names.append(collective)
            continue
        name = " ".join(p for p in (author.findtext("ForeName"), author.findtext("LastName")) if p)
        if name:
            names.append(name)
    return names


def _year(article: Element) -> str:
    date = article.find("./Journal/JournalIssue/PubDate")
    if date is None:
        return ""
    return date.findtext("Year") or (date.findtext("MedlineDate") or "")[:4]


def _doi(record: Element, article: Element) -> str:
    for node in record.iterfind("./PubmedData/ArticleIdList/ArticleId"):
        if node.get("IdType") == "doi" and node.text:
            return node.text
    for node in article.iterfind("./ELocationID"):
        if node.get("EIdType") == "doi" and node.text:
            return node.text
    return ""


def record_fields(record: Element) -> dict[str, Any]:
    """The fields of one ``PubmedArticle`` element, as loose input for ``Paper``."""
    citation = record.find("./MedlineCitation")
    article = citation.find("./Article") if citation is not None else None
    if citation is None or article is None:
        raise ValueError("no MedlineCitation/Article element")
    keywords = [_text(k) for k in citation.iterfind("./KeywordList/Keyword")]
    mesh = [_text(d) for d in citation.iterfind("./MeshHeadingList/MeshHeading/DescriptorName")]
    return {
        "pmid": citation.findtext("PMID") or "",
        "title": _text(article.find("ArticleTitle")),
        "abstract": _abstract(article),
        "authors": _authors(article),
        "journal": article.findtext("./Journal/Title") or "",
        "year": _year(article),
        "doi": _doi(record, article),
        "keywords": keywords,
        "mesh": mesh,
        "language": article.findtext("Language") or "",
    }


def iter_pubmed_xml(path: Path) -> Iterator[Paper | InputError]:
    """Each article as a Paper, or the InputError that says why it cannot be one."""
    count = 0
    try:
        for _event, elem in iterparse(str(path), events=("end",)):
            if elem.tag != "PubmedArticle":
                continue
            count += 1
            where = f"{path}: article {count}"
            try:
                fields = record_fields(elem)
                if fields["pmid"]:
                    where += f" (PMID {fields['pmid']})"
                yield Paper.from_dict(fields, where=where)
            except InputError as exc:
                yield exc
            except ValueError as exc:
                yield LoaderError(f"{where}: {exc}")
            elem.clear()
    except (ParseError, DefusedXmlException) as exc:
        raise LoaderError(f"{path}: not valid or not safe PubMed XML ({exc})") from None
    if count == 0:
        raise LoaderError(f"{path}: no PubmedArticle elements (is this a PubMed XML export?)")
