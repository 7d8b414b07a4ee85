"""Distribution flags: values, the mandatory set and what nodemesh advertises."""

from __future__ import annotations

import pytest

from nodemesh.dist.flags import (
    DEFAULT_FLAGS,
    MANDATORY_OTP25,
    DistFlag,
    default_flags,
    expand_mandatory_25,
    flag_names,
    missing_mandatory,
)


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        (DistFlag.PUBLISHED, 0x1),
        (DistFlag.EXTENDED_REFERENCES, 0x4),
        (DistFlag.NEW_FLOATS, 0x800),
        (DistFlag.UTF8_ATOMS, 0x10000),
        (DistFlag.FRAGMENTS, 0x800000),
        (DistFlag.HANDSHAKE_23, 0x1000000),
        (DistFlag.UNLINK_ID, 0x2000000),
        (DistFlag.MANDATORY_25_DIGEST, 0x4000000),
        (DistFlag.SPAWN, 1 << 32),
        (DistFlag.NAME_ME, 1 << 33),
        (DistFlag.V4_NC, 1 << 34),
        (DistFlag.ALIAS, 1 << 35),
    ],
)
def test_flag_values_match_dist_hrl(flag: DistFlag, value: int) -> None:
    """Each flag has the bit OTP 25's dist.hrl gives it (MANDATORY_25_DIGEST is bit 26)."""
    assert flag == value


def test_mandatory_mask_is_the_one_otp25_checks() -> None:
    """The OTP 25 mandatory set is 0x1070F94."""
    assert MANDATORY_OTP25 == 0x1070F94


def test_default_flags_are_mandatory_plus_our_features_and_hidden() -> None:
    """We advertise the mandatory set and our features, no caches/fragments/NAME_ME/PUBLISHED."""
    assert DEFAULT_FLAGS & MANDATORY_OTP25 == MANDATORY_OTP25
    for wanted in (DistFlag.SPAWN, DistFlag.ALIAS, DistFlag.V4_NC, DistFlag.UNLINK_ID):
        assert DEFAULT_FLAGS & wanted
    for unwanted in (
        DistFlag.ATOM_CACHE,
        DistFlag.HIDDEN_ATOM_CACHE,
        DistFlag.DIST_HDR_ATOM_CACHE,
        DistFlag.FRAGMENTS,
        DistFlag.NAME_ME,
        DistFlag.PUBLISHED,
    ):
        assert not DEFAULT_FLAGS & unwanted


def test_visible_default_flags_add_published() -> None:
    """default_flags(visible=True) is DEFAULT_FLAGS plus PUBLISHED only."""
    assert default_flags() == DEFAULT_FLAGS
    assert default_flags(visible=True) == DEFAULT_FLAGS | DistFlag.PUBLISHED


def test_missing_mandatory_names_the_absent_bits() -> None:
    """missing_mandatory returns exactly the mandatory bits not present."""
    assert missing_mandatory(MANDATORY_OTP25) == 0
    assert missing_mandatory(MANDATORY_OTP25 & ~DistFlag.MAP_TAG) == DistFlag.MAP_TAG
    assert missing_mandatory(0) == MANDATORY_OTP25


def test_mandatory_25_digest_stands_for_the_whole_set() -> None:
    """A peer sending only MANDATORY_25_DIGEST lacks no mandatory flag (dist_util expands it)."""
    assert missing_mandatory(DistFlag.MANDATORY_25_DIGEST) == 0
    assert expand_mandatory_25(DistFlag.MANDATORY_25_DIGEST) & MANDATORY_OTP25 == MANDATORY_OTP25
    assert expand_mandatory_25(DistFlag.SPAWN) == DistFlag.SPAWN


def test_flag_names_lists_known_and_unknown_bits() -> None:
    """flag_names spells each bit, unknown ones as UNKNOWN<0x...>, nothing as (none)."""
    assert flag_names(DistFlag.MAP_TAG | DistFlag.HANDSHAKE_23) == "MAP_TAG, HANDSHAKE_23"
    assert flag_names(1 << 40) == "UNKNOWN<0x10000000000>"
    assert flag_names(0) == "(none)"


def test_unknown_peer_bits_survive_as_distflag() -> None:
    """Bits we do not know are kept, not dropped, when a peer's flags become a DistFlag."""
    assert int(DistFlag((1 << 40) | 0x4)) == (1 << 40) | 0x4
