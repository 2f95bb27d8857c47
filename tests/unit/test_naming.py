"""Shoot folder recognition: patterns, folder dates, customers, containers."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archivekeeper.core.naming import (
    Container,
    ShootName,
    ShootPattern,
    Unrecognised,
    classify,
    compile_pattern,
    normalize_customer,
    parse_folder_date,
)

TODAY = date(2025, 3, 10)
SPEC_TEXTS = ("{date} {customer}", "{date}_{customer}_{type}", "{customer}/{date} {type}")
SPEC = tuple(compile_pattern(text) for text in SPEC_TEXTS)


def shoot(customer, key, day, kind, pattern):
    return ShootName(customer=customer, customer_key=key, date=day, type=kind, pattern=pattern)


# --- folder dates -------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["2024-05-12", "20240512", "12.05.2024"])
def test_parse_folder_date_reads_every_form(text):
    assert parse_folder_date(text) == date(2024, 5, 12)


@pytest.mark.parametrize(
    "text", ["2023-02-30", "31.04.2024", "20241301", "2024-00-10", "0000-01-01", "29.02.2023"]
)
def test_parse_folder_date_rejects_impossible_dates(text):
    with pytest.raises(ValueError, match="not a real date"):
        parse_folder_date(text)


@pytest.mark.parametrize("text", ["2024-02-29", "20240229", "29.02.2024", "29.02.2000"])
def test_parse_folder_date_accepts_29_february_in_leap_years(text):
    assert parse_folder_date(text).day == 29


@pytest.mark.parametrize("text", ["2023-02-29", "29.02.1900", "21000229"])
def test_parse_folder_date_rejects_29_february_in_other_years(text):
    with pytest.raises(ValueError, match="not a real date"):
        parse_folder_date(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2024-5-12",
        "12.5.2024",
        "2024/05/12",
        "2024-05-12 ",
        "2024051",
        "12-05-2024",
        "٢٠٢٤٠٥١٢",
        "2024.05.12",
        "１２.05.2024",
    ],
)
def test_parse_folder_date_rejects_other_shapes(text):
    with pytest.raises(ValueError, match="YYYY-MM-DD, YYYYMMDD or DD.MM.YYYY"):
        parse_folder_date(text)


@given(st.text())
@settings(max_examples=200)
def test_parse_folder_date_raises_only_value_error(text):
    try:
        parse_folder_date(text)
    except ValueError:
        pass


@given(st.dates(min_value=date(1, 1, 1)), st.sampled_from(["%Y-%m-%d", "%Y%m%d", "%d.%m.%Y"]))
@settings(max_examples=200)
def test_parse_folder_date_round_trips_every_form(day, form):
    text = form.replace("%Y", f"{day.year:04d}").replace("%m", f"{day.month:02d}")
    text = text.replace("%d", f"{day.day:02d}")
    assert parse_folder_date(text) == day


# --- plausible folder dates ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("folder", "reason"),
    [
        ("1989-12-31 Anna", "folder date 1989-12-31 is before 1990-01-01"),
        ("2025-03-12 Anna", "folder date 2025-03-12 is in the future"),
        ("2031-01-01 Anna", "folder date 2031-01-01 is in the future"),
        ("2023-02-30 Anna", "folder date 2023-02-30 is not a real date"),
        ("31.04.2024_Anna_passport", "folder date 31.04.2024 is not a real date"),
        ("99999999_Anna_passport", "folder date 99999999 is not a real date"),
    ],
)
def test_classify_reports_an_unusable_folder_date(folder, reason):
    assert classify(SPEC, (folder,), TODAY) == Unrecognised(reason)


@pytest.mark.parametrize(
    "day", [date(1990, 1, 1), TODAY - timedelta(days=1), TODAY, TODAY + timedelta(days=1)]
)
def test_classify_accepts_a_plausible_folder_date(day):
    result = classify(SPEC, (f"{day.isoformat()} Anna",), TODAY)
    assert isinstance(result, ShootName)
    assert result.date == day


def test_classify_accepts_29_february_of_a_leap_year_and_rejects_it_otherwise():
    leap = classify(SPEC, ("29.02.2024 Anna",), TODAY)
    assert isinstance(leap, ShootName)
    assert leap.date == date(2024, 2, 29)
    assert classify(SPEC, ("29.02.2023 Anna",), TODAY) == Unrecognised(
        "folder date 29.02.2023 is not a real date"
    )


def test_plausible_future_is_relative_to_the_given_today():
    assert isinstance(classify(SPEC, ("2025-03-12 Anna",), date(2025, 3, 11)), ShootName)
    assert isinstance(classify(SPEC, ("2025-03-12 Anna",), date(2025, 3, 10)), Unrecognised)


# --- the SPEC patterns --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (
            ("2024-05-12 Mäkinen Anna",),
            shoot("Mäkinen Anna", "mäkinen anna", date(2024, 5, 12), None, "{date} {customer}"),
        ),
        (
            ("2024-05-12 Virtanen Matti",),
            shoot("Virtanen Matti", "virtanen matti", date(2024, 5, 12), None, "{date} {customer}"),
        ),
        (
            ("20240512_Mäkinen_Anna_passport",),
            shoot(
                "Mäkinen Anna",
                "mäkinen anna",
                date(2024, 5, 12),
                "passport",
                "{date}_{customer}_{type}",
            ),
        ),
        (
            ("20240512_Virtanen_Matti_wedding",),
            shoot(
                "Virtanen Matti",
                "virtanen matti",
                date(2024, 5, 12),
                "wedding",
                "{date}_{customer}_{type}",
            ),
        ),
        (
            ("Virtanen Matti", "12.05.2024 passport"),
            shoot(
                "Virtanen Matti",
                "virtanen matti",
                date(2024, 5, 12),
                "passport",
                "{customer}/{date} {type}",
            ),
        ),
    ],
)
def test_classify_reads_the_spec_examples(parts, expected):
    assert classify(SPEC, parts, TODAY) == expected


def test_a_customer_folder_is_a_container():
    assert classify(SPEC, ("Virtanen Matti",), TODAY) == Container()


def test_the_volume_root_is_always_a_container():
    assert classify(SPEC, (), TODAY) == Container()
    assert classify((), (), TODAY) == Container()


@pytest.mark.parametrize(
    "parts",
    [
        ("Virtanen Matti", "misc"),
        ("Virtanen Matti", "12.05.2024 passport", "RAW"),
        ("Virtanen Matti", "12.05.2024"),
        ("Virtanen Matti", "12.05.2024 two words"),
        ("Virtanen Matti", "12.05.2024 my_type"),
        ("___",),
        ("  ",),
    ],
)
def test_classify_reports_folders_that_match_no_pattern(parts):
    assert classify(SPEC, parts, TODAY) == Unrecognised("matches no shoot pattern")


def test_classify_shows_the_customer_as_a_person_writes_it():
    result = classify(SPEC, ("2024-05-12   Virtanen   Matti  ",), TODAY)
    assert isinstance(result, ShootName)
    assert result.customer == "Virtanen Matti"
    assert result.customer_key == "virtanen matti"
    flat = classify(SPEC, ("20240512_Mäkinen__Anna_wedding",), TODAY)
    assert (flat.customer, flat.customer_key) == ("Mäkinen Anna", "mäkinen anna")


def test_classify_leaves_extra_words_to_the_customer_when_there_is_no_type():
    result = classify(SPEC, ("2024-05-12 Mäkinen Anna passport",), TODAY)
    assert isinstance(result, ShootName)
    assert (result.customer, result.type) == ("Mäkinen Anna passport", None)


def test_a_pattern_without_date_gives_no_date():
    pattern = compile_pattern("{customer} {type}")
    assert not pattern.has_date
    assert classify([pattern], ("Virtanen Matti wedding",), TODAY) == shoot(
        "Virtanen Matti", "virtanen matti", None, "wedding", "{customer} {type}"
    )


# --- ambiguous splits ---------------------------------------------------------------------


def test_the_customer_gets_the_rest_after_it():
    result = classify([compile_pattern("{customer}-{type}")], ("Anna-Liisa-wedding",), TODAY)
    assert isinstance(result, ShootName)
    assert (result.customer, result.type) == ("Anna-Liisa", "wedding")


def test_the_customer_gets_the_rest_before_it():
    result = classify([compile_pattern("{type}-{customer}")], ("pass-Anna-Liisa",), TODAY)
    assert isinstance(result, ShootName)
    assert (result.customer, result.type) == ("Anna-Liisa", "pass")


@pytest.mark.parametrize(
    ("text", "folder", "customer", "kind"),
    [
        ("{date}{customer}", "20240512Anna", "Anna", None),
        ("{customer}{date}", "Anna 2024-05-12", "Anna", None),
        ("{customer} {type}{date}", "Anna passport12.05.2024", "Anna", "passport"),
        ("{customer} {date}{type}", "Anna 20240512passport", "Anna", "passport"),
    ],
)
def test_a_date_next_to_another_placeholder_is_split_by_its_shape(text, folder, customer, kind):
    result = classify([compile_pattern(text)], (folder,), TODAY)
    assert isinstance(result, ShootName)
    assert (result.customer, result.date, result.type) == (customer, date(2024, 5, 12), kind)


# --- customers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["Mäkinen_Anna", "mäkinen  anna", "Ma\u0308kinen Anna", "MÄKINEN\tANNA", "Mäkinen\n_ Anna "],
)
def test_normalize_customer_treats_spec_spellings_as_one_customer(name):
    assert normalize_customer(name) == "mäkinen anna"


def test_normalize_customer_tells_different_customers_apart():
    assert normalize_customer("Mäkinen Anna") != normalize_customer("Makinen Anna")
    assert normalize_customer("Anna Mäkinen") != normalize_customer("Mäkinen Anna")


def test_nfd_and_nfc_folder_names_give_the_same_customer():
    nfc = classify(SPEC, ("Mäkinen Anna", "12.05.2024 passport"), TODAY)
    nfd = classify(
        SPEC, (unicodedata.normalize("NFD", "Mäkinen Anna"), "12.05.2024 passport"), TODAY
    )
    assert isinstance(nfc, ShootName)
    assert nfd == nfc


def test_nfd_folder_names_match_an_nfc_literal():
    pattern = compile_pattern("Kuvaukset ää/{date} {customer}")
    parts = (unicodedata.normalize("NFD", "Kuvaukset ää"), "2024-05-12 Anna")
    assert isinstance(classify([pattern], parts, TODAY), ShootName)


# --- containers ---------------------------------------------------------------------------


def test_every_proper_prefix_of_a_deep_pattern_is_a_container():
    pattern = compile_pattern("Asiakkaat/{customer}/{date}/{type}")
    assert classify([pattern], ("Asiakkaat",), TODAY) == Container()
    assert classify([pattern], ("Asiakkaat", "Anna"), TODAY) == Container()
    assert classify([pattern], ("Asiakkaat", "Anna", "2024-05-12"), TODAY) == Container()
    assert classify([pattern], ("Asiakkaat", "Anna", "2024-05-12", "wedding"), TODAY) == shoot(
        "Anna", "anna", date(2024, 5, 12), "wedding", "Asiakkaat/{customer}/{date}/{type}"
    )


def test_a_folder_outside_a_literal_prefix_is_not_a_container():
    pattern = compile_pattern("Asiakkaat/{customer}/{date} {type}")
    assert classify([pattern], ("Muut",), TODAY) == Unrecognised("matches no shoot pattern")
    assert classify([pattern], ("asiakkaat",), TODAY) == Unrecognised("matches no shoot pattern")


@pytest.mark.parametrize("folder", ["2023-02-30", "1989-12-31", "2031-01-01"])
def test_a_container_date_must_be_plausible(folder):
    pattern = compile_pattern("{date}/{customer}")
    assert classify([pattern], (folder,), TODAY) == Unrecognised("matches no shoot pattern")
    assert classify([pattern], ("2024-05-12",), TODAY) == Container()


def test_a_shoot_match_wins_over_being_a_container():
    # "2024-05-12 Anna" also fits {customer} of the third pattern.
    assert isinstance(classify(SPEC, ("2024-05-12 Anna",), TODAY), ShootName)


def test_an_implausible_shoot_date_is_reported_even_if_it_could_be_a_container():
    assert classify(SPEC, ("1989-12-31 Anna",), TODAY) == Unrecognised(
        "folder date 1989-12-31 is before 1990-01-01"
    )


def test_folders_deeper_than_every_pattern_are_unrecognised():
    parts = ("Virtanen Matti",) * 10_000
    assert classify(SPEC, parts, TODAY) == Unrecognised("matches no shoot pattern")


def test_no_patterns_recognise_nothing_but_the_root():
    assert classify((), ("2024-05-12 Anna",), TODAY) == Unrecognised("matches no shoot pattern")


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        (("Virtanen Matti", ".."), "not a plain folder name: '..'"),
        ((".",), "not a plain folder name: '.'"),
        (("",), "not a plain folder name: ''"),
        (("Anna/2024-05-12 x",), "not a plain folder name: 'Anna/2024-05-12 x'"),
        (("2024-05-12 M\udce4kinen",), "folder name is not valid UTF-8"),
    ],
)
def test_classify_refuses_components_that_are_not_plain_names(parts, reason):
    assert classify(SPEC, parts, TODAY) == Unrecognised(reason)


# --- order and literals -------------------------------------------------------------------


def test_the_first_matching_pattern_wins():
    customer_first = compile_pattern("{date} {customer}")
    type_first = compile_pattern("{date} {type} {customer}")
    folder = ("2024-05-12 wedding Anna",)
    a = classify([customer_first, type_first], folder, TODAY)
    b = classify([type_first, customer_first], folder, TODAY)
    assert isinstance(a, ShootName)
    assert isinstance(b, ShootName)
    assert (a.customer, a.type, a.pattern) == ("wedding Anna", None, "{date} {customer}")
    assert (b.customer, b.type, b.pattern) == ("Anna", "wedding", "{date} {type} {customer}")


def test_the_first_matching_pattern_decides_even_with_a_bad_date():
    lenient = compile_pattern("{customer}")
    folder = ("2023-02-30 Anna",)
    assert classify([SPEC[0], lenient], folder, TODAY) == Unrecognised(
        "folder date 2023-02-30 is not a real date"
    )
    assert isinstance(classify([lenient, SPEC[0]], folder, TODAY), ShootName)


def test_literals_with_regex_metacharacters_match_literally():
    pattern = compile_pattern("Shoots (archive)/{date} {customer}")
    assert classify([pattern], ("Shoots (archive)", "2024-05-12 Anna"), TODAY) == shoot(
        "Anna", "anna", date(2024, 5, 12), None, "Shoots (archive)/{date} {customer}"
    )
    assert classify([pattern], ("Shoots archive",), TODAY) == Unrecognised(
        "matches no shoot pattern"
    )
    assert classify([pattern], ("Shoots (archive)",), TODAY) == Container()


@pytest.mark.parametrize("literal", ["a.b", "a*", "[x]", "a+b", "^$", "a|b", "\\d", "?"])
def test_each_metacharacter_is_literal(literal):
    pattern = compile_pattern(f"{literal} {{customer}}")
    assert isinstance(classify([pattern], (f"{literal} Anna",), TODAY), ShootName)
    assert classify([pattern], ("xx Anna",), TODAY) == Unrecognised("matches no shoot pattern")


def test_literals_are_case_sensitive():
    pattern = compile_pattern("Shoots/{date} {customer}")
    assert classify([pattern], ("shoots",), TODAY) == Unrecognised("matches no shoot pattern")


# --- compiling patterns -------------------------------------------------------------------


def test_compile_pattern_reports_text_depth_and_date():
    pattern = compile_pattern("{customer}/{date} {type}")
    assert isinstance(pattern, ShootPattern)
    assert (pattern.text, pattern.depth, pattern.has_date) == ("{customer}/{date} {type}", 2, True)
    assert compile_pattern("{customer}").depth == 1
    assert not compile_pattern("{customer}").has_date


def test_compiled_patterns_are_frozen_and_compare_by_text():
    pattern = compile_pattern("{date} {customer}")
    assert pattern == compile_pattern("{date} {customer}")
    with pytest.raises(AttributeError):
        pattern.text = "{customer}"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("{date} {name}", r"unknown placeholder \{name\}"),
        ("{Date} {customer}", r"unknown placeholder \{Date\}"),
        ("{date} {type}", r"no \{customer\}"),
        ("Shoots/{date}", r"no \{customer\}"),
        ("{customer}/{customer}", r"\{customer\} twice"),
        ("{date} {customer} {date}", r"\{date\} twice"),
        ("a//{customer}", "empty folder level"),
        ("/{customer}", "empty folder level"),
        ("{customer}/", "empty folder level"),
        ("/", "empty folder level"),
        ("{customer}{type}", r"\{customer\}\{type\} with nothing between"),
        ("{date} {type}{customer}", r"\{type\}\{customer\} with nothing between"),
        ("./{customer}", "'.' folder level"),
        ("{customer}/../{date}", "'..' folder level"),
        ("{date} {customer", "unmatched '{'"),
        ("{date} customer}", "unmatched '}'"),
        ("{{customer}}", "unmatched '{'"),
    ],
)
def test_compile_pattern_rejects_bad_patterns(text, message):
    with pytest.raises(ValueError, match=message):
        compile_pattern(text)


@given(st.text())
@settings(max_examples=200)
def test_compile_pattern_raises_only_value_error_on_any_text(text):
    try:
        pattern = compile_pattern(text)
    except ValueError:
        return
    assert pattern.depth == text.count("/") + 1


PATTERN_PIECES = [
    "{date}",
    "{customer}",
    "{type}",
    "{name}",
    "/",
    " ",
    "_",
    "-",
    "(",
    ".",
    "..",
    "{",
    "}",
    "*",
    "\\",
    "ä",
    "a\u0308",
    "x",
]


@given(st.lists(st.sampled_from(PATTERN_PIECES), max_size=8).map("".join))
@settings(max_examples=200)
def test_compile_pattern_raises_only_value_error_on_pattern_like_text(text):
    try:
        pattern = compile_pattern(text)
    except ValueError:
        return
    assert "{customer}" in text
    assert pattern.text == text
    assert pattern.has_date == ("{date}" in text)


# --- classify on arbitrary input ----------------------------------------------------------

FOLDER_TEXT = st.one_of(
    st.text(alphabet="0123456789-._ /\t\nAaäMatiK", max_size=30),
    st.text(st.characters(exclude_categories=()), max_size=20),
    # Lone surrogates: what os.fsdecode makes of undecodable bytes.
    st.text(st.characters(categories=["Cs", "L", "Zs"]), max_size=10),
    st.dates().map(lambda d: f"{d.year:04d}{d.month:02d}{d.day:02d}_A_b"),
)


@given(st.lists(FOLDER_TEXT, max_size=4).map(tuple), st.dates(min_value=date(1900, 1, 1)))
@settings(max_examples=200)
def test_classify_never_raises_and_answers_with_one_of_three_kinds(parts, today):
    result = classify(SPEC, parts, today)
    assert isinstance(result, ShootName | Container | Unrecognised)
    if isinstance(result, ShootName):
        assert result.customer_key
        assert result.customer == result.customer.strip()
        assert result.date is not None
        assert date(1990, 1, 1) <= result.date <= today + timedelta(days=1)


CUSTOMER_NAMES = st.text(alphabet="AaäÖ _-'x", min_size=1, max_size=20).filter(
    lambda name: normalize_customer(name) != ""
)


@given(
    CUSTOMER_NAMES,
    st.dates(min_value=date(1990, 1, 1), max_value=TODAY + timedelta(days=1)),
    st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True),
)
@settings(max_examples=200)
def test_spec_layouts_round_trip_customer_date_and_type(customer, day, kind):
    written = re.sub(r"[\s_]+", " ", customer).strip()  # as a person writes it
    nested = classify(SPEC, (customer, f"{day:%d.%m.%Y} {kind}"), TODAY)
    assert isinstance(nested, ShootName)
    assert (nested.customer, nested.date, nested.type) == (written, day, kind)
    assert nested.customer_key == normalize_customer(customer)
    flat = classify(SPEC, (f"{day:%Y-%m-%d} {customer}",), TODAY)
    assert isinstance(flat, ShootName)
    assert (flat.customer, flat.date, flat.type) == (written, day, None)
