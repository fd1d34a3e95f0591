"""Generators on a tokenizer's tokens: the contract, the builtin generators, token datasets, sampling and evaluation."""
