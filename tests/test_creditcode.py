"""Unified social credit codes: the GB 32100-2015 check character is enforced."""

from __future__ import annotations

import pytest
from catalogue import raises_english

from geoapp.domain.creditcode import (
    ALPHABET,
    compute_check_char,
    is_valid_credit_code,
    make_credit_code,
    organisation_code_ok,
    validate_credit_code,
)
from geoapp.domain.errors import InvalidInput

# Codes printed on published business licences and in the standard's own worked example.
PUBLISHED = [
    "91350100M000100Y43",  # example widely quoted with GB 32100-2015
    "914403001922038216",  # 华为技术有限公司
    "91440300708461136T",  # 深圳市腾讯计算机系统有限公司
    "91330100799655058B",  # 阿里巴巴（中国）有限公司
    "91110000802100433B",  # 北京百度网讯科技有限公司
    "91110108551385082Q",  # 小米科技有限责任公司
]


@pytest.mark.parametrize("code", PUBLISHED)
def test_published_codes_validate(code: str) -> None:
    validate_credit_code(code)
    assert is_valid_credit_code(code)


@pytest.mark.parametrize("code", PUBLISHED)
def test_published_codes_have_a_correct_organisation_check_digit(code: str) -> None:
    assert organisation_code_ok(code)


def test_check_character_can_be_a_letter() -> None:
    assert compute_check_char("91440300708461136") == "T"


def test_make_credit_code_appends_the_check_character() -> None:
    assert make_credit_code("91350100M000100Y4") == "91350100M000100Y43"


def test_every_single_character_typo_is_caught() -> None:
    code = "91440300708461136T"
    for pos in range(17):
        for ch in ALPHABET:
            if ch == code[pos]:
                continue
            typo = code[:pos] + ch + code[pos + 1:]
            assert not is_valid_credit_code(typo), typo


def test_swapped_adjacent_characters_are_caught() -> None:
    code = "914403001922038216"
    swapped = code[:9] + code[10] + code[9] + code[11:]
    assert swapped != code
    assert not is_valid_credit_code(swapped)


def test_wrong_check_character_names_the_expected_one() -> None:
    with raises_english(InvalidInput, "should be '3'"):
        validate_credit_code("91350100M000100Y44")


def test_seventeen_characters_are_rejected_for_their_length() -> None:
    with raises_english(InvalidInput, "17 characters; expected 18"):
        validate_credit_code("91350100M000100Y4")


@pytest.mark.parametrize("bad", ["I", "O", "S", "V", "Z", "-", "中"])
def test_letters_outside_the_alphabet_are_rejected_with_their_position(bad: str) -> None:
    code = "91350100" + bad + "000100Y43"
    with raises_english(InvalidInput, "position 9"):
        validate_credit_code(code)


def test_blanks_and_lower_case_are_tolerated() -> None:
    assert is_valid_credit_code("  91440300708461136t ")


def test_empty_and_non_text_codes_are_rejected() -> None:
    with raises_english(InvalidInput, "empty"):
        validate_credit_code("   ")
    with raises_english(InvalidInput, "must be text"):
        validate_credit_code(914403001922038216)  # type: ignore[arg-type]


def test_wrong_organisation_check_digit_is_reported_but_not_rejected() -> None:
    # Jiaozuo admin code, organisation code whose own check digit is wrong (should be 9).
    code = make_credit_code("91410800173770405")
    assert not organisation_code_ok(code)
    assert is_valid_credit_code(code)


def test_invalid_input_maps_to_http_400() -> None:
    with pytest.raises(InvalidInput) as info:
        validate_credit_code("123")
    assert info.value.status == 400
