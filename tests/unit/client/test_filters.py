from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pendulum
import pytest

from airflow_provider_credly.client.filters import (
    BADGE_FILTERS,
    BADGE_SORTS,
    EMPLOYEE_FILTERS,
    EMPLOYEE_SORTS,
    build_filter,
    build_sort,
)


def test_builds_key_value_pairs_in_order():
    text = build_filter(
        {"state": ["accepted", "pending"], "badge_template_id": "t1", "public": True}, BADGE_FILTERS
    )
    assert text == "state::accepted,pending|badge_template_id::t1|public::true"


def test_dates_from_date_datetime_and_pendulum():
    east = timezone(timedelta(hours=5))
    text = build_filter(
        {
            "issued_at_min": date(2024, 2, 29),
            "updated_at_min": datetime(2024, 3, 1, 2, 0, tzinfo=east),  # 2024-02-29 21:00 UTC
            "created_at_max": pendulum.datetime(2024, 12, 31, 23, 59, tz="UTC"),
            "expires_at_min": "2025-01-01",
        },
        BADGE_FILTERS,
    )
    assert text == (
        "issued_at_min::2024-02-29|updated_at_min::2024-02-29|created_at_max::2024-12-31|expires_at_min::2025-01-01"
    )


def test_none_values_are_left_out_and_empty_gives_none():
    assert build_filter({"state": None}, BADGE_FILTERS) is None
    assert build_filter(None, BADGE_FILTERS) is None
    assert build_filter({"team": "Dev", "name_or_email": None}, EMPLOYEE_FILTERS) == "team::Dev"


def test_string_filters_are_validated_too():
    assert build_filter("state::revoked|user_id::42", BADGE_FILTERS) == "state::revoked|user_id::42"
    with pytest.raises(ValueError, match="unknown filter key"):
        build_filter("colour::red", BADGE_FILTERS)
    with pytest.raises(ValueError, match="key::value"):
        build_filter("state=revoked", BADGE_FILTERS)


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"stat": "accepted"}, "unknown filter key"),
        ({"state": "approved"}, "accepts pending, accepted, rejected, revoked"),
        ({"issued_at_min": "2024-13-01"}, "needs a date"),
        ({"issued_at_min": "01/02/2024"}, "needs a date"),
        ({"public": "yes"}, "true or false"),
        ({"query": "a|b"}, "must not contain"),
        ({"query": "a::b"}, "must not contain"),
        ({"badge_template_id": ["ok", "bad,id"]}, "must not contain"),
        ({"query": ""}, "must not be empty"),
        ({"user_id": {"x": 1}}, "needs text"),
        ({"badge_template_id": []}, "at least one value"),
    ],
)
def test_bad_filters_raise_clear_errors(filters, message):
    with pytest.raises(ValueError, match=message):
        build_filter(filters, BADGE_FILTERS)


def test_employee_state_is_an_enumeration():
    assert build_filter({"employee_state": "accepted"}, EMPLOYEE_FILTERS) == "employee_state::accepted"
    with pytest.raises(ValueError, match="accepts"):
        build_filter({"employee_state": "revoked"}, EMPLOYEE_FILTERS)


def test_sorts():
    assert build_sort("-issued_at|users[last_name]", BADGE_SORTS) == "-issued_at|users[last_name]"
    assert build_sort(["email", "-created_at"], EMPLOYEE_SORTS) == "email|-created_at"
    assert build_sort(None, BADGE_SORTS) is None
    with pytest.raises(ValueError, match="unknown sort key"):
        build_sort("-updated_at", BADGE_SORTS)


@pytest.mark.parametrize(
    "sort", ["--issued_at", "-", "+issued_at", "- issued_at", "issued_at-", "updated_at"]
)
def test_sort_keys_take_at_most_one_leading_minus_and_a_documented_key(sort):
    with pytest.raises(ValueError, match="unknown sort key"):
        build_sort(sort, BADGE_SORTS)


def test_sort_key_twice_is_refused():
    with pytest.raises(ValueError, match="given twice"):
        build_sort("issued_at|-issued_at", BADGE_SORTS)


def test_employee_sort_by_name_the_references_own_example():
    assert build_sort("-name", EMPLOYEE_SORTS) == "-name"
    assert build_sort(["name", "-created_at"], EMPLOYEE_SORTS) == "name|-created_at"


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"query": ":abc"}, "must not start with ':'"),  # "query:::abc" splits two ways
        ({"badge_template_id": ["ok", ":x"]}, "must not start with ':'"),
        ({"query": "a|"}, "must not contain '|'"),
        ({"recipient_email": "x::y@example.com"}, "must not contain '::'"),
        ("query:::abc", "must not start with ':'"),
        ("query::a::b", "must not contain '::'"),
        ("state::pending|state::accepted", "given twice"),  # one of the two would be dropped
        ("query::   ", "must not be empty"),
    ],
)
def test_separators_credly_cannot_parse_are_refused(filters, message):
    with pytest.raises(ValueError, match=message):
        build_filter(filters, BADGE_FILTERS)


def test_single_colons_and_commas_in_text_values_are_kept():
    assert build_filter({"query": "Smith, J: Dr"}, BADGE_FILTERS) == "query::Smith, J: Dr"
    assert build_filter("query::a:b|state::pending,accepted", BADGE_FILTERS) == (
        "query::a:b|state::pending,accepted"
    )
