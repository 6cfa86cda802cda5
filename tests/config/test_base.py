import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from arctic_like.config import BaseConfig, HumanFloat, HumanFraction, HumanInt, parse_human_int


class Numbers(BaseConfig):
    count: HumanInt = 0
    fraction: HumanFraction = 0.0
    rate: HumanFloat = 0.0


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2k", 2000),
        ("2K", 2000),
        ("1.5M", 1_500_000),
        ("1e5", 100_000),
        ("10_000", 10_000),
        ("3b", 3 * 10**9),
        (" 7 ", 7),
        (12, 12),
        (4.0, 4),
        ("0.5k", 500),
        ("1Ki", 1024),
        ("1.5Mi", 1_572_864),
        ("2Gi", 2 * 2**30),
        ("1ti", 2**40),
        ("2^10", 1024),
        ("2 ^ 3", 8),
        ("10^2", 100),
    ],
)
def test_human_int(text, value):
    assert Numbers(count=text).count == value


@pytest.mark.parametrize("text", ["lots", "1.5", "2kk", "", "+", 2.5, "inf", "2^-1", "1Kii", "^2", "10^999"])
def test_human_int_rejects(text):
    with pytest.raises(ValidationError, match="count"):
        Numbers(count=text)


def test_human_int_error_messages():
    with pytest.raises(ValueError, match=r"'lots' is not a number; write e.g. 2000, 2k"):
        parse_human_int("lots")
    with pytest.raises(ValueError, match=r"1.5 is not a whole number"):
        parse_human_int(1.5)


@pytest.mark.parametrize(
    ("text", "value"),
    [("10%", 0.1), ("50 %", 0.5), ("0.25", 0.25), (0.3, 0.3), ("1e-1", 0.1), (1, 1.0), ("0%", 0.0)],
)
def test_human_fraction(text, value):
    assert Numbers(fraction=text).fraction == pytest.approx(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("150%", "not a fraction between 0 and 1"),
        ("-0.1", "not a fraction between 0 and 1"),
        ("half", "not a fraction; write e.g. 0.1 or 10%"),
        ("x%", "not a percentage"),
    ],
)
def test_human_fraction_rejects(text, message):
    with pytest.raises(ValidationError, match=message):
        Numbers(fraction=text)


def test_human_float_accepts_yaml_style_strings():
    assert Numbers(rate="1e-3").rate == pytest.approx(0.001)
    assert Numbers(rate="3k").rate == 3000.0
    with pytest.raises(ValidationError, match=r"not a number; write e\.g\. 0\.001"):
        Numbers(rate="fast")


def test_extra_keys_are_forbidden():
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Numbers(counts=3)


def test_assignment_is_validated():
    numbers = Numbers()
    numbers.count = "2k"
    assert numbers.count == 2000
    with pytest.raises(ValidationError):
        numbers.fraction = "200%"


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=10**6), st.sampled_from([("", 1), ("k", 10**3), ("M", 10**6)]))
def test_human_int_property_suffix_scales(n, suffix):
    letters, scale = suffix
    assert Numbers(count=f"{n}{letters}").count == n * scale


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=100))
def test_human_fraction_property_percent_equals_ratio(p):
    assert Numbers(fraction=f"{p}%").fraction == pytest.approx(Numbers(fraction=p / 100).fraction)
