"""Publishing findings: Markdown report, JUnit XML, GitHub."""
