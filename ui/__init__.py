"""Streamlit chat UI over the assistant."""
