from photoseek.search.query import Query, QueryTerm


def test_weights_prefix_and_negatives():
    query = Query.build(["2:beach", "sunset"], negatives=["people"], images=["/x/a.jpg"])
    assert query.terms == (
        QueryTerm("text", "beach", 2.0),
        QueryTerm("text", "sunset", 1.0),
        QueryTerm("image", "/x/a.jpg", 1.0),
        QueryTerm("text", "people", -1.0),
    )
    assert query.describe() == '2*"beach" + "sunset" + </x/a.jpg> - "people"'


def test_times_and_plain_colons_are_not_weights():
    assert Query.build(["12:30 clock"]).terms[0] == QueryTerm("text", "12:30 clock", 1.0)
    assert Query.build(["note: cat"]).terms[0].value == "note: cat"


def test_query_with_only_negatives_is_empty():
    assert not Query.build([], negatives=["dogs"])


def test_blank_texts_are_no_terms():
    assert not Query.build(["", "  "])
    assert Query.build(["", "beach"], negatives=[" "]).terms == (QueryTerm("text", "beach", 1.0),)
