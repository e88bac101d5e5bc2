"""What newsrooms print, one pattern at a time (sentences written for these tests).

Each case is a short article and what the extraction must find in it: the content, the source as
written, the cue class, the kind, and, where the article says who, the resolved speaker.
"""

from __future__ import annotations

import pytest

from service.corpus import ArticleMeta, make_article
from service.extract import extract_article
from service.records import CueClass, Extraction, MentionKind, QuoteMention
from service.speakers import SpeakerRegistry


def extract(nlp: object, text: str, title: str = "") -> Extraction:
    meta = ArticleMeta(outlet="Test", url="https://example.org/patterns", published=None, title=title)
    return extract_article(make_article(text, meta), SpeakerRegistry(), nlp)


def one(extraction: Extraction, needle: str) -> QuoteMention:
    hits = [m for m in extraction.mentions if any(needle in s.text for s in m.content_spans)]
    assert len(hits) == 1, (needle, [(m.cue, m.text) for m in extraction.mentions])
    return hits[0]


def content(m: QuoteMention) -> str:
    return " … ".join(s.text for s in m.content_spans)


@pytest.mark.parametrize(
    ("sentence", "source"),
    [
        ("Senator Maria Lopez says the bill will pass next week.", "Senator Maria Lopez"),
        ("Officials say the bridge will reopen in March.", "Officials"),
        ("Democrats said the budget shortchanges schools.", "Democrats"),
        ("The governor has said the state will appeal the ruling.", "The governor"),
        ("Farmers are saying the drought has ruined the harvest.", "Farmers"),
        ("I said the plan was doomed from the start.", "I"),
        ("The mayor will say tomorrow that the tax cut is dead.", "The mayor"),
    ],
)
def test_speech_verbs_in_every_person_number_and_tense(nlp: object, sentence: str, source: str) -> None:
    text = f"Budget fight heats up\n\n{sentence}"
    m = one(extract(nlp, text), sentence.split()[-3])
    assert m.speaker_mention == source
    assert m.kind is MentionKind.INDIRECT and m.cue_class is CueClass.SPEECH
    assert m.speaker_span is not None and text[m.speaker_span.start : m.speaker_span.end] == source


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("According to the ministry, the talks will resume on Monday.", "the talks will resume on Monday"),
        ("The talks will resume on Monday, according to the ministry.", "The talks will resume on Monday"),
        ("The talks, according to the ministry, will resume on Monday.", "The talks … will resume on Monday"),
    ],
)
def test_according_to_before_inside_and_after(nlp: object, sentence: str, expected: str) -> None:
    m = one(extract(nlp, sentence), "Monday")
    assert content(m) == expected
    assert m.cue == "according to" and m.speaker_mention == "the ministry"


def test_headline_quote_with_a_colon(nlp: object) -> None:
    title = "Lopez: 'We will not back down'"
    text = f"{title}\n\nSenator Maria Lopez spoke to reporters on Tuesday after the vote in the capital."
    m = one(extract(nlp, text, title=title), "We will not back down")
    assert m.cue == ":" and m.speaker_mention == "Lopez" and m.headline
    assert not m.quotable  # the desk's summary is not stored as something said


def test_colon_in_the_body_and_a_quote_in_the_next_paragraph(nlp: object) -> None:
    text = (
        "Senator Maria Lopez took the floor after midnight.\n\n"
        "Lopez continued:\n\n"
        "“We have waited long enough for this bridge. The people of this county deserve better.”"
    )
    m = one(extract(nlp, text), "We have waited long enough")
    assert m.kind is MentionKind.DIRECT and m.speaker_id == "maria-lopez"


def test_a_quote_over_several_paragraphs_is_one_mention(nlp: object) -> None:
    text = (
        "“We will finish the bridge this year,” Mayor John Carter said on Monday. “The money is there.\n\n"
        "“And the contractors are ready to start in the spring.”"
    )
    m = one(extract(nlp, text), "We will finish the bridge")
    assert [s.text for s in m.spans] == [
        "We will finish the bridge this year",
        "The money is there.",
        "And the contractors are ready to start in the spring.",
    ]
    assert m.speaker_id == "john-carter"


@pytest.mark.parametrize(
    ("sentence", "cue"),
    [
        ("The ministry said in a statement that the border will stay closed.", "said in a statement"),
        ("Lopez wrote on Facebook that the border will stay closed.", "wrote"),
        ("Lopez tweeted that the border will stay closed.", "tweeted"),
        ("Lopez posted that the border will stay closed.", "posted"),
    ],
)
def test_statements_posts_and_writing(nlp: object, sentence: str, cue: str) -> None:
    m = one(extract(nlp, sentence), "border will stay closed")
    assert m.cue == cue and m.cue_class is CueClass.SPEECH
    assert content(m) == "the border will stay closed"


def test_questions_and_exclamations_keep_their_cue(nlp: object) -> None:
    text = '"Is that all there is?" Carter asked. "We need a new plan!" he shouted.'
    extraction = extract(nlp, text)
    question, exclamation = one(extraction, "Is that all"), one(extraction, "new plan")
    assert question.speaker_mention == "Carter" and question.kind is MentionKind.DIRECT
    assert exclamation.speaker_mention == "he"


def test_a_nested_quote_stays_inside_the_outer_one(nlp: object) -> None:
    text = "“He told me, ‘I will never sign it,’ and then he left the room,” Lopez said."
    extraction = extract(nlp, text)
    m = one(extraction, "I will never sign it")
    assert m.text == "He told me, ‘I will never sign it,’ and then he left the room"
    assert m.speaker_mention == "Lopez"
    assert len(extraction.mentions) == 1


def test_a_partial_quote_inside_a_clause(nlp: object) -> None:
    """The outlet attributes the whole clause; the quoted words stay the verbatim part."""
    text = "Lopez said the plan was “a disgrace” and would cost jobs."
    m = one(extract(nlp, text), "disgrace")
    assert m.kind is MentionKind.PARTIAL
    assert [s.text for s in m.spans] == ["a disgrace"]
    assert content(m) == "the plan was “a disgrace” and would cost jobs"


def test_direct_quote_split_around_its_cue(nlp: object) -> None:
    text = "“The bridge is safe,” Carter said, “and it will open on time.”"
    m = one(extract(nlp, text), "The bridge is safe")
    assert [s.text for s in m.spans] == ["The bridge is safe", "and it will open on time."]


def test_sources_resolved_from_the_article(nlp: object) -> None:
    text = (
        "Senator Maria Lopez met farmers in Fresno on Monday. The senator said the drought aid was late.\n\n"
        "Mrs. Lopez's spokeswoman, Ana Ruiz, said the office needed more money. She said the request "
        "went out in May.\n\n"
        "The Farm Bureau said prices had doubled. They said feed was the worst."
    )
    extraction = extract(nlp, text)
    assert one(extraction, "drought aid was late").speaker_id == "maria-lopez"  # a title alone
    assert one(extraction, "needed more money").speaker_id == "ana-ruiz"
    assert one(extraction, "went out in May").speaker_id == "ana-ruiz"  # a pronoun
    bureau = one(extraction, "prices had doubled")
    assert bureau.speaker_id is not None and bureau.speaker_id == one(extraction, "feed was the worst").speaker_id


def test_an_unresolved_source_is_said_not_guessed(nlp: object) -> None:
    extraction = extract(nlp, "Critics said the plan would fail. Some said it was too late anyway.")
    for needle in ("plan would fail", "too late"):
        m = one(extraction, needle)
        assert m.speaker_id is None and not m.quotable
        assert m.speaker_mention in ("Critics", "Some")


@pytest.mark.parametrize(
    ("sentence", "cls"),
    [
        ("Lopez believes the plan will fail.", CueClass.BELIEF),
        ("Lopez wants to cut the sales tax next year.", CueClass.INTENTION),
        ("Polls show the senator trailing by six points.", CueClass.EVIDENCE),
    ],
)
def test_beliefs_intentions_and_evidence_are_attributions_not_quotes(nlp: object, sentence: str, cls: CueClass) -> None:
    extraction = extract(nlp, sentence)
    assert len(extraction.mentions) == 1
    m = extraction.mentions[0]
    assert m.cue_class is cls and not m.quotable


def test_what_a_speech_was_about_is_no_quote(nlp: object) -> None:
    m = one(extract(nlp, "Lopez attacked the governor over the budget."), "governor")
    assert m.kind is MentionKind.TOPIC and not m.quotable


@pytest.mark.parametrize(
    "dateline",
    ["WASHINGTON — ", "WASHINGTON, D.C. — ", "NEW YORK (Reuters) — ", "CLEVELAND (AP) -- ", "DAMASCUS, Syria: "],
)
def test_a_dateline_is_not_the_source(nlp: object, dateline: str) -> None:
    text = f"Senate race tightens\n\n{dateline}“We will win this seat,” the senator said on Tuesday."
    m = one(extract(nlp, text), "We will win")
    assert m.speaker_mention == "the senator"


def test_a_quotation_glued_to_its_cue(nlp: object) -> None:
    """No space after the comma: 'said,“…”' must still read as the cue and its quotation."""
    m = one(extract(nlp, "Budget fight heats up\n\nRyan said,“Look, they have no place in this campaign.”"), "Look")
    assert (m.speaker_mention, m.cue, m.kind) == ("Ryan", "said", MentionKind.DIRECT)


def test_a_typod_closing_mark(nlp: object) -> None:
    """'…for her here,“ said Jim Clyburn': the opening mark in a closer's place closes the quote."""
    text = (
        "Primary outlook\n\n“If Mrs. Clinton loses Iowa, that could create real problems for her here,“ said Jim "
        "Clyburn, a Democratic congressman.\n\nShe campaigned in “the first state” on Monday."
    )
    m = one(extract(nlp, text), "real problems")
    assert (m.speaker_mention, m.kind) == ("Jim Clyburn", MentionKind.DIRECT)
    assert content(m) == "If Mrs. Clinton loses Iowa, that could create real problems for her here"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "The talks, Peskov said, were useful and would resume in March.",
            "The talks … were useful and would resume in March",
        ),
        (
            "If the vote fails now, he said, Congress can still pass a simple bill.",
            "If the vote fails now … Congress can still pass a simple bill",
        ),
    ],
)
def test_a_cue_set_off_inside_its_content(nlp: object, text: str, expected: str) -> None:
    m = one(extract(nlp, f"Talks stall\n\nDmitry Peskov spoke.\n\n{text}"), expected.split()[-1])
    assert content(m) == expected
    assert m.kind is MentionKind.INDIRECT and m.cue == "said"


def test_a_quotation_followed_by_a_participle_stays_the_sayings(nlp: object) -> None:
    text = (
        "Club closes\n\nBoreing said the members will still meet, but said, “It’s time we change how we do it,” "
        "promising a return."
    )
    m = one(extract(nlp, text), "time we change")
    assert (m.cue, m.speaker_mention, m.kind) == ("said", "Boreing", MentionKind.DIRECT)


@pytest.mark.parametrize(
    ("sentence", "speaker", "cue"),
    [
        ("“France will always be France,” an angry Hollande retaliated.", "an angry Hollande", "retaliated"),
        ('"Jeb wants to be a tough guy tonight," Trump shot back.', "Trump", "shot back"),
        ('"Okay, for a start," Oliver barked at the crowd.', "Oliver", "barked"),
        ('"Why not?" retorted Smith.', "Smith", "retorted"),
    ],
)
def test_any_verb_after_a_set_off_quotation_says_how_it_was_spoken(
    nlp: object, sentence: str, speaker: str, cue: str
) -> None:
    m = one(extract(nlp, f"Debate night\n\n{sentence}"), sentence.split()[1].strip('"“'))
    assert (m.speaker_mention, m.cue, m.kind, m.cue_class) == (speaker, cue, MentionKind.DIRECT, CueClass.SPEECH)


def test_a_verb_with_a_content_of_its_own_after_a_quotation_is_no_cue(nlp: object) -> None:
    extraction = extract(nlp, 'Night falls\n\n"We lost," he opened the door and left.')
    assert [m.cue for m in extraction.mentions] == []


def test_where_a_set_off_quotation_was_spoken_is_not_its_content(nlp: object) -> None:
    m = one(extract(nlp, 'Vote lost\n\n"We lost the vote," the senator conceded on Twitter Tuesday.'), "We lost")
    assert (content(m), m.kind) == ("We lost the vote", MentionKind.DIRECT)


def test_a_quotation_after_a_colon_with_its_own_cue(nlp: object) -> None:
    text = (
        "Trump on France\n\nAfter the attack, Trump asserted that France had lost its identity: "
        "“France is no longer France,” he claimed."
    )
    extraction = extract(nlp, text)
    assert content(one(extraction, "lost its identity")) == "France had lost its identity"
    m = one(extraction, "no longer France")
    assert (m.cue, m.speaker_mention, m.kind) == ("claimed", "he", MentionKind.DIRECT)


@pytest.mark.parametrize(
    "text",
    [
        "Trump went even further: “If he goes forward and loses, it’s the end of his career.”",
        "Trump went even further:\n\n“If he goes forward and loses, it’s the end of his career.”",
    ],
)
def test_any_clause_before_a_colon_and_a_quotation_names_its_speaker(nlp: object, text: str) -> None:
    m = one(extract(nlp, f"Rubio weighs run\n\n{text}"), "end of his career")
    assert (m.speaker_mention, m.kind, m.cue_class) == ("Trump", MentionKind.DIRECT, CueClass.SPEECH)


def test_a_colon_after_a_clause_that_names_no_source_is_no_attribution(nlp: object) -> None:
    extraction = extract(nlp, 'Menu\n\nThe list includes: "apples" and pears. It goes like this: "Closed."')
    assert [m.speaker_mention for m in extraction.mentions] == []


def test_quotations_signed_with_a_dash(nlp: object) -> None:
    text = (
        "Voters speak\n\nGetty/Instagram.\n\n"
        "“He is ignorant of our culture and lives.”― Pamela Padilla\n"
        "“How did we get this low?”\xa0― Jacklyn Ashley\xa0\n"
        "“The most unqualified child to ever run for president.” ― Francisco Herrero, 34, Ohio.\n"
        "Bernie Sanders - “We are going to win this thing.”"
    )
    extraction = extract(nlp, text)
    # the speaker's name before any age or place
    got = [(m.speaker_mention.split(",")[0], content(m), m.kind) for m in extraction.mentions]
    assert got == [
        ("Pamela Padilla", "He is ignorant of our culture and lives.", MentionKind.DIRECT),
        ("Jacklyn Ashley", "How did we get this low?", MentionKind.DIRECT),
        ("Francisco Herrero", "The most unqualified child to ever run for president.", MentionKind.DIRECT),
        ("Bernie Sanders", "We are going to win this thing.", MentionKind.DIRECT),
    ]
    assert all(m.speaker_span is not None for m in extraction.mentions)


def test_a_dash_inside_a_sentence_signs_nothing(nlp: object) -> None:
    extraction = extract(nlp, 'Scores\n\nThe score - "a big win" - was 3-2.\n\n“It was close.” ― and so it goes.')
    assert [m.speaker_mention for m in extraction.mentions] == []


def test_a_quotation_in_doubled_apostrophes_goes_on_after_its_cue_sentence(nlp: object) -> None:
    text = (
        "Carrier moves\n\n''I'm more skilled with my hands than with my brain,'' said Robin Maynard, half joking. "
        "He holds two associate degrees. ''But I like working with my hands.''"
    )
    m = one(extract(nlp, text), "skilled with my hands")
    assert m.speaker_mention == "Robin Maynard"
    assert [s.text for s in m.spans] == [
        "I'm more skilled with my hands than with my brain",
        "But I like working with my hands.",
    ]


@pytest.mark.parametrize(
    ("sentence", "speaker", "expected"),
    [
        (
            "Senate Minority Leader Harry Reid has been pounding Trump as a “con artist.”",
            "Senate Minority Leader Harry Reid",
            "Trump as a “con artist.”",
        ),
        (
            "Angela Merkel heralded the deal with Turkey as a “breakthrough.”",
            "Angela Merkel",
            "the deal with Turkey as a “breakthrough.”",
        ),
        ('Laurence Tribe likened the rules to "burning the Constitution."', "Laurence Tribe", 'the rules to "burning'),
    ],
)
def test_a_quotation_that_names_an_object_as_something_is_its_subjects(
    nlp: object, sentence: str, speaker: str, expected: str
) -> None:
    m = one(extract(nlp, f"Rules fight\n\n{sentence}"), expected.split()[-1].strip('"“”.'))
    assert (m.speaker_mention, m.kind, m.cue_class) == (speaker, MentionKind.PARTIAL, CueClass.SPEECH)
    assert content(m).startswith(expected)


def test_a_belief_about_an_object_as_a_quotation_is_not_speech(nlp: object) -> None:
    extraction = extract(nlp, 'Rally\n\nHe sees himself as a "law and order candidate."')
    assert [m.cue_class for m in extraction.mentions if m.is_speech] == []


@pytest.mark.parametrize(
    ("sentence", "source", "expected"),
    [
        (
            "Donald Trump’s claim that there have been “thousands of shootings” in Chicago was checked.",
            "Donald Trump",
            "there have been “thousands of shootings” in Chicago",
        ),
        (
            'Trump\'s pledge to be "neutral" during the talks angered donors.',
            "Trump",
            'to be "neutral" during the talks',
        ),
        ("Republicans mocked his claim that people would ''learn nothing'' from it.", "his", "people would"),
    ],
)
def test_the_owner_of_a_claim_or_a_pledge_is_its_source(nlp: object, sentence: str, source: str, expected: str) -> None:
    m = one(extract(nlp, f"Fact check\n\n{sentence}"), expected.split()[1])
    assert (m.speaker_mention, m.cue_class) == (source, CueClass.SPEECH)
    assert content(m).startswith(expected)


def test_an_intention_pledged_stays_the_pledges(nlp: object) -> None:
    text = (
        "Immigration\n\nMr. Cruz pledged to oppose legal status for undocumented immigrants “today, tomorrow, forever.”"
    )
    m = one(extract(nlp, text), "today, tomorrow")
    assert (m.cue, m.speaker_mention, m.cue_class) == ("pledged", "Mr. Cruz", CueClass.SPEECH)
    assert content(m).startswith("to oppose legal status")


def test_a_quotation_signed_in_the_next_paragraph(nlp: object) -> None:
    text = (
        "Debate checks\n\nNot every statement could be checked.\n\n"
        '"I will look into it."\n\n- Hillary Clinton.\n\nThe senator is relying on an outdated statistic.'
    )
    m = one(extract(nlp, text), "look into it")
    assert (m.speaker_mention, m.kind) == ("Hillary Clinton", MentionKind.DIRECT)


@pytest.mark.parametrize(
    ("frame", "speaker"),
    [
        ("Howard continued his scathing remarks.\n\n", "Howard"),
        (
            "Senate Majority Leader Mitch McConnell delivered a blunt message. ",
            "Senate Majority Leader Mitch McConnell",
        ),
    ],
)
def test_a_sentence_about_a_statement_introduces_the_quotation_after_it(nlp: object, frame: str, speaker: str) -> None:
    m = one(extract(nlp, f"Senate\n\n{frame}“It is time to quit attacking people.”"), "quit attacking")
    assert (m.speaker_mention, m.kind, m.cue_class) == (speaker, MentionKind.DIRECT, CueClass.SPEECH)


def test_a_sentence_about_a_document_introduces_nothing_else(nlp: object) -> None:
    extraction = extract(nlp, "Senate\n\nThe governor signed the letter. The law takes effect in May.")
    assert extraction.mentions == ()


def test_a_quoted_phrase_under_a_verb_that_is_no_cue_is_its_subjects(nlp: object) -> None:
    text = "FBI\n\nCorey Lewandowski ripped James Comey for acting as “the judge and the jury” in the case."
    m = one(extract(nlp, text), "the judge and the jury")
    assert (m.speaker_mention, m.kind, m.cue_class) == ("Corey Lewandowski", MentionKind.PARTIAL, CueClass.SPEECH)


@pytest.mark.parametrize(
    "sentence",
    [
        "Trump appeared on “Meet the Press” on Sunday.",  # a title
        "The campaign formed a “super PAC” last year.",  # a label of two words
        "He sees it as “the best deal we could get.”",  # a belief
    ],
)
def test_titles_labels_and_beliefs_in_quotation_marks_are_no_ones_words(nlp: object, sentence: str) -> None:
    assert [m for m in extract(nlp, f"Sunday\n\n{sentence}").mentions if m.is_speech] == []


@pytest.mark.parametrize("dateline", ["WASHINGTON, Aug. 23 - ", "Washington (AFP) - ", "New York (CNN) — "])
def test_a_dateline_with_a_date_or_an_agency_is_not_the_subject(nlp: object, dateline: str) -> None:
    text = f"Clinton Foundation\n\n{dateline}A spokesman for Hillary Clinton called the report “a bogus story.”"
    m = one(extract(nlp, text), "bogus story")
    assert m.speaker_mention == "A spokesman"


def test_a_cue_the_parser_left_without_a_subject_takes_the_name_before_it(nlp: object) -> None:
    text = (
        "Campaign trail\n\nTuesday in New York City, while on the campaign trail for his wife Democratic "
        "presidential front-runner Hillary Clinton, former president Bill Clinton said his wife was "
        "uniquely qualified to be president at this time."
    )
    m = one(extract(nlp, text), "uniquely qualified")
    assert m.speaker_mention == "former president Bill Clinton"


@pytest.mark.parametrize(
    ("sentence", "source", "expected"),
    [
        (
            "Rubio accused Cruz of weakening the border patrol.",
            "Rubio",
            "Cruz of weakening the border patrol",
        ),
        (
            "The senator blamed the mayor for the long delays at the border.",
            "The senator",
            "the mayor for the long delays at the border",
        ),
        (
            "The minister praised the volunteers for their tireless work.",
            "The minister",
            "the volunteers for their tireless work",
        ),
    ],
)
def test_a_judgement_holds_whom_it_judges_and_what_for(nlp: object, sentence: str, source: str, expected: str) -> None:
    m = one(extract(nlp, f"Campaign trail\n\n{sentence}"), expected.split()[-1])
    assert content(m) == expected and m.speaker_mention == source and m.cue_class is CueClass.SPEECH


def test_asking_if_holds_the_question(nlp: object) -> None:
    text = "Campaign trail\n\nHe asked workers if they planned to attend the town hall."
    m = one(extract(nlp, text), "town hall")
    assert content(m) == "if they planned to attend the town hall" and m.cue == "asked" and m.speaker_mention == "He"


def test_a_question_put_by_no_one_named_is_still_speech(nlp: object) -> None:
    m = one(extract(nlp, "City hall\n\nThe mayor was asked what happened to the missing funds."), "missing funds")
    assert content(m) == "what happened to the missing funds" and m.cue == "asked" and m.cue_class is CueClass.SPEECH
    assert m.speaker_span is None  # the mayor was asked: he is not the one who asks


def test_a_modifier_set_off_by_although_is_not_an_aside(nlp: object) -> None:
    text = (
        "Press pool\n\nThe anchor said she treated the press line as a useful, although fleeting, chance to ask"
        " the president a question."
    )
    m = one(extract(nlp, text), "press line")
    assert (
        content(m)
        == "she treated the press line as a useful, although fleeting, chance to ask the president a question"
    )
    # A clause set off by "although" is still the journalist's aside.
    m = one(
        extract(nlp, "Talks\n\nThe minister said the talks went well, although critics doubt the outcome."), "talks"
    )
    assert content(m) == "the talks went well"


def test_a_but_left_on_the_first_clause_takes_the_second_with_it(nlp: object) -> None:
    text = (
        "Campaign trail\n\nAnn Lee, who drove in from Ohio to help the campaign, says there’s a “long month ahead”"
        " but she feels confident that Kasich will “surprise a lot of people.”"
    )
    m = one(extract(nlp, text), "long month")
    assert (
        content(m)
        == "there’s a “long month ahead” but she feels confident that Kasich will “surprise a lot of people.”"
    )


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        # whom a request is put to belongs to what is asked, even when the infinitive is a cue itself
        (
            "The senator called on the White House to release the sealed files.",
            "the White House to release the sealed files",
        ),
        (
            "The senator asked the court to reject the claims against the company.",
            "the court to reject the claims against the company",
        ),
        # an object with what it is taken as
        (
            "Voters cited jobs and health care as their main worries.",
            "jobs and health care as their main worries",
        ),
    ],
)
def test_a_request_keeps_whom_it_asks_and_an_object_what_it_is_taken_as(
    nlp: object, sentence: str, expected: str
) -> None:
    m = one(extract(nlp, f"Briefing\n\n{sentence}"), expected.split()[-1])
    assert content(m) == expected


def test_a_coordinator_left_at_the_end_of_a_clause_is_not_content(nlp: object) -> None:
    from service.extract import attribution
    from service.extract.parse import parse_article

    text = "Briefing\n\nObama came to brag that the rate has fallen and to rail against rivals."
    parsed = parse_article(
        make_article(text, ArticleMeta(outlet="T", url="https://example.org/b", published=None)), nlp
    )
    doc = parsed.doc
    fallen, rail, brag = (next(t for t in doc if t.text == w) for w in ("fallen", "rail", "brag"))
    # As the parser left it in a news sentence: the second infinitive hung on the cue, the "and" on the clause.
    rail.head = brag
    assert [t.text for t in fallen.subtree][-1] == "and"
    ((a, b),) = attribution._clause_ranges(parsed, [fallen])
    assert text[a:b] == "the rate has fallen"


@pytest.mark.parametrize(
    ("sentence", "first", "second"),
    [
        (
            "Rubio said the plan would fail and suggested that voters were tired of it.",
            "the plan would fail",
            "voters were tired of it",
        ),
        (
            "Carson said he was winning, telling reporters that his support had grown.",
            "he was winning",
            "his support had grown",
        ),
    ],
)
def test_a_second_saying_the_parser_hung_on_the_content_is_the_same_speakers_next(
    nlp: object, sentence: str, first: str, second: str
) -> None:
    ex = extract(nlp, f"Briefing\n\n{sentence}")
    speaker = sentence.split()[0]
    said, went_on = one(ex, first.split()[-1]), one(ex, second.split()[-1])
    assert content(said) == first
    assert content(went_on) == second
    assert said.speaker_mention == went_on.speaker_mention == speaker


@pytest.mark.parametrize(
    ("sentence", "needle", "speaker"),
    [
        # a subject of its own
        ("The mayor said the council had met, and its chair said the vote would wait.", "wait", "its chair"),
        # joined to a clause whose named subject can be the one who goes on
        ("Rubio said the senator voted for the bill and told reporters it was a mistake.", "mistake", "the senator"),
        # the innermost saying claims it, not one around it
        ("Carson told donors his campaign was winning and urged them to give more, officials said.", "give", "Carson"),
        # a belief with its own subject on the way
        ("The agency said Damascus wanted new talks and urged rivals to join them.", "rivals", "Damascus"),
    ],
)
def test_a_second_saying_that_is_not_the_outer_speakers_keeps_its_own(
    nlp: object, sentence: str, needle: str, speaker: str
) -> None:
    ex = extract(nlp, f"Briefing\n\n{sentence}")
    hits = [m for m in ex.mentions if any(needle in s.text for s in m.content_spans)]
    assert hits, [(m.cue, m.text) for m in ex.mentions]
    innermost = min(hits, key=lambda m: sum(len(s.text) for s in m.content_spans))
    assert innermost.speaker_mention == speaker


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        # what a name is given to belongs with the name, even when the object is a statement noun
        ("Ryan called the remarks about the judge “racially toxic.”", "the remarks about the judge “racially toxic.”"),
        ("Ryan termed the remarks about the judge “racially toxic.”", "the remarks about the judge “racially toxic.”"),
        # the object parsed inside the quoted name
        (
            "Paul called the endorsement “the most transparent display of affection since Judas.”",
            "the endorsement “the most transparent display of affection since Judas.”",
        ),
    ],
)
def test_a_name_given_in_quotation_marks_keeps_what_it_names(nlp: object, sentence: str, expected: str) -> None:
    m = one(extract(nlp, f"Briefing\n\n{sentence}"), expected.split()[-1])
    assert content(m) == expected
    assert m.speaker_mention == sentence.split()[0]
