"""The demo: invented organisations, people and a tiny hosting site for ``make run``.

Everything here is invented (example.org-style names); no real content is used.
"""
