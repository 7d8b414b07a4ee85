"""Distribution capability flags, exchanged in the handshake.

Each node advertises a 64-bit set of flags in its send_name / challenge message; what the
two nodes then use is the intersection (``erl_dist_protocol``, "Distribution Flags"). The
values below are those of OTP 25's ``kernel/include/dist.hrl``. Two places where the
published doc is wrong were checked on the wire against OTP 25: MANDATORY_25_DIGEST is
bit 26 (not ``1 bsl 36``) and the mandatory set is :data:`MANDATORY_OTP25`.
"""

from __future__ import annotations

import enum

__all__ = [
    "DEFAULT_FLAGS",
    "MANDATORY_OTP25",
    "DistFlag",
    "default_flags",
    "expand_mandatory_25",
    "flag_names",
    "missing_mandatory",
]


class DistFlag(enum.IntFlag):
    """One capability bit of the distribution protocol (``DFLAG_*``)."""

    PUBLISHED = 0x1
    ATOM_CACHE = 0x2
    EXTENDED_REFERENCES = 0x4
    DIST_MONITOR = 0x8
    FUN_TAGS = 0x10
    DIST_MONITOR_NAME = 0x20
    HIDDEN_ATOM_CACHE = 0x40
    NEW_FUN_TAGS = 0x80
    EXTENDED_PIDS_PORTS = 0x100
    EXPORT_PTR_TAG = 0x200
    BIT_BINARIES = 0x400
    NEW_FLOATS = 0x800
    UNICODE_IO = 0x1000
    DIST_HDR_ATOM_CACHE = 0x2000
    SMALL_ATOM_TAGS = 0x4000
    UTF8_ATOMS = 0x10000
    MAP_TAG = 0x20000
    BIG_CREATION = 0x40000
    SEND_SENDER = 0x80000
    BIG_SEQTRACE_LABELS = 0x100000
    EXIT_PAYLOAD = 0x400000
    FRAGMENTS = 0x800000
    HANDSHAKE_23 = 0x1000000
    UNLINK_ID = 0x2000000
    MANDATORY_25_DIGEST = 0x4000000
    SPAWN = 1 << 32
    NAME_ME = 1 << 33
    V4_NC = 1 << 34
    ALIAS = 1 << 35


#: What an OTP 25 node refuses to do without (``MANDATORY_DFLAGS_25`` in dist.hrl): 0x1070F94.
MANDATORY_OTP25 = (
    DistFlag.EXTENDED_REFERENCES
    | DistFlag.FUN_TAGS
    | DistFlag.NEW_FUN_TAGS
    | DistFlag.EXTENDED_PIDS_PORTS
    | DistFlag.EXPORT_PTR_TAG
    | DistFlag.BIT_BINARIES
    | DistFlag.NEW_FLOATS
    | DistFlag.UTF8_ATOMS
    | DistFlag.MAP_TAG
    | DistFlag.BIG_CREATION
    | DistFlag.HANDSHAKE_23
)

#: What nodemesh advertises (a hidden node, like C and Java nodes). Left out on purpose:
#: the atom caches (we do not implement them), FRAGMENTS (advertising it makes Erlang send
#: and expect only fragmented frames), NAME_ME (we always bring our own name) and
#: PUBLISHED (see :func:`default_flags`).
DEFAULT_FLAGS = (
    MANDATORY_OTP25
    | DistFlag.DIST_MONITOR
    | DistFlag.DIST_MONITOR_NAME
    | DistFlag.SMALL_ATOM_TAGS
    | DistFlag.UNICODE_IO
    | DistFlag.SEND_SENDER
    | DistFlag.BIG_SEQTRACE_LABELS
    | DistFlag.EXIT_PAYLOAD
    | DistFlag.UNLINK_ID
    | DistFlag.SPAWN
    | DistFlag.V4_NC
    | DistFlag.ALIAS
    | DistFlag.MANDATORY_25_DIGEST
)


def default_flags(*, visible: bool = False) -> DistFlag:
    """The flags nodemesh advertises; ``visible=True`` adds PUBLISHED.

    A published (visible) peer is sent global/pg/rex traffic on connect and shows up in
    Erlang's ``nodes()``; a hidden one only in ``nodes(hidden)`` and ``nodes(connected)``.
    """
    return DEFAULT_FLAGS | DistFlag.PUBLISHED if visible else DEFAULT_FLAGS


def expand_mandatory_25(flags: DistFlag | int) -> DistFlag:
    """Add the flags MANDATORY_25_DIGEST stands for, as dist_util does on receipt."""
    flags = DistFlag(flags)
    if flags & DistFlag.MANDATORY_25_DIGEST:
        flags |= MANDATORY_OTP25
    return flags


def missing_mandatory(flags: DistFlag | int, required: DistFlag = MANDATORY_OTP25) -> DistFlag:
    """The flags of ``required`` that ``flags`` lacks (none: ``DistFlag(0)``)."""
    return required & ~expand_mandatory_25(flags)


def flag_names(flags: DistFlag | int) -> str:
    """Name the bits of ``flags`` for a message, e.g. ``"MAP_TAG, HANDSHAKE_23"``.

    Bits without a name are shown as ``UNKNOWN<0x...>``, like dist_util's ``dflag2str``.
    """
    value = int(flags)
    names = []
    bit = 1
    while bit <= value:
        if value & bit:
            names.append(DistFlag(bit).name or f"UNKNOWN<{bit:#x}>")
        bit <<= 1
    return ", ".join(names) if names else "(none)"
