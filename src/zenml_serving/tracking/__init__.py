"""ZenML run tracking, off the request path: records built per invocation, written in the
background by a bounded writer."""
