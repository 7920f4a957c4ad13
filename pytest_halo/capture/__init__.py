"""Span capture: OTel SpanProcessor, OpenAI Agents SDK TracingProcessor, manual API, one writer."""
