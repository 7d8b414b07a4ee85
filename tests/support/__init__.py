"""Shared test support: real Erlang peers, free ports, waiting helpers."""
