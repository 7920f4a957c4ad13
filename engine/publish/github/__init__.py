"""Publishing findings to GitHub: a sticky PR comment, the job summary, a check run, baseline artifacts.

Everything here reads ``findings.json`` and the Actions environment; nothing here decides the
verdict (the analysis did). Publishing that GitHub refuses (a fork's read-only token) becomes a
notice, never a failed job.
"""
