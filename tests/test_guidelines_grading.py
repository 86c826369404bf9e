"""Graded statements in published wording, one test per grading system (fast, no files).

Each test feeds page text shaped like the publisher prints it through the same path a real
PDF takes (page cleaning, recommendation finding, the chunker) and checks the `Recommendation`
chunk: statement, direction, strength and certainty in the source's own words, its number.
"""

from __future__ import annotations

import json

import pytest

from ingest.chunking import chunk_document
from ingest.grading import certainty_rank, read_grade, strength_rank
from ingest.loaders.guideline import clean_pages, to_markdown
from ingest.types import Direction, DocType, Document, Recommendation, RecommendationKind


def _recs(*pages: str) -> list[Recommendation]:
    lines = clean_pages([(n, page.split("\n")) for n, page in enumerate(pages, start=1)])
    body = to_markdown(lines)
    doc = Document(id="g", title="A guideline", doc_type=DocType.guideline, text=body.markdown)
    return [c.recommendation for c in chunk_document(doc) if c.recommendation is not None]


def test_grade_who_strong_conditional_with_certainty_after_the_statement() -> None:
    recs = _recs(
        "Recommendations\n"
        "CD4 testing is recommended as the preferred method to identify advanced HIV disease\n"
        "among people living with HIV. (Strong recommendation, moderate-certainty evidence)\n"
        "In settings in which CD4 testing is not yet available, WHO clinical staging can be\n"
        "used to identify advanced HIV disease.\n"
        "(Conditional recommendation, very-low-certainty evidence)\n"
        "Routine use of adjunctive corticosteroid therapy is not recommended in treating\n"
        "adults. (Strong recommendation, high-certainty evidence for adults and\n"
        "moderate-certainty evidence for children)"
    )
    assert [(r.strength, r.certainty, r.direction) for r in recs] == [
        ("Strong recommendation", "moderate-certainty evidence", Direction.for_),
        ("Conditional recommendation", "very-low-certainty evidence", Direction.for_),
        (
            "Strong recommendation",
            "high-certainty evidence for adults and moderate-certainty evidence for children",
            Direction.against,
        ),
    ]
    assert recs[0].statement.startswith("CD4 testing is recommended")
    assert recs[1].statement.startswith("In settings in which CD4 testing")


def test_grade_before_the_statement_magicapp_export() -> None:
    recs = _recs(
        "Strong recommendation for , High certainty evidence\n"
        "Pyrethroid-only nets (2019)\n"
        "Pyrethroid-only nets should be deployed for the prevention and control of malaria in\n"
        "children and adults living in areas with ongoing malaria transmission.\n"
        "Remark:\n"
        "Nets are most effective where vectors bite at night.\n"
        "Conditional recommendation against , Moderate certainty evidence\n"
        "Pyrethroid-pyriproxyfen nets are not recommended for deployment over PBO nets.\n"
        "Strong recommendation for\n"
        "Young children and infants (2015)\n"
        "Infants weighing < 5 kg should be treated with an ACT at the same target dose."
    )
    assert [(r.strength, r.certainty, r.direction, r.intervention) for r in recs] == [
        ("Strong recommendation for", "High certainty evidence", Direction.for_,
         "Pyrethroid-only nets"),
        ("Conditional recommendation against", "Moderate certainty evidence", Direction.against,
         "Pyrethroid-pyriproxyfen nets are not recommended for deployment over PBO nets."),
        ("Strong recommendation for", "not stated", Direction.for_, "Young children and infants"),
    ]  # fmt: skip
    assert "Remark" not in recs[0].statement and "at night" not in recs[0].statement


def test_grade_quality_of_evidence_wording_2016_and_aasm() -> None:
    recs = _recs(
        "RECOMMENDATION\n"
        "The panel recommends that an IPC programme with a dedicated, trained team should be in\n"
        "place in each acute health care facility.\n"
        "(Strong recommendation, very low quality of evidence)\n"
        "Rationale for the recommendation\n"
        "The AASM suggests that clinicians use iron supplementation to treat adults with RLS\n"
        "and serum ferritin of 75 ng/mL or less. (CONDITIONAL recommendation, moderate certainty\n"
        "of evidence)"
    )
    assert [(r.strength, r.certainty) for r in recs] == [
        ("Strong recommendation", "very low quality of evidence"),
        ("Conditional recommendation", "moderate certainty of evidence"),
    ]
    assert strength_rank(recs[0].strength) > strength_rank(recs[1].strength)


def test_grade_cdc_category_and_evidence_type_with_the_source_number() -> None:
    recs = _recs(
        "Selecting Opioids and Determining Opioid Dosages\n"
        "3. When starting opioid therapy for acute, subacute, or chronic pain, clinicians should\n"
        "prescribe immediate-release opioids instead of extended-release and long-acting\n"
        "(ER/LA) opioids (recommendation category: A;\n"
        "evidence type: 4).\n"
        "Recommendation 4\n"
        "When opioids are initiated for opioid-naive patients, clinicians should prescribe the\n"
        "lowest effective dosage (recommendation category: A; evidence type: 3)."
    )
    assert [(r.id, r.strength, r.certainty) for r in recs] == [
        ("3", "recommendation category: A", "evidence type: 4"),
        ("4", "recommendation category: A", "evidence type: 3"),
    ]
    assert recs[0].statement.startswith("When starting opioid therapy")
    assert certainty_rank("evidence type: 1") > certainty_rank("evidence type: 4")


def test_grade_uspstf_letters_and_i_statement() -> None:
    recs = _recs(
        "The USPSTF recommends screening for hypertension in adults 18 years or older with office\n"
        "blood pressure measurement. (A recommendation)\n"
        "The USPSTF recommends against screening for COPD in asymptomatic adults.\n"
        "(D recommendation)\n"
        "The USPSTF concludes that the evidence is insufficient to assess the balance of benefits\n"
        "and harms of routine screening for chronic kidney disease (I statement)."
    )
    assert [(r.strength, r.direction) for r in recs] == [
        ("Grade A", Direction.for_),
        ("Grade D", Direction.against),
        ("I statement", Direction.for_),
    ]
    assert strength_rank("Grade A") > strength_rank("Grade C") > strength_rank("I statement")


def test_grade_acc_aha_class_and_level_of_evidence() -> None:
    recs = _recs(
        "In patients with HFrEF and NYHA class II to III symptoms, the use of ARNi is\n"
        "recommended to reduce morbidity and mortality (Class I; LOE B-R).\n"
        "In patients with chronic HFrEF, ARNi may be reasonable as an alternative to reduce\n"
        "hospitalization (Class IIb; Level of Evidence: B-NR).\n"
        "ARNi should not be administered within 36 hours of the last dose of an ACE\n"
        "inhibitor (Class III: Harm; LOE C-LD)."
    )
    assert [(r.strength, r.certainty, r.direction) for r in recs] == [
        ("Class I", "Level of evidence B-R", Direction.for_),
        ("Class IIb", "Level of evidence B-NR", Direction.for_),
        ("Class III: Harm", "Level of evidence C-LD", Direction.against),
    ]
    assert [strength_rank(r.strength) for r in recs] == [4, 2, 3]


def test_grade_oxford_sign_letters_in_bullets() -> None:
    recs = _recs(
        "Recommendations\n"
        "▸ HLA typing should be used in individuals who are self-treated on a GFD and never\n"
        "had appropriate testing for CD before changing their diet. (Grade B)\n"
        "▸ Patients may commence gluten-free oats at diagnosis. (Grade D)"
    )
    # No certainty is printed beside a letter grade: none is stated.
    assert [(r.strength, r.certainty) for r in recs] == [("Grade B", None), ("Grade D", None)]
    assert recs[0].statement.startswith("HLA typing should be used in individuals")


def test_grade_aan_levels() -> None:
    recs = _recs(
        "Clinicians should offer extended-release pramipexole to patients with moderate to severe\n"
        "primary RLS to reduce symptoms (Level A).\n"
        "There is insufficient evidence to support or refute the use of ferrous sulfate in\n"
        "patients with RLS and normal ferritin (Level U)."
    )
    assert [r.strength for r in recs] == ["Level A", "Level U"]
    assert strength_rank("Level A") > strength_rank("Level B") > strength_rank("Level U")


_NICE_ITEMS = (
    "Treatment\n"
    "1.2.1 Offer a dopamine agonist to adults with moderate to severe symptoms.\n"
    "1.2.2 Consider oral iron for adults with a serum ferritin below 75 micrograms/litre.\n"
    "1.2.3 Do not offer levodopa for daily symptoms, because of the risk of\n"
    "augmentation."
)


def test_grade_nice_verbs_where_the_guideline_defines_them() -> None:
    recs = _recs(
        "Making decisions using NICE guidelines\n"
        "The wording used in the recommendations in this guideline reflects the strength of\n"
        "the recommendation.\n" + _NICE_ITEMS
    )
    assert [(r.id, r.strength, r.direction) for r in recs] == [
        ("1.2.1", '"Offer" (verb as defined)', Direction.for_),
        ("1.2.2", '"Consider" (verb as defined)', Direction.for_),
        ("1.2.3", '"Do not offer" (verb as defined)', Direction.against),
    ]
    assert recs[2].statement.endswith("risk of augmentation.")
    assert strength_rank(recs[0].strength) > strength_rank(recs[1].strength)


def test_directive_statements_without_defined_verbs_are_kept_ungraded() -> None:
    recs = _recs(_NICE_ITEMS)
    assert [(r.id, r.strength, r.direction) for r in recs] == [
        ("1.2.1", "not graded", Direction.for_),
        ("1.2.2", "not graded", Direction.for_),
        ("1.2.3", "not graded", Direction.against),
    ]
    assert strength_rank("not graded") == 0


def test_good_practice_statement_is_kept_as_such() -> None:
    recs = _recs(
        "GOOD PRACTICE STATEMENT\n"
        "Active, stand-alone, national IPC programmes with clearly defined objectives should be\n"
        "established for the purpose of preventing infections.\n"
        "Rationale for the good practice statement"
    )
    assert len(recs) == 1
    assert recs[0].kind is RecommendationKind.good_practice
    assert recs[0].strength == "Good practice statement"


@pytest.mark.parametrize(
    "printed",
    [
        "(recommendation category: C; evidence type: 2)",  # no category C in the CDC system
        "(Grade E)",
        "(Moderately strong advice)",
    ],
)
def test_unreadable_grade_stays_ungraded_prose(printed: str) -> None:
    text = (
        f"Clinicians should consider a structured review of all long-term prescriptions {printed}."
    )
    assert read_grade(text) is None
    assert _recs(text) == []
    lines = clean_pages([(1, [text])])
    assert "structured review" in to_markdown(lines).markdown  # kept, as text


def test_repeated_statement_is_one_recommendation() -> None:
    statement = (
        "Fluconazole is recommended for the maintenance phase until immune reconstitution "
        "and suppression of viral loads."
    )
    recs = _recs(
        f"Summary of recommendations\n{statement} (Strong recommendation, high-certainty evidence)",
        f"Maintenance\n{statement} (12) (Strong recommendation, high-certainty evidence)",
    )
    assert len(recs) == 1


def test_reference_lists_are_not_content() -> None:
    refs = "\n".join(
        f"{n}. Author{n} AB, Other CD, et al. A study of things. J Med 2019;{n}:1-9. "
        f"https://doi.org/10.1000/x{n}"
        for n in range(1, 20)
    )
    lines = clean_pages(
        [(1, ["Prose that the guideline itself says about iron and ferritin.", "References"]),
         (2, refs.split("\n"))]
    )  # fmt: skip
    text = to_markdown(lines).markdown
    assert "iron and ferritin" in text
    assert "et al" not in text and "doi.org" not in text


def test_a_table_of_contents_is_not_content_and_a_scoring_table_is() -> None:
    contents = [
        "Contents",
        "1 Introduction 1",
        "1.1 The need for a guideline 1",
        "2 Planning and decision making ........ 4",
        "2.1 Anticipatory care plans 4",
        "3 Recognition of clinical deterioration 6",
        "4 Early warning scores 8",
    ]
    scores = [
        "Procedure Score",
        "Omentectomy 1",
        "Pelvic lymphadenectomy 1",
        "Para-aortic lymphadenectomy 1",
        "Pelvic peritoneum stripping 1",
        "Large bowel resection 2",
    ]
    prose = "Early warning scores help staff notice a patient who is getting worse."
    pages = [(2, contents), (3, [prose]), *[(n, [f"Page {n} says this."]) for n in range(4, 9)]]
    text = to_markdown(clean_pages([*pages, (9, scores)])).markdown
    assert "Anticipatory care plans" not in text and "Contents" not in text
    assert prose in text
    # Scores that barely move are a table's values, not pages.
    assert "Pelvic lymphadenectomy 1" in text


def test_numbered_titles_under_a_heading_are_headings() -> None:
    lines = clean_pages(
        [(1, ["The previous section ends here.", "3 Recommendations",
              "3.1 Blood pressure threshold for initiation of treatment",
              "1. RECOMMENDATION ON BLOOD PRESSURE THRESHOLD",
              "Drug treatment starts at a confirmed systolic pressure of 140 mmHg or more."])]
    )  # fmt: skip
    text = to_markdown(lines).markdown
    assert "## 3.1 Blood pressure threshold for initiation of treatment" in text
    assert "## 1. RECOMMENDATION ON BLOOD PRESSURE THRESHOLD" in text


def test_bsh_grade_codes_and_glyph_name_bullets() -> None:
    recs = _recs(
        "Recommendations\n"
        "/C15 Folic acid (5 mg daily) should be given from before\n"
        "conception and throughout pregnancy (1A).\n"
        "/C15 Daily antibiotic prophylaxis is recommended (2B)."
    )
    assert [(r.strength, r.certainty) for r in recs] == [
        ("1 (strong)", "A (high quality)"),
        ("2 (weak)", "B (moderate quality)"),
    ]
    assert recs[0].statement.startswith("Folic acid (5 mg daily)")
    assert strength_rank(recs[0].strength) > strength_rank(recs[1].strength)


def test_certainty_symbols_including_a_private_use_circle() -> None:
    grade = read_grade("Offer X to adults. Strong recommendation ⊕⊕\uf0a1\uf0a1")
    assert grade is not None and grade.strength == "Strong recommendation"
    assert grade.certainty == "low certainty (⊕⊕◯◯)"
    assert certainty_rank(grade.certainty) == 2


def test_strength_line_after_its_statement_by_the_document_layout() -> None:
    recs = _recs(
        "1. RECOMMENDATION ON LABORATORY TESTING\n"
        "When starting therapy, the panel suggests obtaining tests to screen for comorbidities.\n"
        "Conditional recommendation, low-certainty evidence\n"
        "2. RECOMMENDATION ON TARGETS\n"
        "The panel recommends a target blood pressure below 140/90 mmHg in all patients.\n"
        "Strong recommendation, moderate-certainty evidence"
    )
    assert [(r.statement[:20], r.strength) for r in recs] == [
        ("When starting therap", "Conditional recommendation"),
        ("The panel recommends", "Strong recommendation"),
    ]


def test_listed_ungraded_statements_are_kept_as_ungraded_recommendations() -> None:
    recs = _recs(
        "Recommendations:\n"
        "5.1 The key cause of weight gain should be identified in each person seeking care.\n"
        "5.2 Endocrine causes should be looked for when indicated.\n"
        "6. Assessment of comorbidities\n"
        "A patient should be assessed clinically and biochemically."
    )
    assert [(r.id, r.strength) for r in recs] == [("5.1", "not graded"), ("5.2", "not graded")]


STARS_REGISTRY = (
    "systems:\n"
    "  - name: Example stars\n"
    "    labels:\n"
    "      - position: after\n"
    "        pattern: '\\[(?P<n>[1-3]) stars?\\]'\n"
    "        strength: '{n}'\n"
    "        map: {n: {'3': three stars, '2': two stars, '1': one star}}\n"
    "    strength_ranks:\n"
    "      - {match: 'three stars', rank: 4}\n"
    "      - {match: 'one star', rank: 1}\n"
    "    against: ['one star']\n"
)


def test_a_grading_system_is_added_by_data_only(tmp_path) -> None:
    from ingest.grading import REGISTRY_PATH, Registry
    from ingest.loaders.guideline import Line, find_recommendations

    extra = tmp_path / "extra.yaml"
    extra.write_text(STARS_REGISTRY)
    text = "Clinicians should measure ferritin before treating fatigue [3 stars]."
    assert read_grade(text) is None  # unknown to the packaged registry
    reg = Registry.from_files(REGISTRY_PATH, extra)
    grade = reg.read_grade(text)
    assert grade is not None and (grade.strength, grade.scale) == ("three stars", "Example stars")
    assert reg.strength_rank("three stars") == 4 and reg.strength_rank("one star") == 1
    assert reg.read_grade("Do it [1 star].").direction == "against"  # type: ignore[union-attr]
    [found] = find_recommendations([Line(1, text)], reg)
    assert found.grade.strength == "three stars" and found.statement.startswith("Clinicians")


def test_words_run_together_by_a_text_layer_are_split_from_the_documents_vocabulary() -> None:
    from ingest.loaders.guideline import _Spacer

    spaced = "People with ovarian cancer should be offered surgery at a cancer centre. " * 40
    joined = "Peoplewithsuspectedovariancancershouldundergosurgeryatacancercentre " * 20
    spacer = _Spacer(spaced + joined)
    assert spacer.active
    assert spacer.fix("Peoplewithovariancancer should") == "People with ovarian cancer should"
    assert not _Spacer(spaced + "Organisations publish guidance once.").active


@pytest.fixture
def fresh_registry():
    from ingest.grading import registry

    registry.cache_clear()
    yield registry
    registry.cache_clear()


def test_a_registry_file_named_in_the_settings_grades_without_code(
    tmp_path, monkeypatch, fresh_registry
) -> None:
    from ingest.loaders.guideline import Line, find_recommendations

    extra = tmp_path / "publisher_grades.yaml"
    extra.write_text(STARS_REGISTRY)
    text = "Clinicians should measure ferritin before treating fatigue [3 stars]."
    assert read_grade(text) is None
    fresh_registry.cache_clear()
    monkeypatch.setenv("CLINIQ_INGEST__GRADING_REGISTRIES", json.dumps([str(extra)]))
    assert read_grade(text).strength == "three stars"  # type: ignore[union-attr]
    assert strength_rank("three stars") == 4 and strength_rank("Strong") > 0  # packaged kept
    [found] = find_recommendations([Line(1, text)])
    assert found.grade.strength == "three stars"


def test_a_missing_registry_file_in_the_settings_is_named(
    tmp_path, monkeypatch, fresh_registry
) -> None:
    from ingest.grading import RegistryError

    missing = tmp_path / "nowhere.yaml"
    monkeypatch.setenv("CLINIQ_INGEST__GRADING_REGISTRIES", json.dumps([str(missing)]))
    with pytest.raises(RegistryError, match=r"nowhere\.yaml.*CLINIQ_INGEST__GRADING_REGISTRIES"):
        read_grade("Offer it (strong recommendation).")


def test_ingest_with_a_missing_registry_file_stops_with_one_clear_line(
    tmp_path, monkeypatch, fresh_registry
) -> None:
    from typer.testing import CliRunner

    from assistant.cli import app

    missing = tmp_path / "nowhere.yaml"
    monkeypatch.setenv("CLINIQ_INGEST__GRADING_REGISTRIES", json.dumps([str(missing)]))
    page = tmp_path / "page.md"
    page.write_text("# Page\n\nOffer it (strong recommendation).\n")
    result = CliRunner().invoke(app, ["ingest", str(page), "--index", str(tmp_path / "index")])
    assert result.exit_code == 2
    assert "nowhere.yaml" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "index").exists() or not any((tmp_path / "index").iterdir())


def test_a_tables_grade_and_certainty_columns_read_as_one_line() -> None:
    recs = _recs(
        "Chapter Recommendation Grade Certainty of evidence\n"
        "1. In a person with the condition, examine the feet at least annually.\n"
        "Strong Low\n"
        "2. In a person with the condition, consider a second test when the first is normal.\n"
        "Conditional Very low\n"
        "3. A person with the condition should be treated by a specialised team.\n"
        "Best Practice Statement"
    )
    assert [(r.statement[:24], r.strength, r.certainty) for r in recs[:2]] == [
        ("In a person with the con", "Strong", "Low"),
        ("In a person with the con", "Conditional", "Very low"),
    ]
    assert strength_rank("Strong") == 4 and certainty_rank("Very low") == 1
    from ingest.grading import registry

    best = registry().line_grade("Best Practice Statement")
    assert best is not None and best.kind == "good-practice"
    assert best.strength == "Best practice statement"  # the source's word, not "good"


def test_strength_as_a_count_of_symbols_and_evidence_categories() -> None:
    from ingest.grading import registry

    four, one = registry().line_grade("❖❖❖❖"), registry().line_grade("❖")
    assert four is not None and four.strength.startswith("Strong recommendation for the option")
    assert one is not None and one.direction == "against"
    assert strength_rank(four.strength) == 4 and strength_rank(one.strength) == 2
    grade = read_grade("Physical activity should be part of therapy. Evidence Category A.")
    assert grade is not None and grade.certainty == "Evidence Category A"
    assert grade.strength == "not graded" and certainty_rank(grade.certainty) == 4


def test_a_type_column_before_numbered_statements_and_their_section_titles() -> None:
    recs = _recs(
        "1.3 Clinical signs\n"
        "1.3.1 EBR The presence of the first sign alone should be considered predictive of\n"
        "the condition in adults.\n"
        "❖❖❖\n"
        "1.3.2 PP Reference ranges vary widely between laboratories and are often based on\n"
        "an arbitrary percentile of a population that is not well characterised.\n"
        "1.3.3 PP Laboratories should report the method used with every result.\n"
        "1.4 Imaging\n"
        "1.4.1 CR Imaging should not be used for diagnosis in adolescents.\n"
        "❖❖❖❖\n"
    )
    got = [(r.id, r.strength, r.kind, r.statement[:24]) for r in recs]
    point = RecommendationKind.good_practice
    assert got == [
        ("1.3.1", "Conditional recommendation for the option (❖❖❖)",
         RecommendationKind.recommendation, "The presence of the firs"),
        ("1.3.2", "Practice point (PP)", point, "Reference ranges vary wi"),
        ("1.3.3", "Practice point (PP)", point, "Laboratories should repo"),
        ("1.4.1", "Strong recommendation for the option (❖❖❖❖)",
         RecommendationKind.recommendation, "Imaging should not be us"),
    ]  # fmt: skip


def test_a_summary_list_under_a_group_lead_in_and_a_box_over_a_bracketed_grade() -> None:
    recs = _recs(
        "Recommendations summary\n"
        "Recommendations for patients with non-severe invented fever\n"
        "(all four kinds):\n"
        "- The panel suggests the use of oral fluids in patients with non-severe invented\n"
        "fever. [Conditional recommendation, low certainty evidence]\n"
        "- The panel recommends against the use of anti-inflammatory drugs in patients with\n"
        "invented fever. [Strong recommendation, low certainty evidence]\n"
        "- The panel suggests an antiviral agent for invented fever. [Use only in research]\n",
        "Fluids\n"
        "Conditional recommendation for\n"
        "The panel suggests the use of oral fluids compared with intravenous fluids in\n"
        "patients with non-severe invented fever. [Conditional recommendation, very low\n"
        "certainty evidence]\n",
    )
    got = [(r.statement[:34], r.strength, r.certainty) for r in recs]
    low = "low certainty evidence"
    assert got == [
        ("The panel suggests the use of oral", "Conditional recommendation", low),
        ("The panel recommends against the u", "Strong recommendation", low),
        ("The panel suggests an antiviral ag", "Use only in research", "not stated"),
    ]  # the chapter's restatement, under its box, is the summary's first statement
    assert recs[1].direction is Direction.against
    assert recs[0].pages == "1, 2"


def test_a_figure_caption_under_a_good_practice_label_is_not_a_statement() -> None:
    recs = _recs(
        "GOOD PRACTICE STATEMENT\n"
        "A person with the invented condition should be seen by a specialised team.\n"
        "GOOD PRACTICE STATEMENT\n"
        "Figure 1. Assessment and management pathway for a person with the invented condition.\n"
    )
    assert [r.statement[:30] for r in recs] == ["A person with the invented con"]


def test_strength_and_direction_in_brackets_before_a_review_category() -> None:
    """VA/DoD: "(Strong for | Reviewed, Amended)"; a text layer breaks the strength's words,
    within a line ("Stron g") or across lines ("(St" / "rong against ..."), and a footnote letter
    may follow the statement's full stop."""
    recs = _recs(
        "Recommendation\n"
        "1. For adults with a sprained ankle, we recommend an early return to weight bearing.d\n"
        "(St\nrong for | Reviewed, Amended)\n"
        "Discussion\n"
        "12 of 40 patients in the trial returned to work within a week of the injury.\n"
        "Recommendations\n"
        "2. For adults with a sprained ankle, we suggest against routine immobilisation.\n"
        "(Wea\nk against | Reviewed, New-added)\n"
        "3. For adults with a sprained ankle, there is insufficient evidence to recommend for or\n"
        "against ultrasound therapy. (Nei ther for nor against | Not reviewed, Amended)\n"
        "Discussion\n"
        "55 patients, 22% of the sample, were lost to follow-up in that study.\n"
    )
    assert [(r.id, r.strength, r.direction) for r in recs] == [
        ("1", "Strong for", Direction.for_),
        ("2", "Weak against", Direction.against),
        ("3", "Neither for nor against", Direction.for_),
    ]
    assert recs[0].statement.endswith("early return to weight bearing.")  # no footnote "d"
    assert strength_rank("Strong for") > strength_rank("Weak against") > 0


@pytest.mark.parametrize(
    ("lines", "whole"),
    [
        (["(Stron g for | Reviewed)"], ["(Strong for | Reviewed)"]),
        (["E VIDENCE CATEGORIES"], ["EVIDENCE CATEGORIES"]),
        (["RECOMMENDA TION 3"], ["RECOMMENDATION 3"]),
        (["planning. (S", "trong for)"], ["planning. (", "Strong for)"]),
        (["n Either behavior therapy was used"], ["n Either behavior therapy was used"]),
        (["as a strong signal"], ["as a strong signal"]),
    ],
)
def test_grade_words_a_text_layer_broke_are_read_whole(lines, whole) -> None:
    from ingest.grading import registry

    assert registry().rejoin(lines) == whole


def test_a_statement_opened_by_its_own_label_starts_there() -> None:
    """A statement's own label ("RECOMMENDATION 2: ...", WHO's "Recommendation 1: ...") opens
    it: the rationale bullets printed above are not part of it. A letter after the words
    "Strength of Recommendation" is its grade."""
    recs = _recs(
        "∙ The evaluation begins with a history from someone who knows the patient well\n"
        "(an informant).\n"
        "RECOMMENDATION 2: The clinician should use patient-centered communication to agree\n"
        "shared goals for the evaluation (Strength of Recommendation A).\n"
        "Rationale\n"
        "∙ Shared goals make the evaluation easier to complete for the patient.\n"
        "Recommendation 3: Health workers should be screened for symptoms of the infection at\n"
        "least once a year (conditional recommendation, very low certainty in the estimates).\n"
        "RECOMMENDATION 4: A specialist can obtain an amyloid PET scan when the cause remains\n"
        "uncertain after structural imaging (Strength of\n"
        "Recommendation B).\n"
    )
    assert [(r.id, r.strength, r.statement.split()[0]) for r in recs] == [
        ("2", "Strength of recommendation A", "The"),
        ("3", "Conditional recommendation", "Health"),
        ("4", "Strength of recommendation B", "A"),
    ]
    assert strength_rank(recs[0].strength) > strength_rank(recs[2].strength) > 0


@pytest.mark.parametrize(
    ("printed", "statement_end"),
    [
        ("we recommend against long bed rest.v", "against long bed rest."),
        ("there is insufficient evidence for lumbar supports. l", "for lumbar supports."),
        ("we suggest against cell therapies (e.g., stem cells).aa", "(e.g., stem cells)."),
    ],
)
def test_a_footnote_letter_after_the_statement_is_not_part_of_it(printed, statement_end) -> None:
    recs = _recs(f"1. For adults with back pain, {printed}\n(Weak against | Reviewed, Amended)\n")
    assert recs and recs[0].statement.endswith(statement_end)


def test_a_statement_found_in_running_prose_begins_where_a_sentence_does() -> None:
    # The grade closes a sentence in the middle of a long paragraph; what is read back from it
    # reaches a line that starts mid-sentence, which is not where the statement begins.
    prose = (
        "Earlier panels reviewed other trials. Most of those were small and some of them\n"
        "were large. A few were long and the rest were short. The panel reviewed trials of\n"
        "weight loss too. The first trial was small and the second\n"
        "was large. The third trial was long and the fourth was short, as the fifth trial\n"
        "was. The sixth trial was short and the seventh was long, as the eighth trial was\n"
        "not. The ninth trial measured blood pressure and the tenth measured blood lipids\n"
        "in adults. Weight loss is recommended to lower raised blood pressure in overweight\n"
        "adults with hypertension. (Strong recommendation, high-certainty evidence)"
    )
    recs = _recs(prose)
    assert len(recs) == 1
    statement = recs[0].statement
    assert statement.startswith("The first trial"), statement  # not "weight loss too. The ..."
    assert statement.endswith("adults with hypertension.")


def test_a_label_inside_the_prose_opens_its_statement_and_says_its_kind() -> None:
    """A body that restates its summary as "RECOMMENDATION: ..." at the end of a paragraph of
    evidence, closed by the same grade: the statement starts at its label and is the summary's
    recommendation, with both pages. An "Evidence statement: ..." is kept as an evidence
    conclusion, not counted as advice."""
    summary = (
        "SUMMARY OF RECOMMENDATIONS\n"
        "- Weight loss is recommended to lower raised blood pressure in overweight adults\n"
        "with hypertension. Evidence Category A.\n"
    )
    chapter = (
        "Twelve trials of lifestyle change were reviewed. Most of them were small, and the\n"
        "panel makes the following recommendation: Weight loss is recommended to lower\n"
        "raised blood pressure in overweight adults with hypertension. Evidence Category A.\n"
        "Three trials measured waist size. Evidence Statement: Waist circumference tracks\n"
        "abdominal fat during weight loss treatment. Evidence Category C.\n"
    )
    recs = _recs(summary, chapter)
    kinds = [(r.kind, r.statement.split()[0], r.certainty) for r in recs]
    assert kinds == [
        (RecommendationKind.recommendation, "Weight", "Evidence Category A"),
        (RecommendationKind.evidence_conclusion, "Waist", "Evidence Category C"),
    ]
    assert recs[0].pages == "1, 2"


STATEMENT_LABEL_REGISTRY = (
    "statement_labels:\n  - {label: 'practice\\s+advice', kind: good-practice}\nsystems: []\n"
)


def test_a_statement_label_is_added_by_data_only(tmp_path) -> None:
    from ingest.grading import REGISTRY_PATH, Registry
    from ingest.loaders.guideline import Line, find_recommendations

    extra = tmp_path / "labels.yaml"
    extra.write_text(STATEMENT_LABEL_REGISTRY)
    text = (
        "Few trials compared the options, so the panel agreed on advice. Practice advice 4: "
        "Offer a written plan to every adult leaving hospital after a fall (Grade B)."
    )
    packaged = find_recommendations([Line(1, text)])
    assert packaged[0].statement.startswith("Few trials")  # the label is unknown there
    [found] = find_recommendations([Line(1, text)], Registry.from_files(REGISTRY_PATH, extra))
    assert found.statement.startswith("Offer a written plan"), found.statement
    assert (found.number, found.grade.kind) == ("4", "good-practice")


def test_a_statement_label_of_an_unknown_kind_is_named(tmp_path) -> None:
    from ingest.grading import REGISTRY_PATH, Registry, RegistryError

    extra = tmp_path / "labels.yaml"
    extra.write_text(STATEMENT_LABEL_REGISTRY.replace("good-practice", "advice"))
    with pytest.raises(RegistryError, match=r"labels\.yaml: statement_labels\[0\]: kind 'advice'"):
        Registry.from_files(REGISTRY_PATH, extra)


def test_a_numbered_title_naming_a_use_is_not_a_directive() -> None:
    recs = _recs(
        "1.1.1 Offer a blood test to adults with fatigue that lasts a month.\n"
        "1.1.2 Consider oral iron for adults with a low ferritin.\n"
        "1.2.1 Concurrent use of tests in children without HIV\n"
        "or with unknown HIV status\n"
        "1.2.2 Use a rapid molecular test for children with a cough that lasts weeks.\n"
    )
    assert [r.id for r in recs] == ["1.1.1", "1.1.2", "1.2.2"]


def test_a_good_practice_label_closes_its_statement_where_the_documents_grades_do() -> None:
    # A summary table whose grade column prints after each statement, a best-practice label
    # included: the label closes the statement above it, as the strength lines do.
    recs = _recs(
        "1. In adults with the condition, take a history and examine the feet at least\n"
        "once a year.\n"
        "Strong Low\n"
        "2. In adults without an ulcer who need surgery on the foot, the arterial supply\n"
        "should be assessed first.\n"
        "Best Practice Statement\n"
        "3. In adults with an ulcer, consider measuring the toe pressure to judge healing.\n"
        "Conditional Low\n"
        "4. In adults with an infected ulcer, urgently consult a vascular specialist.\n"
        "Best Practice Statement\n"
        "5. In adults with an ulcer, consider a classification system to estimate risk.\n"
        "Conditional Moderate"
    )
    rec, practice = RecommendationKind.recommendation, RecommendationKind.good_practice
    assert [(r.statement[:30], r.kind, r.strength) for r in recs] == [
        ("In adults with the condition, ", rec, "Strong"),
        ("In adults without an ulcer who", practice, "Best practice statement"),
        ("In adults with an ulcer, consi", rec, "Conditional"),
        ("In adults with an infected ulc", practice, "Best practice statement"),
        ("In adults with an ulcer, consi", rec, "Conditional"),
    ]


def test_a_range_that_wraps_onto_a_new_line_stays_in_its_statement() -> None:
    # "0.9 - 1.3" and "0.70;" open printed lines, yet are neither section numbers nor headings.
    recs = _recs(
        "4. In adults with an ulcer, evaluate the pedal waveforms with the ankle brachial\n"
        "index to identify arterial disease.\n"
        "No single test is optimal, and no value excludes the disease. However, it is less\n"
        "likely in the presence of an index of\n"
        "0.9 - 1.3; a toe index above\n"
        "0.70; and biphasic pedal waveforms.\n"
        "Strong Low\n"
        "5. In adults with an ulcer, consider measuring the toe pressure to judge healing.\n"
        "Conditional Low"
    )
    assert [r.statement[:30] for r in recs] == [
        "In adults with an ulcer, evalu",
        "In adults with an ulcer, consi",
    ]


def test_neighbouring_bullets_that_differ_in_one_drug_are_two_recommendations() -> None:
    def bullet(drug: str) -> str:
        return (
            f"• The panel suggests the use of {drug} for the treatment of pain and/or fever in\n"
            "patients with suspected or confirmed non-severe disease. [Conditional\n"
            "recommendation, low certainty evidence]\n"
        )

    summary = "Recommendations summary\n" + bullet("drug one") + bullet("drug two")
    chapter = "Pain and fever\nText on the evidence for pain relief.\n" + bullet("drug two")
    recs = _recs(summary, chapter)
    # The chapter's restatement of the second is still merged with it: two, not three.
    assert [r.statement.split(" for ")[0][-8:] for r in recs] == ["drug one", "drug two"]


def test_a_numbered_remarks_heading_over_its_bullets_is_not_a_statement() -> None:
    recs = _recs(
        "1.1.1 Offer oral fluids to people with mild disease who can drink.\n"
        "1.1.2 Consider intravenous fluids when oral fluids cannot be taken.\n"
        "1.1.3 Practical information\n"
        "- Intake should be recorded daily, and patients should drink small amounts often.\n"
        "1.2.1 Do not offer corticosteroids to people with mild disease.\n"
    )
    assert [r.statement[:12] for r in recs] == ["Offer oral f", "Consider int", "Do not offer"]
