"""Data files the answerer reads: fitted weights, with the script that fits each."""
