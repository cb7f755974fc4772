import pytest

from photoseek.errors import PhotoseekError
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


def test_a_query_line_groups_words_into_terms_until_a_sign_or_weight():
    line = Query.parse("red car -people on bikes 2:sunset +grandma's #1 fan --not \"a crowd\" --image ~/a.jpg")
    assert line.terms == (
        QueryTerm("text", "red car", 1.0),
        QueryTerm("text", "people on bikes", -1.0),
        QueryTerm("text", "sunset", 2.0),
        QueryTerm("text", "grandma's #1 fan", 1.0),
        QueryTerm("text", "a crowd", -1.0),
        QueryTerm("image", "~/a.jpg", 1.0),
    )
    assert Query.parse("-2:people beach").terms == (QueryTerm("text", "people beach", -2.0),)
    assert Query.parse("12:30 clock t-shirt").terms == (QueryTerm("text", "12:30 clock t-shirt", 1.0),)
    assert not Query.parse('"" " "') and Query.parse('a "" b').terms == (QueryTerm("text", "a b", 1.0),)


def test_a_line_and_the_arguments_read_weights_alike():
    assert Query.parse('"1:dog" -1:cat --not-image 2:b.jpg').terms == Query.build(
        ["1:dog", "-1:cat"], negative_images=["2:b.jpg"]).terms


@pytest.mark.parametrize(("line", "message"), [
    ("beach --not -1:cat", "already subtracted"),
    ('"open quote', "never closes"),
    ("beach --sort", "--sort is not an option of a query line"),
    ("beach --not", "needs a text after it"),
    ("0:beach", "a weight of 0 adds nothing"),
])
def test_bad_query_lines_say_what_to_write(line, message):
    with pytest.raises(PhotoseekError, match=message):
        Query.parse(line)
