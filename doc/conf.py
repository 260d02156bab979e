"""Sphinx configuration for the persistence documentation."""

project = "persistence"
author = "persistence developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.doctest"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
autodoc_member_order = "bysource"
